"""The speed-ups change how fast things are, never what comes out.

* MTCNN's networks run as compiled graphs: the same boxes, scores and landmarks as the
  library's own eager path, one trace per network whatever the image size.
* The heatmap blend only computes the rectangle where there is heat: the same pixels as the
  whole-image formula.
"""

from __future__ import annotations

import numpy as np
import pytest

from explain.overlay import blend, colorize
from explain.overlay import render as render_overlay


@pytest.fixture(scope="module")
def finders():
    from detector.faces import MtcnnFaceFinder

    compiled = MtcnnFaceFinder(compiled=True)
    compiled.warmup()
    return compiled, MtcnnFaceFinder(compiled=False)


def test_the_networks_are_compiled(finders):
    compiled, eager = finders
    assert compiled.compiled and not eager.compiled


@pytest.mark.parametrize("photo", ["astronaut", "hopper", "no_face"])
def test_compiled_mtcnn_finds_exactly_what_mtcnn_finds(request, finders, photo):
    rgb = request.getfixturevalue(photo)
    compiled, eager = finders
    a, b = compiled.detect(rgb), eager.detect(rgb)
    assert [f.as_list() for f in a] == [f.as_list() for f in b]
    assert [f.landmarks for f in a] == [f.landmarks for f in b]
    assert np.allclose([f.score for f in a], [f.score for f in b], atol=1e-5)


def test_a_group_photo_gives_the_same_faces_both_ways(finders, astronaut):
    group = np.tile(astronaut, (2, 2, 1))
    compiled, eager = finders
    a, b = compiled.detect(group), eager.detect(group)
    assert len(a) == 4
    assert [f.as_list() for f in a] == [f.as_list() for f in b]


def test_warmup_traces_each_network_once_and_no_image_size_retraces(finders, astronaut, hopper):
    compiled, _ = finders
    for rgb in (astronaut, hopper, astronaut[:300, :200], np.tile(astronaut, (2, 1, 1))):
        compiled.detect(rgb)
    counts = [stage._model._fn.experimental_get_tracing_count() for stage in compiled._mtcnn.stages]
    assert counts == [1, 1, 1]


def reference_blend(rgb: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """The whole-image formula the windowed blend must reproduce."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    w = (opacity * np.clip(heat, 0, 1))[..., None]
    out = rgb.astype(np.float32) * (1 - w) + colorize(heat).astype(np.float32) * w
    return np.clip(out, 0, 255).astype(np.uint8)


def heat_with_patches(shape: tuple[int, int], patches: list[tuple[int, int, int]], rng) -> np.ndarray:
    heat = np.zeros(shape, np.float32)
    for x0, y0, side in patches:
        region = heat[y0:y0 + side, x0:x0 + side]  # clipped at the image edge
        region[:] = rng.random(region.shape, dtype=np.float32)
    return heat


@pytest.mark.parametrize("patches", [[], [(40, 30, 50)], [(0, 0, 20), (150, 100, 49)], [(0, 0, 400)]])
@pytest.mark.parametrize("opacity", [0.0, 0.35, 1.0, 1.7])
def test_windowed_blend_equals_the_whole_image_blend(patches, opacity):
    rng = np.random.default_rng(len(patches))
    rgb = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    heat = heat_with_patches(rgb.shape[:2], patches, rng)
    out = blend(rgb, heat, opacity)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.array_equal(out, reference_blend(rgb, heat, opacity))


def test_blend_leaves_the_input_alone_and_changes_only_the_heat(astronaut):
    rng = np.random.default_rng(0)
    heat = heat_with_patches(astronaut.shape[:2], [(180, 60, 120)], rng)
    before = astronaut.copy()
    out = blend(astronaut, heat, 0.8)
    assert np.array_equal(astronaut, before)
    changed = np.any(out != astronaut, axis=-1)
    assert changed[60:180, 180:300].any() and not changed[:60].any() and not changed[:, :180].any()


def test_render_with_heat_still_draws_boxes_and_heat(astronaut):
    from explain.overlay import BoxLabel

    heat = heat_with_patches(astronaut.shape[:2], [(180, 60, 120)], np.random.default_rng(1))
    out = render_overlay(astronaut, heat, [BoxLabel((190, 70, 90, 100), "REAL 10%", False)], 0.5)
    assert out.shape == astronaut.shape and not np.array_equal(out, astronaut)
