"""The speed-ups change how fast things are, never what comes out.

* MTCNN's networks run converted to TF Lite (default) or as compiled graphs: the same boxes,
  scores and landmarks as the library's own eager path; the graphs trace once whatever the size.
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
    from detector.inference.faces import MtcnnFaceFinder

    out = {engine: MtcnnFaceFinder(mtcnn_engine=engine) for engine in MtcnnFaceFinder.MTCNN_ENGINES}
    for finder in out.values():
        finder.warmup()
    return out


def test_each_engine_runs_its_own_networks(finders):
    kinds = {engine: [type(net).__name__ for net in f.networks] for engine, f in finders.items()}
    assert kinds["tflite"] == ["LiteNet"] * 3
    assert kinds["graph"] == ["CompiledNet"] * 3
    assert not {"LiteNet", "CompiledNet"} & set(kinds["eager"])
    assert {engine: f.mtcnn_engine for engine, f in finders.items()} == {e: e for e in finders}


def test_the_default_engine_is_tflite():
    from detector.inference.faces import get_face_finder

    assert get_face_finder("mtcnn").mtcnn_engine == "tflite"


def test_an_unknown_engine_is_refused():
    from detector.inference.faces import MtcnnFaceFinder

    with pytest.raises(ValueError, match="engine"):
        MtcnnFaceFinder(mtcnn_engine="onnx")


def same_faces(a, b) -> bool:
    return ([f.as_list() for f in a] == [f.as_list() for f in b] and [f.landmarks for f in a] == [f.landmarks for f in b]
            and np.allclose([f.score for f in a], [f.score for f in b], atol=1e-4))


@pytest.mark.parametrize("engine", ["tflite", "graph"])
@pytest.mark.parametrize("photo", ["astronaut", "hopper", "no_face"])
def test_fast_engines_find_exactly_what_mtcnn_finds(request, finders, engine, photo):
    rgb = request.getfixturevalue(photo)
    assert same_faces(finders[engine].detect(rgb), finders["eager"].detect(rgb))


@pytest.mark.parametrize("engine", ["tflite", "graph"])
def test_a_group_photo_gives_the_same_faces_every_way(finders, astronaut, engine):
    group = np.tile(astronaut, (2, 2, 1))
    faces = finders[engine].detect(group)
    assert len(faces) == 4
    assert same_faces(faces, finders["eager"].detect(group))


def test_lite_networks_answer_an_empty_batch_with_empty_outputs(finders):
    r_net = finders["tflite"].networks[1]
    empty = r_net(np.zeros((0, 24, 24, 3), np.float32))
    full = r_net(np.zeros((3, 24, 24, 3), np.float32))
    assert [e.shape[1:] for e in empty] == [f.shape[1:] for f in full]
    assert all(e.shape[0] == 0 for e in empty) and all(f.shape[0] == 3 for f in full)


def test_graph_engine_traces_each_network_once_whatever_the_image_size(finders, astronaut, hopper):
    graph = finders["graph"]
    for rgb in (astronaut, hopper, astronaut[:300, :200], np.tile(astronaut, (2, 1, 1))):
        graph.detect(rgb)
    assert [net._fn.experimental_get_tracing_count() for net in graph.networks] == [1, 1, 1]


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
    h, w = astronaut.shape[:2]
    assert out.shape[1:] == astronaut.shape[1:] and out.shape[0] > h  # the colour legend sits under the photo
    assert not np.array_equal(out[:h], astronaut)
    bare = render_overlay(astronaut, heat, [BoxLabel((190, 70, 90, 100), "REAL 10%", False)], 0.5, with_legend=False)
    assert bare.shape == astronaut.shape and np.array_equal(bare, out[:h])


def test_the_shipped_tflite_networks_are_used(finders):
    assert [net.source for net in finders["tflite"].networks] == ["shipped"] * 3


def test_a_damaged_shipped_network_is_replaced_by_a_fresh_conversion(tmp_path, monkeypatch, caplog, astronaut):
    import logging
    import shutil

    import detector.inference.faces as faces
    import detector.inference.mtcnn_nets as nets

    for path in nets.MTCNN_LITE_DIR.glob("*.tflite"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "rnet.tflite").write_bytes(b"not a flatbuffer")
    onet = bytearray((tmp_path / "onet.tflite").read_bytes())
    onet[len(onet) // 2: len(onet) // 2 + 64] = bytes(64)  # weights changed, structure intact
    (tmp_path / "onet.tflite").write_bytes(bytes(onet))
    monkeypatch.setattr(nets, "MTCNN_LITE_DIR", tmp_path)
    with caplog.at_level(logging.WARNING):
        finder = faces.MtcnnFaceFinder()
    assert [net.source for net in finder.networks] == ["shipped", "converted at start-up", "converted at start-up"]
    assert "rnet.tflite could not be loaded" in caplog.text and "onet.tflite does not reproduce" in caplog.text
    assert len(finder.detect(astronaut)) == 1


def test_export_writes_the_three_networks(tmp_path):
    from detector.training.export import main as export_main

    assert export_main(["--mtcnn", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.tflite")) == ["onet.tflite", "pnet.tflite", "rnet.tflite"]


def test_lite_networks_refuse_inputs_smaller_than_their_window_instead_of_crashing(finders):
    p_net = finders["tflite"].networks[0]
    with pytest.raises(ValueError, match="at least 12 px"):
        p_net(np.zeros((1, 10, 40, 3), np.float32))  # TF Lite would segfault on this
    assert [o.shape for o in p_net(np.zeros((1, 12, 12, 3), np.float32))] == [(1, 1, 1, 4), (1, 1, 1, 2)]
