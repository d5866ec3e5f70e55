"""The loader on the whole hostile matrix, on every input type, and under the FDET_* limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from bench.hostile_inputs import (
    CASE_BY_NAME,
    CASES,
    animated_gif,
    astronaut,
    encode,
    png_bomb,
    small,
)
from detector.config import Limits
from detector.errors import (
    CorruptImageError,
    EmptyInputError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedFormatError,
)
from detector.inference.images import LoadedImage, load_image

LIMIT_VARS = ("FDET_MAX_UPLOAD_BYTES", "FDET_MAX_PIXELS", "FDET_MAX_FACES", "FDET_MIN_SIDE")


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    """Every test starts from the default limits, whatever the shell exported."""
    for name in LIMIT_VARS:
        monkeypatch.delenv(name, raising=False)


def assert_human_message(err: BaseException) -> None:
    """One short sentence for a person: no traceback, no code location, no exception repr."""
    msg = str(err)
    assert msg.strip(), f"{type(err).__name__} has an empty message"
    assert "\n" not in msg.strip() and len(msg) < 300, msg
    for marker in ("Traceback", 'File "', "Error(", "<class", "0x"):
        assert marker not in msg, msg


def assert_rgb(loaded: LoadedImage) -> None:
    rgb = loaded.rgb
    assert isinstance(loaded, LoadedImage)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags["C_CONTIGUOUS"]
    assert loaded.size == (rgb.shape[1], rgb.shape[0])


# ------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_hostile_case_gives_rgb_or_its_typed_error(case):
    if case.ok:
        loaded = load_image(case.data)
        assert_rgb(loaded)
        if case.note:
            assert any(case.note in n for n in loaded.notes), loaded.notes
    else:
        with pytest.raises(case.error) as info:
            load_image(case.data)
        assert_human_message(info.value)


@pytest.mark.parametrize("name, words", [
    ("text_as_jpg", "text file"), ("pdf_as_jpg", "PDF"), ("zip_as_jpg", "ZIP"), ("svg_as_jpg", "SVG"),
    ("html_as_png", "HTML"),
])
def test_non_image_payloads_are_named_in_the_message(name, words):
    with pytest.raises(UnsupportedFormatError, match=words):
        load_image(CASE_BY_NAME[name].data)


@pytest.mark.parametrize("head", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00",
                                  b"RIFF\x00\x01\x00\x00WEBPVP8 "])
def test_damaged_header_of_a_known_format_is_corrupt_not_unsupported(head):
    with pytest.raises(CorruptImageError) as info:
        load_image(head + bytes(range(256)) * 2)
    assert_human_message(info.value)


def test_unknown_binary_gets_a_grammatical_refusal():
    with pytest.raises(UnsupportedFormatError) as info:
        load_image(b"\x00\x01\x02\xfe\xff" * 100)
    assert str(info.value).startswith("This file is not in an image format we read.")


def test_exif_orientation_is_applied_so_the_astronaut_stands_upright():
    rgb = load_image(CASE_BY_NAME["exif_rotated_jpeg"].data).rgb.astype(np.int16)
    upright = astronaut().astype(np.int16)
    assert rgb.shape == upright.shape
    assert np.abs(rgb - upright).mean() < 6  # JPEG noise only
    assert np.abs(rgb - np.rot90(upright, 1)).mean() > 40  # the stored, lying-down pixels


def test_sixteen_bit_png_keeps_the_high_byte():
    rgb = load_image(CASE_BY_NAME["rgb16_png"].data).rgb
    np.testing.assert_array_equal(rgb, small(astronaut()))


def test_sixteen_bit_gray_png_becomes_equal_channels():
    loaded = load_image(CASE_BY_NAME["gray16_png"].data)
    gray = np.asarray(Image.fromarray(small(astronaut())).convert("L"))
    np.testing.assert_array_equal(loaded.rgb[..., 0], gray)
    assert (loaded.rgb[..., 0] == loaded.rgb[..., 2]).all()


def test_grayscale_jpeg_repeats_the_channel():
    rgb = load_image(CASE_BY_NAME["gray_jpeg"].data).rgb
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_transparent_pixels_are_flattened_onto_white():
    rgb = load_image(CASE_BY_NAME["rgba_png"].data).rgb
    assert (rgb[:, :64] == 255).all()  # the transparent band
    assert rgb[:, 64:].mean() < 200  # the photo is still there


def test_palette_transparency_index_becomes_white():
    data = CASE_BY_NAME["palette_png_transparent"].data
    with Image.open(io.BytesIO(data)) as im:
        transparent = np.asarray(im) == im.info["transparency"]
    assert transparent.any()
    rgb = load_image(data).rgb
    assert (rgb[transparent] == 255).all()


def test_cmyk_jpeg_colours_survive_conversion():
    rgb = load_image(CASE_BY_NAME["cmyk_jpeg"].data).rgb.astype(np.int16)
    assert np.abs(rgb - small(astronaut())).mean() < 12  # not inverted, not channel-swapped


def test_animated_gif_uses_the_first_frame():
    rgb = load_image(animated_gif()).rgb.astype(np.int16)
    first = small(astronaut()).astype(np.int16)
    second = np.roll(first, 20, axis=1)
    assert np.abs(rgb - first).mean() < np.abs(rgb - second).mean()


def test_multipage_tiff_uses_the_first_page_losslessly():
    np.testing.assert_array_equal(load_image(CASE_BY_NAME["multipage_tiff"].data).rgb, small(astronaut()))


@pytest.mark.parametrize("side, ok", [(15, False), (16, True)])
def test_min_side_boundary(side, ok):
    data = encode(np.full((side, side, 3), 128, np.uint8), "PNG")
    if ok:
        assert load_image(data).rgb.shape == (side, side, 3)
    else:
        with pytest.raises(ImageTooSmallError, match=f"{side}x{side}"):
            load_image(data)


# ------------------------------------------------------------------ input types


def test_path_pil_and_file_like_inputs_agree(tmp_path):
    data = CASE_BY_NAME["astronaut"].data
    path = tmp_path / "astronaut.jpg"
    path.write_bytes(data)
    ref = load_image(data).rgb
    for source in (path, str(path), Image.open(io.BytesIO(data)), io.BytesIO(data), bytearray(data),
                   memoryview(data)):
        np.testing.assert_array_equal(load_image(source).rgb, ref)


def test_pil_input_honours_exif_orientation():
    pil = Image.open(io.BytesIO(CASE_BY_NAME["exif_rotated_jpeg"].data))
    rgb = load_image(pil).rgb.astype(np.int16)
    assert np.abs(rgb - astronaut()).mean() < 6


def test_lazily_opened_truncated_pil_image_is_a_typed_error():
    pil = Image.open(io.BytesIO(CASE_BY_NAME["truncated_jpeg"].data))
    with pytest.raises(CorruptImageError):
        load_image(pil)


def test_missing_path_and_none_are_empty_input(tmp_path):
    with pytest.raises(EmptyInputError, match="No such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(EmptyInputError):
        load_image(None)


def test_unknown_source_type_is_unsupported():
    with pytest.raises(UnsupportedFormatError, match="int"):
        load_image(12345)


def test_uint16_array_is_scaled_to_8_bits():
    base = small(astronaut(), 64)
    np.testing.assert_array_equal(load_image(base.astype(np.uint16) * 257).rgb, base)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_arrays_in_either_range_become_uint8(scale):
    base = small(astronaut(), 64)
    rgb = load_image(base.astype(np.float32) / 255.0 * scale).rgb
    assert rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - base).max() <= 1


def test_float_array_with_nan_and_inf_does_not_escape():
    arr = np.random.default_rng(0).random((32, 32, 3))
    arr[0, 0] = np.nan
    arr[1, 1] = np.inf
    arr[2, 2] = -np.inf
    assert_rgb(load_image(arr))


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1)])
def test_gray_arrays_repeat_the_channel(shape):
    arr = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    rgb = load_image(arr).rgb
    assert rgb.shape == (40, 50, 3)
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_rgba_array_drops_alpha():
    base = small(astronaut(), 64)
    rgba = np.dstack([base, np.zeros(base.shape[:2], np.uint8)])
    np.testing.assert_array_equal(load_image(rgba).rgb, base)


@pytest.mark.parametrize("arr, error", [
    (np.zeros((0, 0, 3), np.uint8), EmptyInputError),
    (np.zeros((64,), np.uint8), UnsupportedFormatError),
    (np.zeros((64, 64, 2), np.uint8), UnsupportedFormatError),
    (np.zeros((1, 64, 64, 3), np.uint8), UnsupportedFormatError),
    (np.zeros((64, 64, 3), np.complex64), UnsupportedFormatError),
    (np.zeros((8, 8, 3), np.uint8), ImageTooSmallError),
])
def test_unusable_arrays_raise_typed_errors(arr, error):
    with pytest.raises(error) as info:
        load_image(arr)
    assert_human_message(info.value)


# ------------------------------------------------------------------ limits from the environment


def test_limits_from_env_reads_every_variable(monkeypatch):
    monkeypatch.setenv("FDET_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("FDET_MAX_PIXELS", "5678")
    monkeypatch.setenv("FDET_MAX_FACES", "3")
    monkeypatch.setenv("FDET_MIN_SIDE", "32")
    assert Limits.from_env() == Limits(max_upload_bytes=1234, max_pixels=5678, max_faces=3, min_side=32)


def test_limits_from_env_refuses_non_integers(monkeypatch):
    monkeypatch.setenv("FDET_MAX_FACES", "lots")
    from detector.errors import ConfigError

    with pytest.raises(ConfigError, match="FDET_MAX_FACES must be a whole number"):
        Limits.from_env()


def test_upload_byte_limit_applies_to_bytes_paths_and_files(monkeypatch, tmp_path):
    data = CASE_BY_NAME["astronaut"].data
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    monkeypatch.setenv("FDET_MAX_UPLOAD_BYTES", str(len(data) - 1))
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(ImageTooLargeError, match="MB") as info:
            load_image(source)  # no limits argument: read from the environment
        assert_human_message(info.value)
    monkeypatch.setenv("FDET_MAX_UPLOAD_BYTES", str(len(data)))
    assert_rgb(load_image(data))


def test_pixel_limit_from_env(monkeypatch):
    data = CASE_BY_NAME["astronaut"].data  # 512 x 512
    monkeypatch.setenv("FDET_MAX_PIXELS", str(512 * 512 - 1))
    # Bytes, arrays and PIL images are all checked, and each refusal says the size and the limit.
    for source in (data, astronaut(), Image.fromarray(astronaut())):
        with pytest.raises(ImageTooLargeError, match="512 \u00d7 512 pixels .0.3 MP.; the limit is 0.3 MP .262,143 pixels."):
            load_image(source)
    monkeypatch.setenv("FDET_MAX_PIXELS", str(512 * 512))
    assert_rgb(load_image(data))


@pytest.fixture
def load_calls(monkeypatch):
    """Record every PIL decode (``ImageFile.load``) made while the test runs."""
    calls = []
    original = ImageFile.ImageFile.load

    def spy(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def test_spy_sees_a_normal_decode(load_calls):
    load_image(CASE_BY_NAME["astronaut"].data)
    assert (512, 512) in load_calls


def test_bomb_is_refused_from_the_header_without_decoding(load_calls):
    bomb = png_bomb()
    assert len(bomb) < 200  # a few dozen bytes declaring 900 megapixels
    with pytest.raises(ImageTooLargeError) as info:
        load_image(bomb)
    assert_human_message(info.value)
    # Past Pillow's own bomb guard too, the refusal says how big the image is and what the limit is.
    assert "30000 \u00d7 30000 pixels (900 MP); the limit is 40 MP" in str(info.value)
    assert load_calls == []


def test_our_pixel_limit_refuses_before_decoding_below_pils_own_guard(load_calls, monkeypatch):
    # 5000 x 5000 = 25 MP is under PIL's bomb threshold, so only our header check stands in the way.
    monkeypatch.setenv("FDET_MAX_PIXELS", "1000000")
    with pytest.raises(ImageTooLargeError) as info:
        load_image(png_bomb(5000, 5000))
    assert str(info.value) == "The image is 5000 \u00d7 5000 pixels (25 MP); the limit is 1 MP (1,000,000 pixels)."
    assert load_calls == []


def test_loader_errors_are_all_image_errors():
    for case in CASES:
        if not case.ok:
            assert issubclass(case.error, ImageError)
    # The matrix exercises every refusal the loader has, and each case gets exactly its own class
    # (pytest.raises above would also accept a subclass, or the base class through a subclass case).
    raised = {}
    for case in CASES:
        if not case.ok:
            with pytest.raises(ImageError) as info:
                load_image(case.data)
            raised[case.name] = type(info.value)
    assert raised == {c.name: c.error for c in CASES if not c.ok}
    assert set(raised.values()) == {EmptyInputError, UnsupportedFormatError, CorruptImageError, ImageTooLargeError,
                                    ImageTooSmallError}
