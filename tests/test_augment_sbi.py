"""Robustness augmentations and Self-Blended Images change pixels the way they claim to."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.training import augment, sbi


@pytest.fixture(scope="module")
def face(astronaut):
    return cv2.resize(astronaut[40:200, 150:310], (160, 160))


def test_jpeg_quality_orders_the_error(face):
    err = [np.abs(augment.jpeg(face, q).astype(int) - face).mean() for q in (95, 50, 10)]
    assert err[0] < err[1] < err[2]


def test_rescale_loses_detail_but_keeps_size(face):
    out = augment.rescale(face, 0.25)
    assert out.shape == face.shape
    assert cv2.Laplacian(out, cv2.CV_64F).var() < 0.5 * cv2.Laplacian(face, cv2.CV_64F).var()


def test_blur_and_noise(face):
    rng = np.random.default_rng(0)
    assert cv2.Laplacian(augment.blur(face, 2.0), cv2.CV_64F).var() < cv2.Laplacian(face, cv2.CV_64F).var()
    noisy = augment.noise(face, 8.0, rng)
    assert 3.0 < np.abs(noisy.astype(int) - face).mean() < 10.0


def test_augment_chain_is_seeded_and_keeps_shape_and_dtype(face):
    a = augment.augment(face, np.random.default_rng(7))
    b = augment.augment(face, np.random.default_rng(7))
    assert a.shape == face.shape and a.dtype == np.uint8 and np.array_equal(a, b)


def test_perturbations_cover_the_robustness_table():
    assert set(augment.PERTURBATIONS) == {"jpeg90", "jpeg70", "jpeg50", "jpeg30", "down0.5", "down0.25", "blur1", "blur2"}


def test_self_blend_changes_the_face_not_the_border(face):
    marks = {"left_eye": (60, 65), "right_eye": (100, 65), "nose": (80, 90), "mouth_left": (65, 115), "mouth_right": (97, 115)}
    fake, mask = sbi.self_blend(face, marks, np.random.default_rng(3), part="face", alter="source")
    assert fake.shape == face.shape and fake.dtype == np.uint8
    diff = np.abs(fake.astype(int) - face).mean(axis=2)
    assert mask.max() > 0.2 and mask[80, 80] > 0.1
    assert diff[70:110, 60:100].mean() > 2 * diff[:10, :].mean() + 0.5  # inner face altered, border kept
    assert mask[:5, :].max() < 0.05


def test_self_blend_without_landmarks_uses_the_face_box(face):
    fake, mask = sbi.self_blend(face, None, np.random.default_rng(4), alter="source")
    assert mask[80, 80] > 0.1 and mask[0, 0] < 0.05
    assert not np.array_equal(fake, face)
    # The blend stays inside the face box (an ellipse of FACE_FRACTION of the crop): the centre is
    # altered, the corners are kept.
    diff = np.abs(fake.astype(int) - face).mean(axis=2)
    corners = np.concatenate([diff[:12, :12].ravel(), diff[:12, -12:].ravel(), diff[-12:, :12].ravel(),
                              diff[-12:, -12:].ravel()])
    assert diff[60:100, 60:100].mean() > 2 * corners.mean() + 0.5
    assert max(mask[:12, :12].max(), mask[-12:, -12:].max()) < 0.05


def test_self_blend_alters_the_source_or_the_target_as_the_paper_does(face):
    """Altering the target changes the whole picture; the blend region then keeps the original face."""
    marks = {"left_eye": (60, 65), "right_eye": (100, 65), "nose": (80, 90), "mouth_left": (65, 115), "mouth_right": (97, 115)}
    fake, mask = sbi.self_blend(face, marks, np.random.default_rng(5), part="face", ratio=1.0, alter="target")
    diff = np.abs(fake.astype(int) - face).mean(axis=2)
    assert diff[:10, :].mean() > 0.5  # the border changed (the whole target was altered)
    assert mask.max() > 0.99 and mask[:5, :].max() < 0.05  # a full-strength blend inside the face only
    with pytest.raises(ValueError, match="alter"):
        sbi.self_blend(face, marks, np.random.default_rng(5), alter="both")
