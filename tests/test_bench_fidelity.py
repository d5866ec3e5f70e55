"""The heatmap-fidelity benchmark runs on generated faces (no ../shared) and reports what it promises."""

from __future__ import annotations

import numpy as np
import pytest

from bench import fidelity
from detector.evaluation import edits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(detector):
    photos = fidelity.package_photos()[:3]
    return fidelity.run(detector, photos, ["gradcam++", "hirescam"], max_edits=10, sanity_edits=3)


def test_the_report_has_every_metric_per_method_and_part(report):
    assert report["n_edits_made"] > 10 and report["n_edits"] == 10 and report["photos_without_usable_face"] == 0
    for m in ("gradcam++", "hirescam"):
        o = report["methods"][m]["overall"]
        assert o["n"] == 10
        for key in ("pointing", "centre_prior", "random_point", "energy_ratio", "deletion_auc",
                    "deletion_random_auc", "insertion_auc", "insertion_random_auc", "restoration_auc",
                    "restoration_random_auc"):
            assert o[key] is not None and np.isfinite(o[key])
        assert 0 <= o["pointing"] <= 1 and 0 < o["random_point"] < 1
        assert 0 <= o["share_called_fake"] <= 1 and 0 <= o["pointing_as_shown"] <= 1
        assert (o["pointing_called_fake"] is None) == (o["share_called_fake"] == 0)
        assert len(o["deletion_curve"]) == len(fidelity.DELETION_STEPS)
        assert set(report["methods"][m]["per_part"]) == set(edits.EDIT_PARTS)
    assert report["best_by_pointing"] in ("gradcam++", "hirescam")
    s = report["sanity_model_randomisation"]
    assert s["n"] == 3 and -1 <= s["mean_spearman"] <= 1


def test_deletion_starts_from_the_unedited_score(report):
    o = report["methods"]["hirescam"]["overall"]
    # at 0 % nothing is greyed, so heat order and random order give the same score
    assert o["deletion_curve"][0] == pytest.approx(o["deletion_random_curve"][0], abs=1e-6)


def test_a_swapped_part_changes_only_that_part_and_its_mask_says_where(astronaut):
    import cv2

    photo = cv2.resize(astronaut[0:380, 60:440], (300, 300))
    marks = {"left_eye": (118.0, 110.0), "right_eye": (170.0, 108.0), "nose": (146.0, 140.0),
             "mouth_left": (124.0, 170.0), "mouth_right": (168.0, 168.0)}
    donor = photo[:, ::-1].copy()
    dmarks = {"left_eye": (300 - 170.0, 108.0), "right_eye": (300 - 118.0, 110.0), "nose": (300 - 146.0, 140.0),
              "mouth_left": (300 - 168.0, 168.0), "mouth_right": (300 - 124.0, 170.0)}
    e = edits.swap_part(photo, marks, donor, dmarks, "mouth")
    diff = np.abs(e.image.astype(int) - photo).sum(axis=2)
    assert e.region[170, 146] and not e.region[110, 118]
    assert diff[e.mask == 0].max() == 0  # nothing changed outside the blend
    assert diff[e.region].mean() > 5


def test_restoration_gives_back_the_unedited_pixels_in_heat_order():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    edited = original.copy()
    edited[2:4, 2:4] = 255  # a 4-pixel edit
    heat = np.zeros((8, 8), np.float32)
    heat[2:4, 2:4] = 1.0  # a map that points exactly at it
    order = np.argsort(-heat.ravel(), kind="stable")
    rand = rng.permutation(64)
    crops = dict(zip(fidelity.CURVES, fidelity.step_crops(edited, original, order, rand, 4)))
    assert np.array_equal(crops["restoration"], original)  # the four hottest pixels restored: the edit is undone
    assert (crops["deletion"][2:4, 2:4] == fidelity.GREY).all() and np.array_equal(crops["deletion"][5:], edited[5:])
    assert (crops["insertion"][2:4, 2:4] == 255).all() and (crops["insertion"][5:] == fidelity.GREY).all()
    changed = (crops["restoration_random"] != edited).any(axis=2)
    assert changed.sum() <= 4 and np.array_equal(crops["restoration_random"][~changed], edited[~changed])
    none = dict(zip(fidelity.CURVES, fidelity.step_crops(edited, original, order, rand, 0)))
    assert all(np.array_equal(none[c], edited) for c in fidelity.CURVES if not c.startswith("insertion"))


def test_every_edit_keeps_its_unedited_photo(report):
    o = report["methods"]["hirescam"]["overall"]
    assert len(o["restoration_curve"]) == len(fidelity.DELETION_STEPS)
    assert o["restoration_curve"][0] == pytest.approx(o["deletion_curve"][0], abs=1e-6)  # 0 %: the edited score
    assert np.isfinite(o["restoration_auc"]) and np.isfinite(o["restoration_random_auc"])
    photo = fidelity.package_photos()[0]
    det_marks = {"left_eye": (150.0, 140.0), "right_eye": (215.0, 138.0), "nose": (185.0, 180.0),
                 "mouth_left": (157.0, 215.0), "mouth_right": (212.0, 213.0)}
    e = edits.self_blend_part(photo, det_marks, "nose", np.random.default_rng(0))
    assert e is not None and e.original is photo
