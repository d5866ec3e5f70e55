"""Grad-CAM / Grad-CAM++: shapes, ranges, agreement with tf-keras-vis, and that the peak finds the evidence."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from detector.inference.forward import Classifier, keras_forward
from explain.gradcam import CamExplainer, tfkv_cams
from explain.overlay import BoxLabel, blend, paste_heatmaps, render

SIZE, PATCH = 64, 16


def patch_dataset(n: int, rng: np.random.Generator):
    """Noise images; class 1 carries one bright square patch somewhere, class 0 none."""
    x = rng.normal(110, 25, (n, SIZE, SIZE, 3)).clip(0, 255).astype("float32")
    y = (np.arange(n) % 2).astype("float32")
    where = rng.integers(0, SIZE - PATCH, (n, 2))
    for i in np.where(y == 1)[0]:
        r, c = where[i]
        x[i, r:r + PATCH, c:c + PATCH] = [250, 40, 40]
    return x, y, where


def tiny_cam_model() -> tuple[keras.Model, str]:
    """A few-thousand-parameter CNN with the head contract of the real model (``logit`` -> sigmoid)."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="cam_conv")(x)  # 16x16 grid
    x = keras.layers.GlobalMaxPooling2D()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inp, keras.layers.Activation("sigmoid", name="p_fake")(logit)), "cam_conv"


@pytest.fixture(scope="module")
def patch_model():
    keras.utils.set_random_seed(0)
    model, cam = tiny_cam_model()
    x, y, _ = patch_dataset(800, np.random.default_rng(0))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    return model, cam


def test_tiny_model_learns_the_patch(patch_model):
    model, _ = patch_model
    x, y, _ = patch_dataset(200, np.random.default_rng(1))
    acc = float(np.mean((model.predict(x, verbose=0).ravel() >= 0.5) == y))
    assert acc > 0.95


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_heatmap_peak_lands_on_the_deciding_patch(patch_model, method):
    model, cam = patch_model
    x, y, where = patch_dataset(40, np.random.default_rng(2))
    fakes = np.where(y == 1)[0]
    out = CamExplainer(keras_forward(model, cam)).explain(x[fakes], threshold=0.5)
    hits = 0
    for k, i in enumerate(fakes):
        heat = paste_heatmaps((SIZE, SIZE), [(0, 0, SIZE)], [out.cams[method][k]])
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        pr, pc = where[i]
        hits += (pr - 4 <= r < pr + PATCH + 4) and (pc - 4 <= c < pc + PATCH + 4)
    assert hits / len(fakes) >= 0.9


def test_fused_maps_equal_tf_keras_vis(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(3))
    out = CamExplainer(keras_forward(model, cam)).explain(x, threshold=0.5)
    signs = np.where(out.p_fake >= 0.5, 1.0, -1.0)
    for method in ("gradcam", "gradcam++"):
        ref = tfkv_cams(model, cam, x, signs, method)
        assert np.allclose(ref, out.cams[method], atol=1e-4)


def test_tf_keras_vis_back_end_is_selectable_and_agrees(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(4, np.random.default_rng(5))
    fused = CamExplainer(keras_forward(model, cam)).explain(x, threshold=0.5)
    ref = CamExplainer(keras_forward(model, cam), "tf-keras-vis", model, cam).explain(x, threshold=0.5)
    assert np.allclose(fused.p_fake, ref.p_fake, atol=1e-5)
    for method in ("gradcam", "gradcam++"):
        assert ref.cams[method].shape == fused.cams[method].shape
        assert np.allclose(ref.cams[method], fused.cams[method], atol=1e-4)
    with pytest.raises(ValueError, match="back end"):
        CamExplainer(keras_forward(model, cam), backend="magic")


def test_fused_probabilities_equal_model_output(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(4))
    explainer = CamExplainer(keras_forward(model, cam))
    ref = model.predict(x, verbose=0).ravel()
    assert np.allclose(explainer.explain(x).p_fake, ref, atol=1e-5)
    assert np.allclose(Classifier.from_keras(model, cam).predict(x), ref, atol=1e-5)


def test_heatmaps_have_grid_shape_unit_range_and_follow_the_input(detector, astronaut, hopper):
    a = detector.analyze(astronaut, cam_method="gradcam++")
    b = detector.analyze(hopper, cam_method="gradcam++")
    ha, hb = a.faces[0].heatmap, b.faces[0].heatmap
    assert ha.shape == hb.shape and ha.ndim == 2
    assert ha.min() >= 0 and ha.max() <= 1 + 1e-6
    assert not np.allclose(ha, hb)
    assert a.heatmap.shape == astronaut.shape[:2]


def test_overlay_opacity_zero_leaves_pixels_and_one_changes_them(astronaut):
    heat = np.zeros(astronaut.shape[:2], "float32")
    heat[100:200, 150:250] = 1.0
    assert np.array_equal(blend(astronaut, heat, 0.0), astronaut)
    strong = blend(astronaut, heat, 1.0)
    assert not np.array_equal(strong[100:200, 150:250], astronaut[100:200, 150:250])
    assert np.array_equal(strong[300:, :], astronaut[300:, :])  # no heat, no change


def test_render_draws_boxes_in_verdict_colours(astronaut):
    img = render(astronaut, None, [BoxLabel((10, 300, 100, 100), "FAKE 90%", True),
                                   BoxLabel((300, 300, 100, 100), "REAL 10%", False)])
    assert tuple(img[350, 10]) == (230, 57, 70)  # left edge of the fake box
    assert tuple(img[350, 300]) == (46, 160, 67)


def test_maps_from_a_lite_forward_pass_equal_the_fused_maps(patch_model):
    """The TF Lite copy of the forward pass carries the gradient through the head (here a max-pool)."""
    from detector.inference.forward import forward_function as forward_graph
    from detector.inference.lite import LiteRunner, convert

    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(6))
    fused = CamExplainer(keras_forward(model, cam)).explain(x, threshold=0.5)
    lite = CamExplainer(LiteRunner(convert(forward_graph(model, cam)))).explain(x, threshold=0.5)
    assert np.allclose(fused.p_fake, lite.p_fake, atol=1e-5)
    for method in ("gradcam", "gradcam++"):
        assert np.allclose(fused.cams[method], lite.cams[method], atol=1e-4)
