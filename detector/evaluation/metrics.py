"""Metrics for a fake-probability score: ranking (AUC, AP, EER), decisions, calibration (ECE)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present."""
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def eer(y: np.ndarray, p: np.ndarray) -> float | None:
    """Equal error rate: where the false-positive and false-negative rates meet."""
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, p)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def ece(y: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of P(fake) over equal-width bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    y, p = np.asarray(y, float), np.asarray(p, float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int((idx == b).sum()),
             "mean_p": float(p[idx == b].mean()) if (idx == b).any() else None,
             "frac_fake": float(y[idx == b].mean()) if (idx == b).any() else None} for b in range(bins)]


def decision_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p) >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tpr = tp / (tp + fn) if tp + fn else None
    tnr = tn / (tn + fp) if tn + fp else None
    parts = [v for v in (tpr, tnr) if v is not None]
    return {
        "accuracy": (tp + tn) / max(1, len(y)),
        "balanced_accuracy": float(np.mean(parts)) if parts else None,
        "tpr_fake": tpr, "tnr_real": tnr,
        "false_positive_rate": (fp / (fp + tn)) if fp + tn else None,
        "confusion": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
    }


def recall_at_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float = 0.05) -> float | None:
    """Share of fakes caught at the lowest threshold that flags at most ``max_fpr`` of these reals.

    A point on the ROC curve: what a user would get from a threshold set so that no more than 5 % of
    such real photos are accused.  Fakes scoring exactly at the threshold are not counted as caught.
    """
    y, p = np.asarray(y), np.asarray(p)
    reals, fakes = np.sort(p[y == 0]), p[y == 1]
    if not len(reals) or not len(fakes):
        return None
    allowed = int(np.floor(max_fpr * len(reals)))  # reals that may score above the threshold
    t = reals[len(reals) - allowed - 1]
    return float((fakes > t).mean())


def summary(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """All metrics for one set of scores."""
    y, p = np.asarray(y), np.asarray(p)
    out = {"n": int(len(y)), "n_fake": int(y.sum()), "n_real": int(len(y) - y.sum()),
           "auc": auc(y, p), "ap": float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else None,
           "eer": eer(y, p), "ece": ece(y, p), "recall_at_5pct_reals": recall_at_fpr(y, p, 0.05)}
    out.update(decision_metrics(y, p, threshold))
    return out


def per_source(y: np.ndarray, p: np.ndarray, sources: list[str], threshold: float) -> dict:
    """``summary`` for every source and for all rows (key ``overall``)."""
    sources = np.asarray(sources)
    out = {s: summary(y[sources == s], p[sources == s], threshold) for s in sorted(set(sources.tolist()))}
    out["overall"] = summary(y, p, threshold)
    return out
