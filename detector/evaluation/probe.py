"""Shortcut probe: how well do trivial image properties alone separate real from fake, per source?

A detector can score well by learning how a dataset was *made* instead of what a fake looks like:
fakes stored larger, brighter, sharper, at another JPEG quality, or more often without a findable
face.  This probe trains tiny classifiers on those properties only -- image width and height, file
size, estimated JPEG quality, mean brightness, sharpness (variance of the Laplacian) -- and reports
their cross-validated AUC per source next to the model's.  Where the probe alone reaches
``FLAG_AUC``, the model's AUC on that source says little about deepfake detection.

Two probes, and the better one is reported (the stricter test): a logistic regression on
standardised (log) features and a depth-2 gradient-boosted tree ensemble (which finds thresholds
such as "exactly 256 px wide").  Folds are by group, so the same video/person never sits on both
sides.  The share of images with no face found is reported per class beside it: the face finder
failing more often on one class is a cue too.
"""

from __future__ import annotations

import numpy as np

from . import metrics

FEATURES = ("width", "height", "file_bytes", "jpeg_quality", "brightness", "sharpness")
LOG_FEATURES = {"width", "height", "file_bytes", "sharpness"}
FLAG_AUC = 0.70
FOLDS = 5


def feature_matrix(rows: list[dict]) -> np.ndarray:
    cols = []
    for name in FEATURES:
        v = np.array([float(r[name]) for r in rows], np.float64)
        cols.append(np.log1p(np.maximum(v, 0)) if name in LOG_FEATURES else v)
    return np.stack(cols, axis=1) if rows else np.zeros((0, len(FEATURES)))


def _folds(groups: np.ndarray, k: int) -> np.ndarray:
    """Fold id per row, by a stable hash of its group."""
    import zlib

    return np.array([zlib.crc32(str(g).encode()) % k for g in groups])


def cross_validated_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str, k: int = FOLDS) -> np.ndarray:
    """Out-of-fold P(fake) of a ``kind`` ("logistic" or "trees") probe."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold = _folds(groups, k)
    out = np.full(len(y), np.nan)
    for f in range(k):
        test, train = fold == f, fold != f
        if not test.any() or len(set(y[train].tolist())) < 2:
            continue
        if kind == "logistic":
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        else:
            clf = GradientBoostingClassifier(n_estimators=60, max_depth=2, learning_rate=0.2, random_state=0)
        clf.fit(x[train], y[train])
        out[test] = clf.predict_proba(x[test])[:, 1]
    return out


def probe_source(rows: list[dict], face_found: np.ndarray | None = None) -> dict:
    """Probe AUC (best of the two), each probe's AUC, single-feature AUCs and no-face rates for one source."""
    y = np.array([int(r["label"]) for r in rows])
    groups = np.array([r.get("group", i) for i, r in enumerate(rows)])
    result: dict = {"n": int(len(y)), "n_fake": int(y.sum())}
    if len(set(y.tolist())) < 2:
        result.update(auc=None, flagged=False, note="one class only")
        return result
    x = feature_matrix(rows)
    aucs = {}
    for kind in ("logistic", "trees"):
        s = cross_validated_scores(x, y, groups, kind)
        ok = ~np.isnan(s)
        aucs[kind] = metrics.auc(y[ok], s[ok]) if ok.any() else None
    best = max((v for v in aucs.values() if v is not None), default=None)
    single = {}
    for j, name in enumerate(FEATURES):
        a = metrics.auc(y, x[:, j]) if np.ptp(x[:, j]) > 0 else 0.5
        single[name] = round(max(a, 1 - a), 3) if a is not None else None
    result.update(auc=best, flagged=bool(best is not None and best > FLAG_AUC), probes=aucs, single_feature_auc=single)
    if face_found is not None:
        ff = np.asarray(face_found, bool)
        result["no_face_rate"] = {"real": round(float((~ff[y == 0]).mean()), 4) if (y == 0).any() else None,
                                  "fake": round(float((~ff[y == 1]).mean()), 4) if (y == 1).any() else None}
    return result


def probe(rows: list[dict], face_found: np.ndarray | None = None) -> dict[str, dict]:
    """:func:`probe_source` for every source of ``rows`` (dicts with label, source, group and :data:`FEATURES`)."""
    sources = np.array([r["source"] for r in rows])
    ff = None if face_found is None else np.asarray(face_found, bool)
    out = {}
    for s in sorted(set(sources.tolist())):
        idx = np.where(sources == s)[0]
        out[s] = probe_source([rows[i] for i in idx], None if ff is None else ff[idx])
    return out


def markdown(table: dict[str, dict], model_auc: dict[str, float | None] | None = None) -> str:
    """The probe table (with the model's AUC beside it when given)."""
    head = "| source | probe AUC (trivial features only) | strongest single cue | no face: real / fake |"
    sep = "|---|---|---|---|"
    if model_auc is not None:
        head += " model AUC |"
        sep += "---|"
    lines = [head, sep]
    for s, r in table.items():
        if r.get("auc") is None:
            cue, auc = "-", "- (one class)"
        else:
            name, val = max(r["single_feature_auc"].items(), key=lambda kv: kv[1] or 0)
            cue = f"{name} {val:.2f}"
            auc = f"{r['auc']:.3f}" + (" **flagged**" if r["flagged"] else "")
        nf = r.get("no_face_rate") or {}
        nf_s = " / ".join("-" if nf.get(k) is None else f"{100 * nf[k]:.1f} %" for k in ("real", "fake"))
        line = f"| {s} | {auc} | {cue} | {nf_s} |"
        if model_auc is not None:
            m = model_auc.get(s)
            line += f" {'-' if m is None else f'{m:.3f}'} |"
        lines.append(line)
    return "\n".join(lines)
