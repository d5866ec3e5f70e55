"""Face finding and the square crop shared by training and inference."""

from __future__ import annotations

import numpy as np
import pytest

from detector.inference.faces import FaceBox, crop_square, get_face_finder, square_crop_box


@pytest.mark.parametrize("photo", ["astronaut", "hopper"])
@pytest.mark.parametrize("name", ["mtcnn", "haar"])
def test_finds_the_face_in_package_photos(request, photo, name):
    rgb = request.getfixturevalue(photo)
    faces = get_face_finder(name).detect(rgb)
    assert len(faces) >= 1
    f = faces[0]
    assert 0 <= f.x and 0 <= f.y and f.x + f.w <= rgb.shape[1] and f.y + f.h <= rgb.shape[0]
    # the face is a sizeable part of both portraits, not a speck
    assert f.w * f.h > 0.01 * rgb.shape[0] * rgb.shape[1]


def test_mtcnn_gives_landmarks_inside_the_box(astronaut):
    f = get_face_finder("mtcnn").detect(astronaut)[0]
    assert set(f.landmarks) >= {"left_eye", "right_eye", "nose"}
    for x, y in f.landmarks.values():
        assert f.x <= x <= f.x + f.w and f.y <= y <= f.y + f.h


def test_astronaut_face_is_where_it_is(astronaut):
    f = get_face_finder("mtcnn").detect(astronaut)[0]
    cx, cy = f.x + f.w / 2, f.y + f.h / 2
    assert 180 < cx < 270 and 70 < cy < 170  # her face, not the suit or the flag


def test_no_face_in_a_coffee_cup(no_face):
    assert get_face_finder("mtcnn").detect(no_face) == []


def test_batched_detection_gives_each_image_exactly_its_own_faces(astronaut, hopper, no_face):
    finder = get_face_finder("mtcnn")
    group = np.tile(astronaut, (2, 2, 1))
    tiny = astronaut[:20, :20]  # below MTCNN's smallest pyramid level: no face, never an error
    images = [astronaut, hopper, no_face, group, astronaut[::-1].copy(), tiny, hopper]
    single = [finder.detect(im) for im in images]
    for batch in (images, images[::-1]):
        found = finder.detect_many(batch)
        want = single if batch is images else single[::-1]
        assert [[f.as_list() for f in fs] for fs in found] == [[f.as_list() for f in fs] for fs in want]
        assert [[f.landmarks for f in fs] for fs in found] == [[f.landmarks for f in fs] for fs in want]
        assert [[f.score for f in fs] for fs in found] == [[f.score for f in fs] for fs in want]
    assert len(single[3]) == 4 and single[2] == [] and single[5] == []


def test_the_batched_path_is_mtcnns_own_answer_image_by_image(astronaut, hopper, no_face):
    """The canonical boxes: MTCNN's detect_faces on each image alone, whatever else is in the batch."""
    from detector.inference.faces import _shrink

    finder = get_face_finder("mtcnn")
    smalls = [_shrink(im, finder.det_max_side)[0] for im in (astronaut, hopper, no_face, np.tile(astronaut, (2, 1, 1)))]
    alone = [finder._library_call(s) or [] for s in smalls]
    together = finder._batched(smalls + smalls[:2])  # sizes repeated and mixed
    for got, want in zip(together, alone + alone[:2], strict=True):
        assert [(d["box"], d["confidence"], d["keypoints"]) for d in got] == \
            [(d["box"], d["confidence"], d["keypoints"]) for d in want]


def test_mtcnns_networks_answer_each_row_as_if_alone():
    """Why batching cannot move a box: every output row depends on its own input row only, bit for bit."""
    finder = get_face_finder("mtcnn")
    rng = np.random.default_rng(0)
    for net, side in zip(finder.networks, (40, 24, 48), strict=True):
        x = rng.uniform(-1, 1, (13, side, side, 3)).astype(np.float32)  # 13 rows: padded to a bucket of 16
        together = [np.asarray(o) for o in net(x)]
        for i in (0, 6, 12):
            alone = [np.asarray(o) for o in net(x[i:i + 1])]
            assert all(np.array_equal(t[i], a[0]) for t, a in zip(together, alone, strict=True))


def test_one_image_failing_leaves_the_others_their_faces(astronaut, hopper, monkeypatch):
    from detector.inference.faces import _shrink

    finder = get_face_finder("mtcnn")
    want = [finder.detect(astronaut), finder.detect(hopper)]
    real = finder._batched.__class__.__call__
    odd = _shrink(hopper, finder.det_max_side)[0].shape  # what MTCNN is handed of that photo

    def flaky(self, images):
        if any(im.shape == odd for im in images):
            raise RuntimeError("odd image")
        return real(self, images)

    monkeypatch.setattr(finder._batched.__class__, "__call__", flaky)
    found = finder.detect_each([astronaut, hopper])
    assert [f.as_list() for f in found[0]] == [f.as_list() for f in want[0]]
    assert isinstance(found[1], RuntimeError)
    with pytest.raises(RuntimeError, match="odd image"):
        finder.detect_many([astronaut, hopper])


@pytest.mark.parametrize("box", [FaceBox(0, 0, 50, 60), FaceBox(180, 150, 40, 40), FaceBox(90, 90, 30, 20)])
def test_square_crop_stays_inside_and_contains_the_face(box):
    w, h = 220, 200
    x0, y0, side = square_crop_box(box, w, h, margin=1.3)
    assert 0 <= x0 and 0 <= y0 and x0 + side <= w and y0 + side <= h
    assert side == min(round(1.3 * max(box.w, box.h)), min(w, h))
    assert x0 <= box.x and y0 <= box.y and box.x + box.w <= x0 + side and box.y + box.h <= y0 + side


def test_no_face_crop_is_the_centre_square():
    assert square_crop_box(None, 300, 200, 1.3) == (50, 0, 200)


def test_crop_square_resizes_to_model_input(astronaut):
    crop = crop_square(astronaut, (100, 50, 200), 160)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8


def test_astronaut_face_centre_constant_matches_the_photo():
    # The pipeline tests check EXIF boxes against this point: it must lie on the face (skin tones) ...
    from bench.hostile_inputs import ASTRONAUT_FACE_CENTRE, astronaut

    x, y = ASTRONAUT_FACE_CENTRE
    r, g, b = astronaut()[y, x].astype(int)
    assert r > g > b and r > 120
    # ... and be what its comment says: the centre of MTCNN's box on the upright photo.
    face = get_face_finder("mtcnn").detect(astronaut())[0]
    assert abs(face.x + face.w / 2 - x) <= 3 and abs(face.y + face.h / 2 - y) <= 3, face


def test_concurrent_callers_get_their_own_copy_of_the_networks_and_the_same_faces(astronaut, hopper):
    import threading

    from detector.inference.faces import MtcnnFaceFinder

    finder = MtcnnFaceFinder(lanes=2)
    want = [[f.as_list() for f in finder.detect(im)] for im in (astronaut, hopper)]
    assert finder.n_lanes == 1  # one caller at a time needs one copy
    with finder._lane():  # the first copy is busy: the next caller gets a second one
        got = finder.detect_many([astronaut, hopper])
    assert finder.n_lanes == 2 and [[f.as_list() for f in fs] for fs in got] == want
    results = []

    def find():
        for _ in range(3):
            results.append([[f.as_list() for f in fs] for fs in finder.detect_many([astronaut, hopper])])

    threads = [threading.Thread(target=find) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [want] * 9 and finder.n_lanes == 2  # never more copies than allowed
