"""The hostile-input matrix: every kind of upload a public detector link receives, built in code.

Nothing here is committed as a file: each case is a few lines that make its bytes from the
example photos shipped with scikit-image and matplotlib (or from nothing at all), so the matrix
documents *how* each hostile file is made.  ``CASES`` is shared by the loader tests, the
pipeline tests, the front-end tests and the load test (``python -m bench.load``); it lives beside
the benchmarks so that ``bench/`` imports nothing from ``tests/`` (pytest finds it through the
project root on its ``pythonpath``).

A case expects either :class:`Ok` (a result, maybe with a note such as "first frame", maybe with
or without a face) or the :mod:`detector.errors` class the loader must raise.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import NamedTuple, Union

import numpy as np
from PIL import Image

from detector.errors import (
    CorruptImageError,
    EmptyInputError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedFormatError,
)

# Where the astronaut's face is in scikit-image's 512x512 photo (MTCNN box centre, x and y).
ASTRONAUT_FACE_CENTRE = (224, 118)
BOMB_SIDE = 30_000


@dataclass(frozen=True)
class Ok:
    """The upload must give a result; ``note`` must appear in ``result.notes`` when set;
    ``face`` True/False pins whether a face must be found (None: either is fine)."""

    note: str | None = None
    face: bool | None = None


Expectation = Union[Ok, type[ImageError]]


class Case(NamedTuple):
    name: str
    data: bytes
    filename: str  # what a browser would send: several lie about the content
    expect: Expectation

    @property
    def ok(self) -> bool:
        return isinstance(self.expect, Ok)

    @property
    def error(self) -> type[ImageError] | None:
        return None if self.ok else self.expect

    @property
    def note(self) -> str | None:
        return self.expect.note if self.ok else None


# ------------------------------------------------------------------ source photos


@functools.cache
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@functools.cache
def hopper() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


@functools.cache
def coffee() -> np.ndarray:
    import skimage.data

    return skimage.data.coffee()


def small(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    """A smaller copy (keeps the matrix cheap to send and to score)."""
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.LANCZOS))


def encode(img: Image.Image | np.ndarray, fmt: str, **save_args) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_args)
    return buf.getvalue()


# ------------------------------------------------------------------ hand-made PNGs


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_from_chunks(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` 1-bit pixels with a one-row IDAT.

    A few dozen bytes that a naive server would try to decode into ``width * height * 3`` bytes
    of RGB (2.7 GB for the default 30000 x 30000): it must be refused from the header alone.
    """
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    return png_from_chunks(width, height, 1, 0, zlib.compress(row, 9))


def png16_rgb(rgb8: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (PIL cannot write one): each 8-bit value v becomes v * 257."""
    h, w, _ = rgb8.shape
    samples = (rgb8.astype(">u2") * 257).reshape(h, w * 3)
    raw = b"".join(b"\x00" + samples[y].tobytes() for y in range(h))
    return png_from_chunks(w, h, 16, 2, zlib.compress(raw, 6))


# ------------------------------------------------------------------ the matrix, one builder per case


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def rotated_astronaut_jpeg() -> bytes:
    """The astronaut stored lying on its side with EXIF Orientation=6 ("rotate 90 deg clockwise to
    view"): the stored pixels are the upright photo turned 90 deg counter-clockwise."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(np.rot90(astronaut(), 1), "JPEG", quality=92, exif=exif.tobytes())


def face_grid(rows: int = 4, cols: int = 5, tile: int = 128) -> np.ndarray:
    """``rows`` x ``cols`` small portraits (astronaut and Grace Hopper face crops, alternating)."""
    a = astronaut()[20:236, 116:332]  # 216 px square around the astronaut's face
    h = hopper()[60:400, 95:435]  # 340 px square around Grace Hopper's face
    faces = [small(a, tile), small(h, tile)]
    grid = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    for r in range(rows):
        for c in range(cols):
            grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = faces[(r + c) % 2]
    return grid


def animated_gif(frames: int = 3) -> bytes:
    # Frames must differ or PIL merges them into one longer frame.
    base = small(astronaut())
    imgs = [Image.fromarray(np.roll(base, 20 * i, axis=1)) for i in range(frames)]
    return encode(imgs[0], "GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)


def multipage_tiff(pages: int = 3) -> bytes:
    imgs = [Image.fromarray(small(p)) for p in (astronaut(), hopper(), coffee())[:pages]]
    return encode(imgs[0], "TIFF", save_all=True, append_images=imgs[1:])


def rgba_png() -> bytes:
    rgb = small(astronaut())
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :64] = 0  # a transparent left band
    return encode(np.dstack([rgb, alpha]), "PNG")


def palette_png_with_transparency() -> bytes:
    img = Image.fromarray(small(astronaut())).quantize(colors=64)
    return encode(img, "PNG", transparency=0)


def gray16_png() -> bytes:
    gray = np.asarray(Image.fromarray(small(astronaut())).convert("L")).astype(np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


TEXT = b"Hello! This is not a picture, just some text someone renamed to .jpg.\n" * 20
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="512" '
       b'height="512"><circle cx="256" cy="256" r="200" fill="peachpuff"/></svg>\n')
HTML = b"<!DOCTYPE html><html><body><img src='face.jpg'></body></html>\n"


def zip_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("face.jpg", encode(small(astronaut(), 64), "JPEG"))
    return buf.getvalue()


@functools.cache
def build_cases() -> tuple[Case, ...]:
    astro_jpg = encode(astronaut(), "JPEG", quality=90)
    astro_png = encode(small(astronaut()), "PNG")
    return (
        Case("empty", b"", "empty.jpg", EmptyInputError),
        Case("truncated_jpeg", truncated(astro_jpg), "cut.jpg", CorruptImageError),
        Case("truncated_png", truncated(astro_png), "cut.png", CorruptImageError),
        Case("png_header_only", astro_png[:20], "header.png", CorruptImageError),
        Case("text_as_jpg", TEXT, "notes.jpg", UnsupportedFormatError),
        Case("pdf_as_jpg", PDF, "scan.jpg", UnsupportedFormatError),
        Case("zip_as_jpg", zip_archive(), "photos.jpg", UnsupportedFormatError),
        Case("svg_as_jpg", SVG, "logo.jpg", UnsupportedFormatError),
        Case("html_as_png", HTML, "page.png", UnsupportedFormatError),
        Case("decompression_bomb", png_bomb(), "bomb.png", ImageTooLargeError),
        Case("one_pixel", encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "pixel.png", ImageTooSmallError),
        Case("tiny_16px", encode(small(astronaut(), 16), "PNG"), "tiny.png", Ok(face=False)),
        Case("animated_gif", animated_gif(), "anim.gif", Ok(note="first frame")),
        Case("multipage_tiff", multipage_tiff(), "pages.tif", Ok(note="first frame")),
        Case("cmyk_jpeg", encode(Image.fromarray(small(astronaut())).convert("CMYK"), "JPEG"), "print.jpg",
             Ok(note="CMYK")),
        Case("gray16_png", gray16_png(), "gray16.png", Ok(note="bit")),
        Case("rgb16_png", png16_rgb(small(astronaut())), "rgb16.png", Ok()),
        Case("rgba_png", rgba_png(), "alpha.png", Ok(note="Transparency")),
        Case("palette_png_transparent", palette_png_with_transparency(), "palette.png", Ok(note="Transparency")),
        Case("gray_jpeg", encode(Image.fromarray(small(astronaut())).convert("L"), "JPEG"), "gray.jpg", Ok()),
        Case("exif_rotated_jpeg", rotated_astronaut_jpeg(), "phone.jpg", Ok(face=True)),
        Case("webp", encode(small(astronaut()), "WEBP", quality=85), "photo.webp", Ok()),
        Case("bmp", encode(small(hopper()), "BMP"), "photo.bmp", Ok()),
        Case("no_face", encode(coffee(), "JPEG", quality=90), "coffee.jpg", Ok(face=False)),
        Case("twenty_faces", encode(face_grid(), "JPEG", quality=90), "crowd.jpg", Ok(face=True)),
        Case("astronaut", astro_jpg, "astronaut.jpg", Ok(face=True)),
    )


CASES: list[Case] = list(build_cases())
CASE_BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
GOOD_CASES = [c for c in CASES if c.ok]
BAD_CASES = [c for c in CASES if not c.ok]
