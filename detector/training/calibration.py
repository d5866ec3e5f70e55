"""Calibration: one temperature for the logit, and a threshold chosen on validation data.

Temperature scaling (Guo et al., 2017) divides the logit by ``T`` fitted to minimise the
negative log-likelihood on held-out data; it changes confidence, never the ranking (AUC).
The threshold is then chosen on the calibrated validation scores to maximise balanced accuracy
averaged over sources, so no single large source sets it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..inference.logodds import logit as logit  # re-exported: calibration works in log-odds
from ..inference.logodds import sigmoid


def nll(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    q = np.clip(sigmoid(z / temperature), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The ``T`` in [0.05, 20] minimising NLL of ``sigmoid(z / T)``."""
    y = np.asarray(y, np.float64)
    res = minimize_scalar(lambda t: nll(z, y, t), bounds=(0.05, 20.0), method="bounded")
    return float(res.x)


def choose_threshold(p: np.ndarray, y: np.ndarray, sources: list[str] | None = None) -> float:
    """Threshold maximising balanced accuracy (mean over sources when given)."""
    p, y = np.asarray(p), np.asarray(y).astype(int)
    groups = np.asarray(sources) if sources is not None else np.zeros(len(y), dtype=object)
    candidates = np.unique(np.round(np.concatenate([p, [0.5]]), 4))
    best, best_t = -1.0, 0.5
    for t in candidates:
        pred = p >= t
        scores = []
        for g in np.unique(groups):
            m = groups == g
            yy, pp = y[m], pred[m]
            rates = [pp[yy == 1].mean()] if (yy == 1).any() else []
            rates += [(~pp[yy == 0]).mean()] if (yy == 0).any() else []
            scores.append(np.mean(rates))
        score = float(np.mean(scores))
        # prefer thresholds nearer 0.5 on ties: calibrated scores should need little shifting
        if score > best + 1e-9 or (abs(score - best) <= 1e-9 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = score, float(t)
    return best_t


MAX_REAL_FLAGGED = 0.05  # target share of real photos flagged fake, per source


def fpr_threshold(p: np.ndarray, y: np.ndarray, sources: list[str], max_fpr: float = MAX_REAL_FLAGGED) -> float:
    """The lowest threshold at which no source flags more than ``max_fpr`` of its reals."""
    p, y, sources = np.asarray(p), np.asarray(y).astype(int), np.asarray(sources)
    worst = 0.0
    for s in np.unique(sources):
        reals = np.sort(p[(sources == s) & (y == 0)])
        if len(reals):
            allowed = int(np.floor(max_fpr * len(reals)))  # this many may lie at or above the threshold
            worst = max(worst, float(np.nextafter(reals[len(reals) - allowed - 1], 1.0)))
    return worst


def choose_operating_threshold(p: np.ndarray, y: np.ndarray, sources: list[str],
                               max_fpr: float = MAX_REAL_FLAGGED) -> tuple[float, dict]:
    """The balanced-accuracy threshold, raised where needed so every source flags <= ``max_fpr`` of its reals.

    Returns ``(threshold, why)``; ``why`` names both candidates so the card can state the cost.
    """
    t_ba = choose_threshold(p, y, list(sources))
    t_fp = fpr_threshold(p, y, list(sources), max_fpr)
    return max(t_ba, t_fp), {"balanced_accuracy_threshold": t_ba, "max_real_flagged": max_fpr,
                             "fpr_threshold": t_fp, "rule": "max(balanced-accuracy threshold, fpr threshold)"}


def group_folds(groups: list[str], folds: int = 2) -> np.ndarray:
    """A fold number per row, the same for every row of a group (stable across runs and machines)."""
    import hashlib

    return np.array([int(hashlib.sha1(str(g).encode()).hexdigest()[:8], 16) % folds for g in groups])


def cross_fit(z: np.ndarray, y: np.ndarray, sources: list[str], groups: list[str], folds: int = 2) -> dict:
    """Honest calibration estimate: fit temperature and threshold on some groups, score the others.

    Fitting and scoring calibration on the same images flatters it.  Here the rows are split into
    ``folds`` by group (a person, video or image family never straddles two folds); each fold is
    scored with a temperature and threshold fitted, as ``detector.training.train`` does, on the other folds.
    Returns the out-of-fold probabilities ``p``, decisions ``fake`` and the fitted values per fold.
    """
    z, y = np.asarray(z, np.float64), np.asarray(y).astype(int)
    fold = group_folds(groups, folds)
    p = np.zeros(len(y))
    fake = np.zeros(len(y), bool)
    fits = []
    src = np.asarray(sources)
    for k in range(folds):
        test, fit = fold == k, fold != k
        if not test.any() or len(np.unique(y[fit])) < 2:
            return {}
        t = fit_temperature(z[fit], y[fit])
        thr, _ = choose_operating_threshold(sigmoid(z[fit] / t), y[fit], list(src[fit]))
        p[test] = sigmoid(z[test] / t)
        fake[test] = p[test] >= thr
        fits.append({"fold": k, "n": int(test.sum()), "temperature": t, "threshold": thr})
    return {"p": p, "fake": fake, "fits": fits}
