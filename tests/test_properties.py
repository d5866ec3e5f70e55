"""Property: whatever bytes or arrays arrive, the loader returns a LoadedImage or raises an ImageError.

Nothing else may escape -- no KeyError from a plugin, no OSError from a truncated stream, no
MemoryError from a forged header -- because the front ends only catch ``DetectorError``.
Examples are capped (a few hundred per property, no database) so the suite stays fast; a small
pixel limit keeps each forged-header example cheap, and its refusal is one more typed way out.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench.hostile_inputs import astronaut, encode, small
from detector.config import Limits
from detector.errors import ImageError
from detector.inference.images import LoadedImage, load_image

LIMITS = Limits(max_pixels=2_000_000)
FAST = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def load_or_image_error(source) -> LoadedImage | ImageError:
    """The property itself: any other exception fails the test with its traceback."""
    try:
        loaded = load_image(source, LIMITS)
    except ImageError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return err
    rgb = loaded.rgb
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    return loaded


def _seeds() -> list[bytes]:
    base = small(astronaut(), 48)
    return [encode(base, "JPEG", quality=80), encode(base, "PNG"), encode(base, "GIF"),
            encode(base, "WEBP"), encode(base, "BMP"), encode(base, "TIFF")]


SEEDS = _seeds()


@st.composite
def mutated_images(draw) -> bytes:
    """A valid small image with a few bytes flipped, maybe truncated, maybe with bytes inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_escape_as_other_exceptions(data):
    load_or_image_error(data)


@FAST
@given(st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
                        b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"%PDF", b"PK\x03\x04", b"<svg"]),
       st.binary(max_size=512))
def test_known_magic_followed_by_garbage_is_a_typed_error(magic, tail):
    assert isinstance(load_or_image_error(magic + tail), ImageError)


@settings(FAST, max_examples=300)
@given(mutated_images())
def test_mutated_valid_images_load_or_raise_image_errors(data):
    load_or_image_error(data)


@FAST
@given(hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_]),
    shape=st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
                    st.tuples(st.integers(0, 40), st.integers(0, 40), st.sampled_from([1, 2, 3, 4, 5]))),
))
def test_arbitrary_arrays_load_or_raise_image_errors(arr):
    load_or_image_error(arr)
