"""The face table both apps show, the verdict states, and the overlay's numbered box captions
(detector.ui.tables, detector.inference.results, explain.overlay)."""

from __future__ import annotations

import numpy as np
import pytest

from detector.inference.results import (
    VERDICT_COLORS,
    DetectionResult,
    FaceResult,
    box_labels,
    unsure_range,
    verdict_of,
    verdict_words,
)
from detector.ui.pictures import reblend, rethumb
from detector.ui.tables import FACE_TABLE_HEADERS, NO_FACE_ROW, face_rows
from explain.overlay import CORNER_CLEAR, caption_box, draw_boxes


def _result(p: float, label: str, found: bool = True, score: float | None = None, verdict: str | None = None,
            faces: int = 1) -> DetectionResult:
    fs = [FaceResult(box=[10 + 30 * i, 20, 30, 40], p_fake=p, label=label, detector_score=score, verdict=verdict,
                     crop_box=[5 + 30 * i, 15, 50]) for i in range(faces)]
    return DetectionResult(faces=fs, label=label, p_fake=p, face_found=found, message="m", notes=[],
                           image_size=[100, 100], model={"threshold": 0.5}, cam_method=None, timings_ms={},
                           verdict=verdict)


@pytest.mark.parametrize(("p", "threshold", "found", "state"), [
    (0.9, 0.5, True, "fake"), (0.1, 0.5, True, "real"), (0.64, 0.5, True, "uncertain"), (0.36, 0.5, True, "uncertain"),
    (0.65, 0.5, True, "fake"), (0.35, 0.5, True, "real"), (0.9, 0.5, False, "no_face"),
    # a high threshold (model 2.0.0 ships 0.853) still leaves FAKE above the band, and the band is narrower there
    (0.95, 0.853, True, "fake"), (0.88, 0.853, True, "uncertain"), (0.8, 0.853, True, "uncertain"),
    (0.7, 0.853, True, "real"), (0.999, 0.98, True, "fake"),
])
def test_four_verdict_states_from_the_score_the_threshold_and_the_band(p, threshold, found, state):
    assert verdict_of(p, threshold, found) == state


def test_the_uncertain_band_is_symmetric_in_log_odds_and_contains_the_threshold():
    lo, hi = unsure_range(0.5)
    assert lo == pytest.approx(1 - hi) and 0.14 < 0.5 - lo < 0.15  # about +-0.15 around 0.5, as before
    for t in (0.1, 0.5, 0.853, 0.97):
        lo, hi = unsure_range(t)
        assert 0 < lo < t < hi < 1
        assert np.log(hi / (1 - hi)) - np.log(t / (1 - t)) == pytest.approx(np.log(t / (1 - t)) - np.log(lo / (1 - lo)))


def test_each_state_has_its_own_words_and_colour():
    words = {v: verdict_words(v) for v in ("fake", "real", "uncertain", "no_face")}
    # below the threshold the words say what the model did, never that the photo is real (issue 22)
    assert words == {"fake": "likely FAKE", "real": "NO SIGN FOUND", "uncertain": "UNCERTAIN", "no_face": "NO FACE"}
    assert len(set(VERDICT_COLORS.values())) == 4


def test_the_json_keeps_label_for_clients_and_adds_verdict():
    res = _result(0.55, "fake", verdict="uncertain")
    d = res.to_dict()
    assert (d["label"], d["verdict"]) == ("fake", "uncertain") and d["faces"][0]["verdict"] == "uncertain"
    assert _result(0.3, "real", found=False).to_dict()["verdict"] == "no_face"  # derived when not given
    assert "provenance" in d and d["provenance"] is None


def test_face_table_has_one_numbered_row_per_face_and_marks_the_no_face_case():
    assert face_rows(_result(0.25678, "real", faces=2, score=0.99876)) == [
        ["#1", "NO SIGN FOUND", 0.257, 0.999, "10, 20, 30, 40"], ["#2", "NO SIGN FOUND", 0.257, 0.999, "40, 20, 30, 40"]]
    no_face = face_rows(_result(0.25, "real", found=False, verdict="no_face"))[0]
    assert no_face[:2] == [NO_FACE_ROW, "NO FACE"] and no_face[3] is None
    assert len(FACE_TABLE_HEADERS) == len(face_rows(_result(0.25, "real"))[0])


def test_box_captions_are_numbered_like_the_table_rows_in_the_verdicts_colour():
    faces = [FaceResult(box=[1, 2, 3, 4], p_fake=0.934, label="fake"), FaceResult([5, 6, 7, 8], 0.1, "real"),
             FaceResult([9, 9, 9, 9], 0.55, "fake", verdict="uncertain")]
    labels = box_labels(faces)
    # the verdict's words, no bare percentage ("REAL 73%" read as "73 % real")
    assert [b.text for b in labels] == ["#1 likely FAKE", "#2 NO SIGN FOUND", "#3 UNCERTAIN"]
    assert [b.color for b in labels] == [VERDICT_COLORS["fake"], VERDICT_COLORS["real"], VERDICT_COLORS["uncertain"]]
    no_face = box_labels([FaceResult([0, 0, 50, 50], 0.7, "fake", verdict="no_face")])[0]
    assert no_face.text == "NO FACE (centre scored)" and no_face.color == VERDICT_COLORS["no_face"]


@pytest.mark.parametrize("box", [(0, 0, 40, 40), (2, 3, 60, 60), (560, 0, 80, 80), (600, 440, 40, 40),
                                 (-5, -5, 30, 30)])
def test_a_caption_stays_inside_the_picture_and_out_of_its_top_left_corner(box):
    width, height, text = 640, 480, (90, 22)
    x, y = caption_box(box, text, (width, height), 2)
    assert 0 <= x <= width - text[0] and 0 <= y <= height - text[1]
    in_corner = x < CORNER_CLEAR[0] * width and y < CORNER_CLEAR[1] * height
    assert not in_corner


def test_a_caption_in_the_corner_is_drawn_whole_below_it():
    # A face in the top-left corner: its caption moves down, out of the corner, and is drawn in full
    # (a filled box of the verdict's colour as tall as the text), not cut at the picture's edge.
    rgb = np.zeros((480, 640, 3), np.uint8)
    out = draw_boxes(rgb, box_labels([FaceResult([0, 0, 60, 60], 0.9, "fake")]))
    red = np.all(out == VERDICT_COLORS["fake"], axis=2)
    rows = np.flatnonzero(red[:, 62:].any(axis=1))  # the caption is wider than the box: look right of it
    assert rows.size >= 15 and rows.min() >= CORNER_CLEAR[1] * 480 - 1 and rows.max() < 479


def test_reblend_shows_heat_only_for_found_faces_and_always_draws_the_box():
    rgb = np.full((100, 100, 3), 128, np.uint8)
    assert not np.array_equal(reblend(rgb, _result(0.9, "fake"), 0.5), rgb)  # the box
    no_face = _result(0.9, "fake", found=False, verdict="no_face")
    no_face.cam_method, no_face.heatmap = "gradcam++", np.ones((100, 100), np.float32)
    face = _result(0.9, "fake")
    face.cam_method, face.heatmap = "gradcam++", np.ones((100, 100), np.float32)
    plain = reblend(rgb, no_face, 1.0)
    assert plain.shape == rgb.shape  # no heat, so no legend strip either: nothing was assessed
    hot = reblend(rgb, face, 1.0)
    assert hot.shape[0] > rgb.shape[0]  # heat blended, with the legend strip under the picture
    assert not np.array_equal(hot[:100], reblend(rgb, face, 0.0))


def test_thumbnails_are_re_blended_per_face_without_a_model_pass():
    rgb = np.full((100, 100, 3), 90, np.uint8)
    res = _result(0.9, "fake", faces=2)
    res.cam_method = "gradcam++"
    for f in res.faces:
        f.heatmap = np.ones((5, 5), np.float32)
    hot, cold = rethumb(rgb, res, 0.8), rethumb(rgb, res, 0.0)
    assert len(hot) == 2 and hot[0].shape == (128, 128, 3)
    assert not np.array_equal(hot[0], cold[0]) and np.array_equal(cold[0], cold[1])


def test_captions_of_neighbouring_faces_do_not_cover_one_another():
    # Three faces side by side, closer together than a caption is wide (the "group photo" case).
    taken: list[tuple[int, int, int, int]] = []
    for box in [(100, 40, 30, 30), (140, 40, 30, 30), (180, 40, 30, 30)]:
        x, y = caption_box(box, (110, 20), (360, 160), 2, taken)
        assert 0 <= x <= 360 - 110 and 0 <= y <= 160 - 20
        taken.append((x, y, 110, 20))
    for i, a in enumerate(taken):
        for b in taken[i + 1:]:
            assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3])
