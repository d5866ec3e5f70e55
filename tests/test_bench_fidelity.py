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
                    "deletion_random_auc", "insertion_auc", "insertion_random_auc"):
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
