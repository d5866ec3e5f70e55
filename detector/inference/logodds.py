"""Probabilities and log-odds: the two maps every score passes through.

One place for them, on the inference side, so that calibration (training), the uncertain band
(:mod:`detector.inference.results`) and the evaluation all convert the same way.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before taking log-odds


def logit(p, eps: float = EPS) -> np.ndarray:
    """log(p / (1 - p)), with ``p`` clipped away from 0 and 1 (float64)."""
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    return np.log(p / (1 - p))


def sigmoid(z) -> np.ndarray:
    """1 / (1 + exp(-z)) (float64); the inverse of :func:`logit` inside the clip."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))
