"""Evaluate a saved model on any labelled data, per source, clean and degraded.

    python -m detector evaluate --data ../shared/data/faces --model assets/model --out runs/eval

``--data`` is a manifest CSV (columns path,label[,source,split,group]), a folder holding
``manifest.csv``, or any folder with ``real/`` and ``fake/`` below it -- so anyone can measure the
detector on their own pictures.  Faces are found and cropped exactly as the app does
(``detector.training.prepare``; crops are cached under ``.cache/prepared``).

Writes to ``--out``:
* ``metrics.json`` -- AUC, AP, accuracy and balanced accuracy at the model's stored threshold,
  EER, ECE, confusion matrix; per source and overall; plus the robustness table;
* ``report.md``    -- the same as tables;
* when the rows carry groups, ``cross_fitted``: ECE and balanced accuracy with temperature and
  threshold re-fitted on half the groups and scored on the other half -- the calibration figure
  for people and videos it was not fitted on (the stored calibration was fitted on validation);
* ``roc.png`` and ``reliability.png``.

The robustness table re-scores every crop after JPEG re-compression (quality 90/70/50/30),
down-and-up scaling (0.5x, 0.25x) and Gaussian blur (sigma 1, 2), applied to the native face crop
(before the model's views are cut from it, as when a photo was re-compressed before upload).

Also in ``metrics.json``: the **shortcut probe** (``detector.evaluation.probe``: how well trivial
image properties alone separate the classes per source, next to the model's AUC, flagged above
0.70), the share of images with no face found per class, and for fake-only sources (SDFD) their
AUC against the validation reals of every other source.  ``--attacks`` adds the white-box attack
table (``detector.evaluation.attacks``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from ..config import FACE_FINDERS as FACE_DETECTORS
from ..inference.bundle import load_bundle, load_lite
from ..inference.views import spec_of
from ..training import calibration
from ..training.augment import PERTURBATIONS
from ..training.data import read_dataset
from ..training.prepare import Prepared, prepare
from . import metrics, probe
from .scoring import Crops, score_natives


def _cache_dir(samples, detector: str) -> Path:
    key = hashlib.sha1(("\n".join(s.path for s in samples) + f"|native|{detector}").encode()).hexdigest()[:12]
    return Path(".cache/prepared") / f"eval-{key}"


def robustness(classifier, spec, crops: Crops, y: np.ndarray, sources: np.ndarray, clean: dict,
               names: list[str]) -> dict:
    """AUC per perturbation and source, and its drop from the clean AUC."""
    table = {}
    for name in names:
        p = score_natives(classifier, spec, crops, desc=name, transform=PERTURBATIONS[name])
        row = {}
        for src in sorted(set(sources.tolist())) + ["overall"]:
            m = np.ones(len(y), bool) if src == "overall" else sources == src
            a = metrics.auc(y[m], p[m])
            base = clean[src]["auc"]
            row[src] = {"auc": a, "drop": None if a is None or base is None else base - a}
        table[name] = row
    return table


def fake_only_vs_reals(p: np.ndarray, y: np.ndarray, sources: np.ndarray, donors: list[str]) -> dict:
    """For each source with fakes only in the original data (its reals are matched partners): AUC of its
    fakes against the reals of every other source, and against its matched partners."""
    out = {}
    paired = {s for s, d in zip(sources, donors, strict=True) if d}
    for src in sorted(paired):
        fakes = (sources == src) & (y == 1)
        row = {"matched partners": metrics.auc(np.r_[np.ones(fakes.sum()), np.zeros(((sources == src) & (y == 0)).sum())],
                                               np.r_[p[fakes], p[(sources == src) & (y == 0)]])}
        for other in sorted(set(sources.tolist()) - {src}):
            reals = (sources == other) & (y == 0)
            if reals.any():
                row[other] = metrics.auc(np.r_[np.ones(fakes.sum()), np.zeros(reals.sum())], np.r_[p[fakes], p[reals]])
        out[src] = row
    return out


def plot_roc(y, p, sources, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for src in sorted(set(sources.tolist())) + ["overall"]:
        m = np.ones(len(y), bool) if src == "overall" else sources == src
        if len(np.unique(y[m])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[m], p[m])
        ax.plot(fpr, tpr, lw=2 if src == "overall" else 1, label=f"{src} (AUC {metrics.auc(y[m], p[m]):.3f})")
    ax.plot([0, 1], [0, 1], "--", color="gray", lw=1)
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake caught)", title="ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(y, p, path: Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = metrics.reliability(y, p, bins)
    fig, ax = plt.subplots(figsize=(5, 5))
    xs = [r["mean_p"] for r in rel if r["n"]]
    ys = [r["frac_fake"] for r in rel if r["n"]]
    ax.plot([0, 1], [0, 1], "--", color="gray", lw=1, label="perfect calibration")
    ax.plot(xs, ys, marker="o", label=f"model (ECE {metrics.ece(y, p):.3f})")
    ax.bar([(r["lo"] + r["hi"]) / 2 for r in rel], [r["n"] / max(1, len(y)) for r in rel], width=1 / bins,
           alpha=0.2, color="gray", label="share of images")
    ax.set(xlabel="predicted P(fake)", ylabel="observed fraction fake", title="Reliability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown_report(result: dict) -> str:
    lines = [f"# Evaluation of {result['model']['name']} {result['model']['version']}", "",
             f"Data: `{result['data']}` (split: {result['split']}, {result['n']} images). "
             f"Threshold {result['model']['threshold']:.3f} (from the model card).", "",
             "| source | n | AUC | AP | acc | bal. acc | EER | ECE | real flagged (FPR) | fakes caught (TPR) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for src, m in result["metrics"].items():
        lines.append(f"| {src} | {m['n']} | {_fmt(m['auc'])} | {_fmt(m['ap'])} | {_fmt(m['accuracy'])} | "
                     f"{_fmt(m['balanced_accuracy'])} | {_fmt(m['eer'])} | {_fmt(m['ece'])} | "
                     f"{_fmt(m['false_positive_rate'])} | {_fmt(m['tpr_fake'])} |")
    if result.get("robustness"):
        srcs = list(result["metrics"].keys())
        lines += ["", "## Robustness: AUC after degrading the face crop (drop from clean in brackets)", "",
                  "| perturbation | " + " | ".join(srcs) + " |", "|---|" + "---|" * len(srcs)]
        for name, row in result["robustness"].items():
            cells = [f"{_fmt(row[s]['auc'])} ({_fmt(row[s]['drop'])})" for s in srcs]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("cross_fitted"):
        cf = result["cross_fitted"]
        lines += ["", "## Calibration on unseen groups (2-fold cross-fitting by group)", "",
                  "Temperature and threshold re-fitted on half the groups, scored on the other half "
                  "(fitted per fold: " + ", ".join(f"T x{f['temperature']:.3f}, threshold {f['threshold']:.3f}"
                                                     for f in cf["folds"]) + ").", "",
                  "| source | n | ECE | bal. acc | real flagged (FPR) |", "|---|---|---|---|---|"]
        for src, m in cf["metrics"].items():
            lines.append(f"| {src} | {m['n']} | {_fmt(m['ece'])} | {_fmt(m['balanced_accuracy'])} | "
                         f"{_fmt(m['false_positive_rate'])} |")
    if result.get("shortcut_probe"):
        model_auc = {s: m["auc"] for s, m in result["metrics"].items() if s != "overall"}
        lines += ["", "## Shortcut probe: trivial features alone (flagged above 0.70)", "",
                  probe.markdown(result["shortcut_probe"], model_auc)]
    if result.get("fake_only_vs_reals"):
        lines += ["", "## Fake-only sources against the reals of every source (AUC)", ""]
        for src, row in result["fake_only_vs_reals"].items():
            lines += ["| " + src + " fakes vs | " + " | ".join(row) + " |", "|---|" + "---|" * len(row),
                      "| AUC | " + " | ".join(_fmt(v) for v in row.values()) + " |", ""]
    if result.get("attacks"):
        from .attacks import markdown as attack_markdown

        lines += ["", "## White-box attacks: AUC (fakes caught at the threshold)", "", attack_markdown(result["attacks"])]
    lines += ["", "Confusion matrices (overall): " + json.dumps(result["metrics"]["overall"]["confusion"]), ""]
    return "\n".join(lines)


def cross_fitted_metrics(p: np.ndarray, y: np.ndarray, sources: np.ndarray, groups: list[str]) -> dict:
    """ECE and balanced accuracy when calibration is re-fitted on half the groups and scored on the other half.

    The stored temperature and threshold were fitted on the validation images this report scores, so
    their ECE flatters them; this is the estimate for people and videos the calibration never saw.
    """
    cf = calibration.cross_fit(calibration.logit(p), y, list(sources), groups)
    if not cf:
        return {}
    table = {}
    for src in sorted(set(sources.tolist())) + ["overall"]:
        m = np.ones(len(y), bool) if src == "overall" else sources == src
        decided = metrics.decision_metrics(y[m], cf["fake"][m], 0.5)  # the per-fold decisions, as 0/1
        table[src] = {"n": int(m.sum()), "ece": metrics.ece(y[m], cf["p"][m]),
                      "balanced_accuracy": decided["balanced_accuracy"],
                      "false_positive_rate": decided["false_positive_rate"]}
    return {"folds": cf["fits"], "metrics": table}


def evaluate(data: str, model_dir: str, out: str, split: str = "val", perturbations: list[str] | None = None,
             limit: int = 0, face_detector: str = "auto", prepared: str = "", attacks: bool = False,
             attack_args: dict | None = None) -> dict:
    from ..inference.forward import Classifier, layout_for, lite_forward

    model, cfg = load_bundle(model_dir)
    if prepared:
        data_set = Prepared(prepared)
    else:
        samples = read_dataset(data)
        if split != "all":
            chosen = [s for s in samples if s.split == split]
            samples = chosen or samples  # a folder without splits is evaluated whole
        if limit:
            samples = samples[:limit]
        cache = _cache_dir(samples, face_detector)
        if not (cache / "index.csv").is_file():
            prepare(samples, cache, detector=face_detector)
        data_set = Prepared(cache)
    idx = [i for i, r in enumerate(data_set.rows) if split == "all" or r["split"] == split or not prepared]
    idx = idx[:limit] if limit else idx
    rows = [data_set.rows[i] for i in idx]
    crops = Crops(data_set, idx)
    y = np.array([r["label"] for r in rows])
    sources = np.array([r["source"] for r in rows])
    spec = spec_of(cfg)
    layout = layout_for(cfg)
    runner = load_lite(model_dir, cfg)  # the TF Lite copy when valid: the same scores, 3-5x faster
    classifier = (Classifier(lite_forward(runner), layout, list(cfg.inputs)) if runner is not None
                  else Classifier.from_keras(model, layout))
    p = score_natives(classifier, spec, crops)
    per = metrics.per_source(y, p, list(sources), cfg.threshold)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = np.array([bool(r["face_found"]) for r in rows])
    result = {"data": str(data), "split": split, "n": int(len(y)), "faces_found": int(found.sum()),
              "model": {"name": cfg.name, "version": cfg.version, "threshold": cfg.threshold,
                        "temperature": cfg.temperature, "sha256": cfg.sha256,
                        "engine": "tflite" if runner is not None else "tensorflow"},
              "metrics": per}
    if (~found).any() and found.any():
        result["metrics_face_found"] = metrics.per_source(y[found], p[found], list(sources[found]), cfg.threshold)
    if all(k in rows[0] for k in probe.FEATURES) if rows else False:
        result["shortcut_probe"] = probe.probe(rows, found)
    donors = [r.get("donor") or "" for r in rows]
    if any(donors):
        result["fake_only_vs_reals"] = fake_only_vs_reals(p, y, sources, donors)
    groups = [r.get("group") or "" for r in rows]
    if len(set(groups)) >= 4:
        result["cross_fitted"] = cross_fitted_metrics(p, y, sources, groups)
    names = list(PERTURBATIONS) if perturbations is None else perturbations
    if names:
        result["robustness"] = robustness(classifier, spec, crops, y, sources, per, names)
    if attacks:
        from .attacks import attack_table

        result["attacks"] = attack_table(model, cfg, classifier, crops, y, sources, **(attack_args or {}))
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    (out_dir / "report.md").write_text(markdown_report(result))
    plot_roc(y, p, sources, out_dir / "roc.png")
    plot_reliability(y, p, out_dir / "reliability.png")
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="manifest CSV, folder with manifest.csv, or folder with real/ and fake/")
    ap.add_argument("--model", default="assets/model", help="model folder (model.keras + model.json); default assets/model")
    ap.add_argument("--out", required=True, help="output folder for metrics.json, report.md and the plots")
    ap.add_argument("--split", default="val", help="rows whose split is this (train/val/test), or 'all'; folders "
                    "without a split are evaluated whole (default val)")
    ap.add_argument("--perturb", default="all", help="comma-separated robustness perturbations "
                    f"({', '.join(PERTURBATIONS)}), 'all' (default) or 'none'")
    ap.add_argument("--limit", type=int, default=0, help="only the first N rows (quick check)")
    ap.add_argument("--prepared", default="", help="reuse this crop cache (from detector.training.prepare, e.g. the training "
                    "one) instead of cropping --data again; rows are filtered by --split")
    ap.add_argument("--face-finder", "--face-detector", dest="face_detector", default="auto", choices=FACE_DETECTORS, help="face finder for cropping (--face-detector: the older name)")
    ap.add_argument("--attacks", action="store_true", help="add the white-box attack table (FGSM, PGD-10, transfer, "
                    "JPEG after the attack; slow: minutes per epsilon)")
    ap.add_argument("--attack-eps", default="1,2,4,8", help="attack budgets in 0..255 units (default 1,2,4,8)")
    ap.add_argument("--attack-per-class", type=int, default=60, help="faces per class and source attacked (default 60)")
    ap.add_argument("--transfer-from", default="", help="model folder of a differently seeded model to craft "
                    "transfer attacks on (default: no transfer row)")
    a = ap.parse_args(argv)
    if not Path(a.data).exists():
        raise SystemExit(f"python -m detector evaluate: no data at {a.data}: give --data (make evaluate DATA=...) a "
                         "manifest CSV or a folder with real/ and fake/ below it; see docs/evaluation.md")
    names = None if a.perturb == "all" else ([] if a.perturb == "none" else a.perturb.split(","))
    for n in names or []:
        if n not in PERTURBATIONS:
            ap.error(f"unknown perturbation {n!r}")
    attack_args = {"eps": [float(e) for e in a.attack_eps.split(",")], "per_class": a.attack_per_class,
                   "transfer_from": a.transfer_from}
    result = evaluate(a.data, a.model, a.out, a.split, names, a.limit, a.face_detector, a.prepared,
                      a.attacks, attack_args)
    print(markdown_report(result))


if __name__ == "__main__":
    main()
