"""The heatmap's colour says what it shows (issue 22): one scale for evidence *for* fake (yellow to
red), another for evidence *against* it (blues), and a legend that names each scale it uses, stays
legible on a 12-megapixel photo and is never cut on a small one."""

from __future__ import annotations

import numpy as np
import pytest

from detector.inference.results import DetectionResult, FaceResult, evidence_signs
from detector.ui.pictures import reblend, rethumb
from explain.overlay import (
    LEGEND_ENDS,
    LEGEND_TITLES,
    _text_width,
    blend,
    colorize,
    evidence_sides,
    face_thumbnail,
    legend,
    legend_font,
    paste_heatmaps,
    render,
)


def _hue(rgb: np.ndarray) -> str:
    r, _, b = (float(v) for v in np.asarray(rgb, np.float32).reshape(-1, 3).mean(axis=0))
    return "red" if r > b + 40 else "blue" if b > r + 40 else "neither"


def test_the_two_scales_do_not_share_a_hue():
    ramp = np.linspace(0.2, 1.0, 50, dtype=np.float32)
    assert all(_hue(c) == "red" for c in colorize(ramp[:, None])[:, 0][10:])  # yellow..red: red above blue
    assert all(_hue(c) == "blue" for c in colorize(ramp[:, None], "real")[:, 0])
    # the old jet map drew weak evidence for FAKE in blue: no longer
    assert _hue(colorize(np.float32([[0.1]]))) != "blue"


def test_a_face_called_real_is_painted_blue_and_one_called_fake_red():
    grey = np.full((100, 200, 3), 128, np.uint8)
    cams = [np.ones((8, 8), np.float32)] * 2
    faces = [FaceResult([0, 0, 100, 100], 0.95, "fake"), FaceResult([100, 0, 100, 100], 0.05, "real")]
    heat = paste_heatmaps(grey.shape, [(0, 0, 100), (100, 0, 100)], cams, evidence_signs(faces))
    assert heat[50, 50] > 0 > heat[50, 150]
    out = blend(grey, heat, 1.0)
    assert _hue(out[40:60, 40:60]) == "red" and _hue(out[40:60, 140:160]) == "blue"
    assert evidence_sides(heat) == ("fake", "real")
    # the thumbnails follow the same rule
    assert _hue(face_thumbnail(grey, (100, 0, 100), cams[1], 64, 1.0, "real")[24:40, 24:40]) == "blue"
    assert _hue(face_thumbnail(grey, (0, 0, 100), cams[0], 64, 1.0, "fake")[24:40, 24:40]) == "red"


def test_unsigned_maps_blend_as_before():
    heat = paste_heatmaps((50, 50), [(0, 0, 50)], [np.ones((8, 8), np.float32)])
    assert heat.min() >= 0 and evidence_sides(heat) == ("fake",)


def test_reblend_and_rethumb_keep_each_faces_direction():
    grey = np.full((100, 100, 3), 128, np.uint8)
    face = FaceResult([10, 10, 80, 80], 0.05, "real", crop_box=[0, 0, 100], heatmap=np.ones((8, 8), np.float32))
    res = DetectionResult(faces=[face], label="real", p_fake=0.05, face_found=True, message="", notes=[],
                          image_size=[100, 100], model={}, cam_method="gradcam++", timings_ms={},
                          heatmap=paste_heatmaps((100, 100), [(0, 0, 100)], [face.heatmap], evidence_signs([face])))
    out = reblend(grey, res, 1.0)
    assert _hue(out[40:60, 40:60]) == "blue" and out.shape[0] > 100  # with its legend strip
    assert _hue(rethumb(grey, res, 1.0, 64)[0][24:40, 24:40]) == "blue"


@pytest.mark.parametrize("width", [96, 120, 160, 200, 320, 390, 640, 1280, 4000, 8000])
@pytest.mark.parametrize("sides", [("fake",), ("real",), ("fake", "real")])
def test_every_legend_word_fits_whole_at_any_width(width, sides):
    font, weight = legend_font(width, sides)
    pad = max(4, width // 40)
    for side in sides:
        assert _text_width(LEGEND_TITLES[side], font, weight) <= width - 2 * pad
    ends = sum(_text_width(t, font, weight) for t in LEGEND_ENDS)
    assert ends + 4 * pad < 0.8 * width  # "weak", a bar, "strong": never cut to one word
    strip = legend(width, sides=sides)
    assert strip.shape[1] == width and strip.shape[0] >= 20


def _ink_share(strip: np.ndarray) -> float:
    """Share of the strip's area in dark text (the bars are coloured, the text near-black)."""
    return float((strip.max(axis=2) < 90).mean())


def test_the_legend_is_as_legible_on_a_huge_photo_as_on_a_small_one():
    small, huge = legend(640, sides=("fake", "real")), legend(6000, sides=("fake", "real"))
    # the strip grows with the picture (the old one was a thin line of 1-px text on a 6000 px photo)
    assert huge.shape[0] / 6000 == pytest.approx(small.shape[0] / 640, rel=0.35)
    assert _ink_share(huge) >= 0.6 * _ink_share(small) > 0


def test_the_overlay_legend_names_the_scales_the_picture_uses():
    grey = np.full((300, 300, 3), 128, np.uint8)
    only_real = -paste_heatmaps((300, 300), [(50, 50, 200)], [np.ones((8, 8), np.float32)])
    both = paste_heatmaps((300, 300), [(0, 0, 150), (150, 150, 150)], [np.ones((8, 8), np.float32)] * 2, [1, -1])
    one = render(grey, only_real, [], 0.5)
    two = render(grey, both, [], 0.5)
    assert two.shape[0] > one.shape[0] > 300  # two scales, two rows in the key
    assert render(grey, np.zeros((300, 300), np.float32), [], 0.5).shape[0] == 300  # no heat, no key
