"""Model 2's building blocks: the native views, the NPR residual, face-part masks, SBI, the probe, the pairing."""

from __future__ import annotations

import numpy as np
import pytest

from detector.evaluation import probe
from detector.inference import views
from detector.training import artefact, pairing, parts, sbi

MARKS = {"left_eye": (60.0, 66.0), "right_eye": (100.0, 64.0), "nose": (81.0, 90.0),
         "mouth_left": (66.0, 113.0), "mouth_right": (96.0, 112.0)}


# ------------------------------------------------------------------ the residual


def test_a_flat_image_has_a_zero_residual():
    flat = np.full((1, 16, 16, 3), 117.0, np.float32)
    assert np.abs(artefact.residual_numpy(flat)).max() == 0.0


def test_a_checkerboard_has_a_large_residual():
    yy, xx = np.mgrid[0:16, 0:16]
    board = np.repeat((((yy + xx) % 2) * 255.0)[None, ..., None], 3, axis=3).astype(np.float32)
    r = artefact.residual_numpy(board)
    assert np.abs(r).mean() > 100  # half the pixels differ from their block's top-left one by 255


def test_a_nearest_upsampled_image_has_a_zero_residual_but_its_source_does_not():
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    up = np.repeat(np.repeat(small, 2, axis=1), 2, axis=2)
    assert np.abs(artefact.residual_numpy(up)).max() == 0.0
    assert np.abs(artefact.residual_numpy(rng.uniform(0, 255, (1, 16, 16, 3)))).mean() > 10


def test_the_keras_residual_equals_the_numpy_one():
    import keras

    x = keras.Input((16, 16, 3))
    m = keras.Model(x, artefact.npr_residual(x))
    m.get_layer(artefact.PICK_LAYER).set_weights([artefact._pick_kernel()])
    data = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(m(data)), artefact.residual_numpy(data), atol=1e-4)


# ------------------------------------------------------------------ views


def test_native_crops_keep_their_pixels_and_large_ones_are_capped():
    rng = np.random.default_rng(2)
    small = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    assert np.array_equal(views.cap_native(small), small)
    big = rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)
    assert views.cap_native(big).shape == (views.NATIVE_MAX, views.NATIVE_MAX, 3)


def test_grid_patches_are_unresized_pixels_of_the_crop_centre():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    got = views.grid_patches(crop)
    assert got.shape == (4, 64, 64, 3)
    for p, (x, y) in zip(got, views.grid_positions(200), strict=True):
        assert np.array_equal(p, crop[y:y + 64, x:x + 64]) and x % 2 == 0 and y % 2 == 0
    xs = sorted({x for x, _ in views.grid_positions(200)})
    assert xs == [36, 100]  # a 2 x 2 tiling of the central 128 px


def test_tiny_crops_are_padded_not_resized():
    crop = np.random.default_rng(4).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    got = views.grid_patches(crop)
    assert got.shape == (4, 64, 64, 3)
    assert np.array_equal(got[0][12:52, 12:52], crop)


def test_random_patches_are_seeded_and_inside_the_crop():
    crop = np.random.default_rng(5).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    a = views.random_patches(crop, np.random.default_rng(9))
    b = views.random_patches(crop, np.random.default_rng(9))
    assert np.array_equal(a, b) and a.shape == (4, 64, 64, 3)


def test_patch_maps_paste_back_where_the_patches_came_from():
    maps = np.zeros((4, 8, 8), np.float32)
    maps[3] = 1.0  # bottom-right patch only
    full, covered = views.patch_map_to_crop(maps, 200)
    assert full.shape == (200, 200) and covered[36:164, 36:164].all() and not covered[:30].any()
    assert full[150, 150] == 1.0 and full[40, 40] == 0.0


# ------------------------------------------------------------------ part masks and SBI


@pytest.mark.parametrize("part,inside,outside", [
    ("left_eye", ["left_eye"], ["right_eye", "nose", "mouth_left"]),
    ("right_eye", ["right_eye"], ["left_eye", "nose", "mouth_right"]),
    ("nose", ["nose"], ["left_eye", "right_eye", "mouth_left", "mouth_right"]),
    ("mouth", ["mouth_left", "mouth_right"], ["left_eye", "right_eye", "nose"]),
    ("lower_face", ["mouth_left", "mouth_right"], ["left_eye", "right_eye"]),
    ("face", ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"], []),
])
def test_part_masks_lie_over_the_landmarks_they_name(part, inside, outside):
    mask = parts.part_mask((160, 160), MARKS, part)
    for name in inside:
        x, y = (int(round(v)) for v in MARKS[name])
        assert mask[y, x] == 1.0, f"{part} mask misses {name}"
    for name in outside:
        x, y = (int(round(v)) for v in MARKS[name])
        assert mask[y, x] == 0.0, f"{part} mask covers {name}"
    assert 0 < mask.mean() < 0.5


def test_part_masks_turn_with_the_head():
    """Rotate the landmarks 90 degrees: the eye masks follow (tall instead of wide)."""
    c = 80.0
    turned = {k: (c - (y - c), c + (x - c)) for k, (x, y) in MARKS.items()}
    m = parts.part_mask((160, 160), turned, "left_eye")
    ys, xs = np.nonzero(m)
    assert np.ptp(ys) > np.ptp(xs)


def test_missing_landmarks_give_an_empty_part_mask():
    assert parts.part_mask((64, 64), {"nose": (3, 3)}, "mouth").max() == 0.0


@pytest.mark.parametrize("part", ["left_eye", "nose", "mouth"])
def test_a_part_blend_changes_that_part_only(part, astronaut):
    import cv2

    face = cv2.resize(astronaut[30:230, 140:340], (160, 160))
    fake, mask = sbi.self_blend(face, MARKS, np.random.default_rng(11), part)
    diff = np.abs(fake.astype(int) - face).mean(axis=2)
    hard = parts.part_mask((160, 160), MARKS, part, 1.0) > 0
    assert mask.max() > 0.2 and diff[hard].mean() > diff[~hard].mean()
    far = parts.part_mask((160, 160), MARKS, "face", 1.3) == 0
    assert mask[far].max() < 0.05  # nothing blended outside the face


def test_sbi_draws_parts_and_whole_faces():
    rng = np.random.default_rng(12)
    areas = [sbi.blend_mask(160, MARKS, rng).mean() for _ in range(40)]
    assert min(areas) < 0.5 * max(areas)  # small part blends and large face blends both occur


# ------------------------------------------------------------------ the shortcut probe


def _rows(n, cue: bool, rng):
    rows = []
    for i in range(n):
        label = i % 2
        w = (256 if label else 178) if cue else 224
        rows.append({"label": label, "source": "S", "group": f"g{i}", "width": w, "height": w,
                     "file_bytes": rng.normal(9000, 800), "jpeg_quality": 90.0,
                     "brightness": rng.normal(110, 10), "sharpness": rng.normal(300, 50)})
    return rows


def test_the_probe_finds_a_planted_size_cue():
    rng = np.random.default_rng(0)
    res = probe.probe(_rows(200, True, rng))["S"]
    assert res["auc"] > 0.95 and res["flagged"] and res["single_feature_auc"]["width"] > 0.95


def test_the_probe_finds_nothing_in_random_features():
    res = probe.probe(_rows(200, False, np.random.default_rng(1)))["S"]
    assert res["auc"] < 0.7 and not res["flagged"]


def test_the_probe_table_marks_flagged_sources():
    table = {"S": probe.probe(_rows(100, True, np.random.default_rng(2)))["S"]}
    assert "**flagged**" in probe.markdown(table, {"S": 0.9})


# ------------------------------------------------------------------ pairing fake-only sources


def test_partners_are_matched_by_features_and_capped_per_donor():
    rng = np.random.default_rng(3)
    rows = []
    for _i in range(20):
        rows.append({"source": "FAKEONLY", "label": 1, "split": "train", "width": 256, "height": 256,
                     "file_bytes": 20000, "jpeg_quality": 90, "brightness": 120, "sharpness": 1000, "side": 250})
    for src, w, sharp in (("A", 256, 1000), ("B", 128, 200)):
        for _i in range(50):
            rows.append({"source": src, "label": 0, "split": "train", "width": w, "height": w,
                         "file_bytes": 20000 if src == "A" else 4000, "jpeg_quality": 90,
                         "brightness": 120 + rng.normal(0, 2), "sharpness": sharp, "side": w - 6})
    moved = pairing.match_partners(rows, cap=0.3)
    donors = [rows[i]["source"] for i in moved]
    assert len(moved) == 20 and donors.count("A") == 15 and donors.count("B") == 5  # A is capped at 30 % of 50
    rows2 = pairing.apply(rows, moved)
    assert all(rows2[i]["source"] == "FAKEONLY" and rows2[i]["donor"] in ("A", "B") for i in moved)


# ------------------------------------------------------------------ the two-branch model as a saved bundle


def test_the_two_branch_model_is_one_safe_functional_model_with_one_sigmoid_and_an_equal_lite_copy(tmp_path):
    import keras

    from detector.inference.bundle import ModelConfig, load_bundle, load_lite
    from detector.training.export import save_bundle
    from detector.training.model import build_model

    keras.utils.set_random_seed(4)
    model, cam = build_model("dual_small", 32, pretrained=False, patch=16, n_patches=4)
    k, b = model.get_layer("logit").get_weights()
    model.get_layer("logit").set_weights([k * 30, b])  # spread the probabilities
    cfg = ModelConfig(name="tiny-dual", architecture="dual_small", input_size=32, patch=16, n_patches=4, native_max=48,
                      inputs=["image", "patches"], cam_layer=cam, artefact_layer=artefact.FEATURE_LAYER,
                      map_layers=[cam, artefact.FEATURE_LAYER])
    out = save_bundle(model, cfg, tmp_path / "m")
    loaded, card = load_bundle(out)  # SHA-256 checked, safe_mode, no Lambda layers
    assert isinstance(loaded, keras.Model) and loaded.output_shape == (None, 1)
    assert loaded.layers[-1].name == "p_fake" and loaded.layers[-1].get_config()["activation"] == "sigmoid"
    assert [t.name.split(":")[0] for t in loaded.inputs] == ["image", "patches"]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded.layers)
    pick = loaded.get_layer(artefact.PICK_LAYER)
    assert not pick.trainable and np.array_equal(pick.get_weights()[0], artefact._pick_kernel())  # the residual survives saving
    rng = np.random.default_rng(5)
    crops = [rng.integers(0, 255, (s, s, 3), dtype=np.uint8) for s in (48, 30, 40)]
    v = views.face_views(crops, views.spec_of(card))
    want = loaded.predict([v.image, v.patches], verbose=0).ravel()
    runner = load_lite(out, card)
    got = runner(v.image, v.patches)[1]
    assert np.allclose(got, want, atol=1e-5) and np.ptp(want) > 0.01  # equal, and not a constant
