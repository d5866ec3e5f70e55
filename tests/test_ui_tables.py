"""The face table both apps show, and the overlay's box captions (detector.ui.tables, results.box_labels)."""

from __future__ import annotations

import numpy as np

from detector.inference.results import DetectionResult, FaceResult, box_labels, verdict_words
from detector.ui.pictures import reblend
from detector.ui.tables import FACE_TABLE_HEADERS, face_records, face_rows


def _result(p: float, label: str, found: bool = True, score: float | None = None) -> DetectionResult:
    face = FaceResult(box=[10, 20, 30, 40], p_fake=p, label=label, detector_score=score)
    return DetectionResult(faces=[face], label=label, p_fake=p, face_found=found, message="m", notes=[],
                           image_size=[100, 100], model={}, cam_method=None, timings_ms={})


def test_face_table_has_one_row_per_face_and_marks_the_no_face_case():
    assert face_rows(_result(0.25, "real")) == [["1", "10, 20, 30, 40", 0.25, "real"]]
    assert face_rows(_result(0.25, "real", found=False))[0][0] == "whole image (no face)"
    assert len(FACE_TABLE_HEADERS) == len(face_rows(_result(0.25, "real"))[0])


def test_streamlit_records_are_the_same_rows_verdict_first_with_the_finder_score():
    rec = face_records(_result(0.25678, "fake", score=0.99876))
    assert rec == [{"face": "1", "verdict": "fake", "P(fake)": 0.257, "box (x, y, w, h)": "10, 20, 30, 40",
                    "detector score": 0.999}]
    assert face_records(_result(0.5, "real", found=False))[0]["detector score"] is None


def test_box_captions_and_verdict_words_are_one_vocabulary():
    faces = [FaceResult(box=[1, 2, 3, 4], p_fake=0.934, label="fake"), FaceResult([5, 6, 7, 8], 0.1, "real")]
    labels = box_labels(faces)
    assert [(b.box, b.text, b.fake) for b in labels] == [((1, 2, 3, 4), "FAKE 93%", True),
                                                         ((5, 6, 7, 8), "REAL 10%", False)]
    assert (verdict_words("fake"), verdict_words("real")) == ("likely FAKE", "likely REAL")


def test_reblend_draws_boxes_only_for_found_faces_and_blends_the_heatmap():
    rgb = np.full((100, 100, 3), 128, np.uint8)
    res = _result(0.9, "fake")
    assert not np.array_equal(reblend(rgb, res, 0.5), rgb)  # the box
    assert np.array_equal(reblend(rgb, _result(0.9, "fake", found=False), 0.5), rgb)  # no face: no box
    res_no_face = _result(0.9, "fake", found=False)
    res_no_face.cam_method, res_no_face.heatmap = "gradcam++", np.ones((100, 100), np.float32)
    assert np.array_equal(reblend(rgb, res_no_face, 0.0), rgb)  # opacity 0: heat not blended
    assert not np.array_equal(reblend(rgb, res_no_face, 1.0), rgb)
