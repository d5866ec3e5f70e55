"""Metrics and calibration on cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from detector.evaluation import metrics
from detector.training.calibration import choose_threshold, fit_temperature, logit, sigmoid


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


def test_cross_fit_scores_each_group_with_a_calibration_fitted_on_the_others():
    from detector.training.calibration import cross_fit, group_folds

    rng = np.random.default_rng(3)
    groups = [f"g{i // 4}" for i in range(800)]  # 200 groups of 4 rows
    y = rng.integers(0, 2, 800)
    z = 6.0 * (rng.normal(0, 1, 800) + 1.2 * (2 * y - 1))  # true log-odds are 0.4 z: T should be ~2.5
    sources = ["a" if i % 2 else "b" for i in range(800)]
    folds = group_folds(groups)
    assert set(folds) == {0, 1}
    assert all(len({folds[i] for i in range(g * 4, g * 4 + 4)}) == 1 for g in range(200))  # groups never split
    cf = cross_fit(z, y, sources, groups)
    assert len(cf["fits"]) == 2 and all(2.0 < f["temperature"] < 3.2 for f in cf["fits"])
    assert metrics.ece(y, cf["p"]) < metrics.ece(y, sigmoid(z)) / 2
    # a row's own label never enters its calibration: flipping fold 0's labels leaves fold 0's scores alone
    flipped = np.where(folds == 0, 1 - y, y)
    again = cross_fit(z, flipped, sources, groups)
    assert np.allclose(again["p"][folds == 0], cf["p"][folds == 0])
    assert not np.allclose(again["p"][folds == 1], cf["p"][folds == 1])


def test_cross_fit_chooses_its_thresholds_by_the_rule_training_ships():
    from detector.training.calibration import MAX_REAL_FLAGGED, choose_threshold, cross_fit, group_folds

    rng = np.random.default_rng(5)
    groups = [f"g{i // 2}" for i in range(1000)]
    y = rng.integers(0, 2, 1000)
    z = rng.normal(0, 1, 1000) + 0.8 * (2 * y - 1)  # overlapping classes: the balanced-accuracy threshold flags many reals
    sources = ["a"] * 1000
    cf = cross_fit(z, y, sources, groups)
    folds = group_folds(groups)
    for f in cf["fits"]:
        fit = folds != f["fold"]
        p_fit = sigmoid(z[fit] / f["temperature"])
        assert f["threshold"] > choose_threshold(p_fit, y[fit], sources[:int(fit.sum())])  # raised for the reals
        assert np.mean(p_fit[y[fit] == 0] >= f["threshold"]) <= MAX_REAL_FLAGGED + 1e-9


def test_cross_fit_gives_up_when_a_fold_has_one_class():
    from detector.training.calibration import cross_fit

    assert cross_fit(np.array([1.0, 2.0]), np.array([1, 1]), ["a", "a"], ["g0", "g1"]) == {}


def test_logit_and_sigmoid_are_inverse_and_the_uncertain_band_uses_them():
    from detector.inference import logodds
    from detector.inference.results import unsure_range

    p = np.array([1e-3, 0.2, 0.5, 0.853, 0.999])
    assert np.allclose(logodds.sigmoid(logodds.logit(p)), p)
    assert logodds.logit(0.0) < -15 and logodds.logit(1.0) > 15  # clipped, finite
    lo, hi = unsure_range(0.5, band=0.6)
    assert lo == pytest.approx(logodds.sigmoid(-0.6)) and hi == pytest.approx(logodds.sigmoid(0.6))
    lo, hi = unsure_range(0.853)
    assert lo < 0.853 < hi and logodds.logit(hi) - logodds.logit(0.853) == pytest.approx(0.6)
    assert logit is logodds.logit and sigmoid is logodds.sigmoid  # calibration re-exports, one definition
