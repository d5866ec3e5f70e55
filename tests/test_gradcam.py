"""Heatmaps: shapes, ranges, agreement with tf-keras-vis, and that the peak finds the evidence.

Two tiny models trained here: a one-branch CNN whose class is a bright patch anywhere (the 1.x
contract), and a two-branch model of the shipped design whose class is a *fine* high-frequency
patch at a random position -- invisible in the half-resolution semantic view, so only the
native-resolution artefact branch can find it, and the fused map must point at it.
"""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from detector.inference.forward import Classifier, forward_function, head_gradients, keras_forward, lite_forward
from detector.inference.lite import LiteRunner, convert
from detector.inference.views import ViewSpec, face_views
from detector.training.model import build_model
from explain import METHODS
from explain.gradcam import GRID, CamExplainer, MapLayout, TfKerasVisCams
from explain.overlay import BoxLabel, blend, crop_heat, fade_window, paste_heatmaps, render

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
    """A few-thousand-parameter CNN with the head contract of the real model (GAP -> ``logit`` -> sigmoid)."""
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="cam_conv")(x)  # 16x16 grid
    x = keras.layers.GlobalAveragePooling2D()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inp, keras.layers.Activation("sigmoid", name="p_fake")(logit)), "cam_conv"


def layout1(cam: str) -> MapLayout:
    return MapLayout(layers=(cam,), semantic=cam, semantic_last=cam)


@pytest.fixture(scope="module")
def patch_model():
    keras.utils.set_random_seed(0)
    model, cam = tiny_cam_model()
    x, y, _ = patch_dataset(800, np.random.default_rng(0))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    return model, cam


def explainer1(net, cam, **kw) -> CamExplainer:
    return CamExplainer(keras_forward(net, [cam]), layout1(cam), **kw)


def peak_in(cam_grid: np.ndarray, r0: int, c0: int, size: int, side: int, tol: int) -> bool:
    heat = cv2.resize(cam_grid, (side, side), interpolation=cv2.INTER_LINEAR)
    r, c = np.unravel_index(np.argmax(heat), heat.shape)
    return bool((r0 - tol <= r < r0 + size + tol) and (c0 - tol <= c < c0 + size + tol))


def test_tiny_model_learns_the_patch(patch_model):
    model, _ = patch_model
    x, y, _ = patch_dataset(200, np.random.default_rng(1))
    acc = float(np.mean((model.predict(x, verbose=0).ravel() >= 0.5) == y))
    assert acc > 0.95


@pytest.mark.parametrize("method", METHODS)
def test_heatmap_peak_lands_on_the_deciding_patch(patch_model, method):
    model, cam = patch_model
    x, y, where = patch_dataset(40, np.random.default_rng(2))
    fakes = np.where(y == 1)[0]
    out = explainer1(model, cam).explain([x[fakes]], threshold=0.5, methods=(method,))
    hits = sum(peak_in(out.cams[method][k], *where[i], PATCH, SIZE, 4) for k, i in enumerate(fakes))
    assert hits / len(fakes) >= 0.9


def test_head_gradients_equal_the_tape_gradient(patch_model):
    import tensorflow as tf

    model, cam = patch_model
    x, _, _ = patch_dataset(4, np.random.default_rng(8))
    graph = keras.Model(model.inputs, [model.get_layer(cam).output, model.get_layer("logit").output])
    with tf.GradientTape() as tape:
        feats, logit = graph(x, training=False)
        tape.watch(feats)
        total = tf.reduce_sum(logit)
    want = tape.gradient(total, feats).numpy()
    got = head_gradients(model, [cam])([feats])[0].numpy()
    assert np.allclose(got, want, atol=1e-7)


def test_fused_maps_equal_tf_keras_vis(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(3))
    fused = explainer1(model, cam).explain([x], threshold=0.5)
    ref = explainer1(model, cam, backend="tf-keras-vis", model=model).explain([x], threshold=0.5)
    assert np.allclose(fused.p_fake, ref.p_fake, atol=1e-5)
    for method in METHODS:
        assert ref.cams[method].shape == fused.cams[method].shape == (6, GRID, GRID)
        assert np.allclose(ref.cams[method], fused.cams[method], atol=1e-4), method
    with pytest.raises(ValueError, match="back end"):
        explainer1(model, cam, backend="magic")


def test_the_methods_differ_where_they_should(patch_model):
    """HiResCAM equals Grad-CAM on a GAP + linear head (both are the class activation map); Grad-CAM++ does not."""
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(9))
    out = explainer1(model, cam).explain([x], threshold=0.5)
    assert np.allclose(out.cams["gradcam"], out.cams["hirescam"], atol=1e-5)
    assert not np.allclose(out.cams["gradcam"], out.cams["gradcam++"], atol=1e-3)


def test_fused_probabilities_equal_model_output(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(4))
    ref = model.predict(x, verbose=0).ravel()
    assert np.allclose(explainer1(model, cam).explain([x]).p_fake, ref, atol=1e-5)
    assert np.allclose(Classifier.from_keras(model, layout1(cam)).predict({"image": x}), ref, atol=1e-5)


def test_maps_from_a_lite_forward_pass_equal_the_fused_maps(patch_model):
    model, cam = patch_model
    x, _, _ = patch_dataset(6, np.random.default_rng(6))
    fused = explainer1(model, cam).explain([x], threshold=0.5)
    runner = LiteRunner(convert(forward_function(model, [cam])), inputs=["image"])
    lite = CamExplainer(lite_forward(runner), layout1(cam)).explain([x], threshold=0.5)
    assert np.allclose(fused.p_fake, lite.p_fake, atol=1e-5)
    for method in METHODS:
        assert np.allclose(fused.cams[method], lite.cams[method], atol=1e-4)


# ---------------------------------------------------------------------- the two-branch model

NATIVE, SPEC = 64, ViewSpec(input_size=32, patch=32, n_patches=4, native_max=64)
FINE = 12


def fine_dataset(n: int, rng: np.random.Generator):
    """Smooth noise crops; fakes carry a +-40 checkerboard in a FINE x FINE square at a random position.

    The semantic view (half resolution, area averaging) averages the checkerboard away.
    """
    base = rng.normal(120, 30, (n, NATIVE // 8, NATIVE // 8, 3))
    crops = np.stack([cv2.resize(b, (NATIVE, NATIVE), interpolation=cv2.INTER_CUBIC) for b in base])
    y = (np.arange(n) % 2).astype("float32")
    where = rng.integers(0, (NATIVE - FINE) // 2, (n, 2)) * 2
    board = (np.indices((FINE, FINE)).sum(axis=0) % 2 * 2 - 1)[..., None] * 40.0
    for i in np.where(y == 1)[0]:
        r, c = where[i]
        crops[i, r:r + FINE, c:c + FINE] += board
    return np.clip(crops, 0, 255).astype(np.uint8), y, where


@pytest.fixture(scope="module")
def dual_model():
    keras.utils.set_random_seed(1)
    model, cam = build_model("dual_small", SPEC.input_size, pretrained=False, patch=SPEC.patch,
                             n_patches=SPEC.n_patches)
    crops, y, _ = fine_dataset(600, np.random.default_rng(10))
    v = face_views(list(crops), SPEC)
    model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy")
    model.fit([v.image, v.patches], y, batch_size=16, epochs=6, verbose=0)
    for k in range(0, 600, 8):  # let the tiny semantic branch's batch-norm running statistics catch up (momentum 0.99)
        model([v.image[k:k + 8], v.patches[k:k + 8]], training=True)
    layout = MapLayout(layers=(cam, "art_stage2_out"), semantic=cam, semantic_last=cam, artefact="art_stage2_out",
                       n_patches=SPEC.n_patches)
    return model, layout


def test_the_two_branch_model_learns_the_fine_patch(dual_model):
    model, _ = dual_model
    crops, y, _ = fine_dataset(200, np.random.default_rng(11))
    v = face_views(list(crops), SPEC)
    assert float(np.mean((model.predict([v.image, v.patches], verbose=0).ravel() >= 0.5) == y)) > 0.9


def test_the_fused_map_points_at_a_fine_patch_at_a_random_position(dual_model):
    """Issue 13's localisation test: the finer (artefact-branch) map puts the peak in the patch for >= 90 % of fakes."""
    model, layout = dual_model
    crops, y, where = fine_dataset(60, np.random.default_rng(12))
    fakes = np.where(y == 1)[0]
    v = face_views([crops[i] for i in fakes], SPEC)
    out = CamExplainer(keras_forward(model, layout.layers), layout).explain([v.image, v.patches], 0.5, v.boxes)
    from explain import METHODS as ALL

    default = ALL[0]
    hits = sum(peak_in(out.cams[default][k], *where[i], FINE, NATIVE, 4) for k, i in enumerate(fakes))
    assert hits / len(fakes) >= 0.9
    assert float(out.shares["artefact"].mean()) > 0.5  # the branch that can see the patch drew the map


def test_one_forward_pass_explained_at_two_thresholds(dual_model):
    """explain(outputs=...) re-uses a pass: the same maps as a fresh call, and no second forward."""
    model, layout = dual_model
    crops, _, _ = fine_dataset(6, np.random.default_rng(5))
    v = face_views(list(crops), SPEC)
    calls = []
    forward = keras_forward(model, layout.layers)
    ex = CamExplainer(lambda xs: calls.append(1) or forward(xs), layout)
    feed = [v.image, v.patches]
    o = ex.outputs(feed)
    for threshold in (0.5, 0.0):
        again = ex.explain(feed, threshold, v.boxes, outputs=o)
        fresh = CamExplainer(forward, layout).explain(feed, threshold, v.boxes)
        assert all(np.allclose(again.cams[m], fresh.cams[m], atol=1e-6) for m in fresh.cams)
    assert len(calls) == 1
    flipped = ex.explain(feed, 0.0, v.boxes, outputs=o).cams  # every face explained as fake...
    shown = ex.explain(feed, 1.01, v.boxes, outputs=o).cams  # ... and as real: different evidence
    assert any(not np.allclose(flipped[m], shown[m]) for m in shown)


def test_two_branch_maps_equal_tf_keras_vis_and_tf_lite(dual_model):
    model, layout = dual_model
    crops, _, _ = fine_dataset(6, np.random.default_rng(13))
    v = face_views(list(crops), SPEC)
    feed = [v.image, v.patches]
    fused = CamExplainer(keras_forward(model, layout.layers), layout).explain(feed, 0.5, v.boxes)
    ref = CamExplainer(keras_forward(model, layout.layers), layout, "tf-keras-vis", model).explain(feed, 0.5, v.boxes)
    runner = LiteRunner(convert(forward_function(model, layout.layers)), inputs=["image", "patches"])
    lite = CamExplainer(lite_forward(runner), layout).explain(feed, 0.5, v.boxes)
    for method in METHODS:
        assert np.allclose(ref.cams[method], fused.cams[method], atol=1e-4), method
        assert np.allclose(lite.cams[method], fused.cams[method], atol=1e-4), method
    assert np.allclose(lite.p_fake, model.predict(feed, verbose=0).ravel(), atol=1e-5)


def test_tf_keras_vis_maps_each_branch_layer(dual_model):
    model, layout = dual_model
    crops, _, _ = fine_dataset(2, np.random.default_rng(14))
    v = face_views(list(crops), SPEC)
    art = TfKerasVisCams(model)([v.image, v.patches], np.ones(2), "layercam", "art_stage2_out")
    assert art.shape == (2, SPEC.n_patches * SPEC.patch // 8, SPEC.patch // 8)


# ---------------------------------------------------------------------- the shipped model and the overlay


def test_heatmaps_have_grid_shape_unit_range_and_follow_the_input(detector, astronaut, hopper):
    a = detector.analyze(astronaut, cam_method="gradcam++")
    b = detector.analyze(hopper, cam_method="gradcam++")
    ha, hb = a.faces[0].heatmap, b.faces[0].heatmap
    assert ha.shape == hb.shape == (GRID, GRID)
    assert ha.min() >= 0 and ha.max() <= 1 + 1e-6
    assert not np.allclose(ha, hb)
    assert a.heatmap.shape == astronaut.shape[:2]


def test_the_overlay_is_zero_outside_the_faded_crop_and_continuous_at_its_edge():
    heat = paste_heatmaps((200, 300), [(50, 40, 120)], [np.ones((GRID, GRID), np.float32)])
    outside = np.ones_like(heat, bool)
    outside[40:160, 50:170] = False
    assert heat[outside].max() == 0.0
    assert heat[100, 110] == pytest.approx(1.0, abs=1e-6)  # full strength in the middle
    ring = np.concatenate([heat[40, 50:170], heat[159, 50:170], heat[40:160, 50], heat[40:160, 169]])
    assert ring.max() < 0.02  # faded to (nearly) nothing at the crop's edge: no hard square
    jumps = np.abs(np.diff(heat, axis=1)).max()
    assert jumps < 0.1  # no step anywhere (a hard-edged square would jump by 1.0)


def test_the_fade_window_is_smooth_and_round():
    w = fade_window(101)
    assert w[50, 50] == 1.0 and w[0, 0] == 0.0 and w[50, 0] == pytest.approx(0.0, abs=1e-3)
    assert np.abs(np.diff(w, axis=0)).max() < 0.1
    assert np.allclose(w, w.T)


def test_crop_heat_is_the_faded_map_at_crop_size():
    cam = np.zeros((GRID, GRID), np.float32)
    cam[:, : GRID // 2] = 1.0
    h = crop_heat(cam, 80)
    assert h.shape == (80, 80) and h[40, 10] > 0.5 and h[40, 70] < 0.05


def test_overlay_opacity_zero_leaves_pixels_and_one_changes_them(astronaut):
    heat = np.zeros(astronaut.shape[:2], "float32")
    heat[100:200, 150:250] = 1.0
    assert np.array_equal(blend(astronaut, heat, 0.0), astronaut)
    strong = blend(astronaut, heat, 1.0)
    assert not np.array_equal(strong[100:200, 150:250], astronaut[100:200, 150:250])
    assert np.array_equal(strong[300:, :], astronaut[300:, :])  # no heat, no change


def test_render_draws_boxes_in_verdict_colours(astronaut):
    img = render(astronaut, None, [BoxLabel((10, 300, 100, 100), "#1 FAKE 90%", True),
                                   BoxLabel((300, 300, 100, 100), "#2 REAL 10%", False)])
    assert tuple(img[350, 10]) == (230, 57, 70)  # left edge of the fake box
    assert tuple(img[350, 300]) == (46, 160, 67)
