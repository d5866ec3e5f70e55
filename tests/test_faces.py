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


def test_batched_detection_matches_single(astronaut, hopper):
    finder = get_face_finder("mtcnn")
    single = [finder.detect(im) for im in (astronaut, hopper)]
    batched = finder.detect_many([astronaut, hopper])
    for a, b in zip(single, batched):
        assert len(a) == len(b)
        # a batch is padded to its largest image, which moves MTCNN's pyramid grid a little
        tol = 0.08 * max(a[0].w, a[0].h)
        assert np.allclose(a[0].as_list(), b[0].as_list(), atol=tol)


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
