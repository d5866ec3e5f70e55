"""Building, calibrating, saving and loading the classifier."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detector.errors import ModelError
from detector.inference.bundle import ModelConfig, load_bundle
from detector.training.export import save_bundle
from detector.training.model import build_model, fold_temperature, predict_proba


@pytest.fixture(scope="module")
def small():
    model, cam = build_model("small_cnn", 32, pretrained=False)
    return model, cam


def test_model_outputs_one_probability_per_crop(small):
    model, cam = small
    x = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3)).astype("float32")
    p = predict_proba(model, x)
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1))
    assert model.get_layer(cam) is not None and model.get_layer("logit") is not None


def test_pretrained_mobilenet_is_flat_functional_model():
    model, cam = build_model("mobilenetv2", 96, pretrained=True)
    # tf-keras-vis needs the backbone layers in the top-level model, not a nested sub-model.
    assert not any(hasattr(layer, "layers") for layer in model.layers)
    assert model.get_layer(cam).output.shape[-1] == 1280


def test_folding_temperature_keeps_ranking_and_softens_probabilities(small):
    model, _ = small
    model.get_layer("logit").set_weights([np.full((256, 1), 0.05, "float32"), np.array([0.1], "float32")])
    x = np.random.default_rng(1).integers(0, 255, (8, 32, 32, 3)).astype("float32")
    before = predict_proba(model, x)
    fold_temperature(model, 4.0)
    after = predict_proba(model, x)
    assert np.array_equal(np.argsort(before), np.argsort(after))
    assert np.all(np.abs(after - 0.5) <= np.abs(before - 0.5) + 1e-6)
    assert not np.allclose(before, after)


def test_bundle_round_trip_preserves_predictions_and_card(small, tmp_path):
    model, cam = small
    cfg = ModelConfig(input_size=32, cam_layer=cam, threshold=0.42, metrics={"auc": float("nan")})
    save_bundle(model, cfg, tmp_path)
    card = json.loads((tmp_path / "model.json").read_text())
    assert len(card["sha256"]) == 64 and card["metrics"]["auc"] is None  # NaN written as null
    loaded, cfg2 = load_bundle(tmp_path)
    x = np.random.default_rng(2).integers(0, 255, (3, 32, 32, 3)).astype("float32")
    assert np.allclose(predict_proba(model, x), predict_proba(loaded, x), atol=1e-6)
    assert cfg2.threshold == 0.42


def test_card_input_size_must_match_model(small, tmp_path):
    model, cam = small
    save_bundle(model, ModelConfig(input_size=32, cam_layer=cam), tmp_path)
    card = json.loads((tmp_path / "model.json").read_text())
    card["input_size"] = 64
    (tmp_path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="input"):
        load_bundle(tmp_path)


def test_shipped_model_loads_with_its_card():
    from detector.config import DEFAULT_MODEL_DIR
    from detector.inference.bundle import input_shape

    model, cfg = load_bundle(DEFAULT_MODEL_DIR)
    assert [tuple(t.shape[1:]) for t in model.inputs] == [input_shape(cfg, name) for name in cfg.inputs]
    assert input_shape(cfg, "image") == (cfg.input_size, cfg.input_size, 3)
    assert 0.0 < cfg.threshold < 1.0 and cfg.temperature > 0


def test_the_card_default_cam_layer_is_the_backbones_last_relu():
    from detector.inference.bundle import DEFAULT_CAM_LAYER
    from detector.training.backbone import LAST_CONV_LAYER

    assert ModelConfig().cam_layer == DEFAULT_CAM_LAYER == LAST_CONV_LAYER
