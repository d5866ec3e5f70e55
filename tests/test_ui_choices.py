"""Heatmap and video choices (detector.ui.choices): what the apps offer and what the detector gets."""

from __future__ import annotations

import pytest

from detector.config import MAX_VIDEO_FRAMES, VIDEO_FRAMES, VIDEO_TOP_K
from detector.errors import DetectorError
from detector.ui.choices import SAME_MAPS, api_cam_label, cam_choices, cam_method_from, video_request


@pytest.mark.parametrize("choice, method", [("Grad-CAM++", "gradcam++"), ("gradcam++", "gradcam++"),
                                            ("Grad-CAM", "gradcam"), ("off", None), (None, None), ("", None)])
def test_cam_choice_maps_to_the_detector_method(choice, method):
    assert cam_method_from(choice) == method


def test_the_apps_offer_only_methods_that_differ_here_default_first_then_off():
    # HiResCAM and LayerCAM draw Grad-CAM's and Grad-CAM++'s maps for this model: a choice that changes nothing
    # is not offered, and the apps say why; the API still takes them, and its label lists all it takes.
    assert cam_choices() == [("Grad-CAM++", "gradcam++"), ("Grad-CAM", "gradcam"), ("off", "off")]
    assert [cam_method_from(v) for _, v in cam_choices()] == ["gradcam++", "gradcam", None]
    assert "HiResCAM and LayerCAM" in SAME_MAPS and "same maps as Grad-CAM and Grad-CAM++" in SAME_MAPS
    assert cam_method_from("HiResCAM") == "hirescam" and cam_method_from("layercam") == "layercam"
    assert api_cam_label() == "cam_method (gradcam++, gradcam, hirescam, layercam or off)"


def test_an_unknown_cam_method_is_a_one_sentence_refusal():
    with pytest.raises(DetectorError, match="use gradcam\\+\\+, gradcam, hirescam, layercam or off"):
        cam_method_from("saliency")


@pytest.mark.parametrize("frames, top_k, expected", [
    (None, None, (VIDEO_FRAMES, VIDEO_TOP_K)), (0, 0, (VIDEO_FRAMES, VIDEO_TOP_K)), (4, 2, (4, 2)),
    (10_000, 3, (MAX_VIDEO_FRAMES, 3)), (-5, 3, (1, 1)), (5, 9, (5, 5)), (7.9, 2.5, (7, 2))])
def test_video_requests_get_defaults_and_bounds(frames, top_k, expected):
    assert video_request(frames, top_k) == expected
