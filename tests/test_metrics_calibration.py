"""Metrics and calibration on cases whose answers are known."""

from __future__ import annotations

import numpy as np

from detector import metrics
from detector.calibration import choose_threshold, fit_temperature, logit, sigmoid


def test_auc_eer_perfect_and_random():
    y = np.array([0, 0, 1, 1])
    assert metrics.auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.eer(y, np.array([0.1, 0.2, 0.8, 0.9])) == 0.0
    assert metrics.auc(np.array([1, 1]), np.array([0.2, 0.3])) is None


def test_ece_is_zero_for_calibrated_bins_and_large_for_overconfidence():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)
    assert metrics.ece(y, p) < 0.02
    assert metrics.ece(y, np.where(p > 0.5, 0.999, 0.001)) > 0.2


def test_decision_metrics_confusion():
    m = metrics.decision_metrics(np.array([0, 0, 1, 1]), np.array([0.6, 0.1, 0.7, 0.2]), 0.5)
    assert m["confusion"] == {"tp": 1, "tn": 1, "fp": 1, "fn": 1}
    assert m["balanced_accuracy"] == 0.5 and m["false_positive_rate"] == 0.5


def test_per_source_has_every_source_and_overall():
    out = metrics.per_source(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6]), ["a", "a", "b", "b"], 0.5)
    assert set(out) == {"a", "b", "overall"} and out["overall"]["n"] == 4


def test_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(1)
    z_true = rng.normal(0, 2, 20000)
    y = (rng.uniform(0, 1, 20000) < sigmoid(z_true)).astype(int)
    t = fit_temperature(z_true * 3.0, y)  # logits three times too large
    assert 2.7 < t < 3.3
    assert metrics.ece(y, sigmoid(z_true * 3.0 / t)) < metrics.ece(y, sigmoid(z_true * 3.0))


def test_threshold_balances_a_shifted_score():
    y = np.array([0] * 50 + [1] * 50)
    p = np.concatenate([np.linspace(0.5, 0.7, 50), np.linspace(0.72, 0.95, 50)])
    t = choose_threshold(p, y)
    assert 0.7 < t <= 0.72
    assert np.allclose(logit(sigmoid(np.array([-3.0, 0.0, 4.0]))), [-3.0, 0.0, 4.0])
