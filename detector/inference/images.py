"""Bytes, paths, PIL images or arrays in; one upright 8-bit RGB array out -- or a typed error.

Hostile input is the normal case for a public detector, so the order of checks matters:
size in bytes first, then the format from the header, then the pixel count from the header
(before any full decode: a 30000x30000 PNG of a few KB must never be decoded), then the decode
itself, then the conversions (EXIF orientation, CMYK, 16-bit, alpha, palette, grayscale).

A file that passes is also read for what its metadata says about its origin
(:func:`detector.inference.provenance.read_provenance`, on the same bytes, after the checks): the
result travels on :class:`LoadedImage` as ``provenance``, so every front end gets it from the one load.
"""

from __future__ import annotations

import codecs
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import Limits
from ..errors import (
    CorruptImageError,
    EmptyInputError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedFormatError,
)
from .provenance import read_provenance

# Formats we decode. Anything else (EPS runs Ghostscript, for one) is refused by the header check.
# No "MPO": camera multi-picture JPEGs open through the JPEG plugin (their format reads "MPO"),
# and naming it here makes Pillow raise KeyError for every non-image instead of refusing it.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")

ImageInput = Union[bytes, bytearray, memoryview, str, Path, Image.Image, np.ndarray, BinaryIO]


@dataclass
class LoadedImage:
    """An upright RGB image and what was done to get it."""

    rgb: np.ndarray  # (H, W, 3) uint8
    format: str | None = None
    notes: list[str] = field(default_factory=list)
    # Provenance.to_dict() of the file's metadata; None when the image came as pixels (array, PIL).
    provenance: dict[str, Any] | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.rgb.shape[1], self.rgb.shape[0]


# Signatures of the formats we read: a file that starts like one but cannot be opened is damaged,
# not "something else", and deserves the corrupt-file message.
IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF87a": "GIF", b"GIF89a": "GIF",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def _image_magic(head: bytes) -> str | None:
    """The allowed format ``head`` claims to be, from its first bytes (None: none of ours)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # "BM" alone starts too many texts
        return "BMP"
    return next((fmt for magic, fmt in IMAGE_MAGIC.items() if head.startswith(magic)), None)


def _sniff(head: bytes) -> str | None:
    """A name for common non-image payloads, so the message can say what was uploaded."""
    h = head.lstrip()[:512].lower()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"%!PS"):
        return "a PostScript/EPS document"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "a ZIP archive"
    if b"<svg" in h or (h.startswith(b"<?xml") and b"svg" in head[:2048].lower()):
        return "an SVG drawing (vector images are not supported)"
    if h.startswith(b"<"):
        return "an HTML/XML document"
    if head.startswith((b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "a compressed archive"
    if head[:12].find(b"ftyp") == 4:
        return "a video or HEIC file"
    if b"\x00" in head:
        return None
    try:
        # Incremental: a multi-byte character cut at the end of ``head`` is not a decoding error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "a text file"
    except UnicodeDecodeError:
        return None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        with np.errstate(over="ignore", invalid="ignore"):  # huge values saturate at 0/255 anyway
            a = np.nan_to_num(arr.astype(np.float32))
            if a.size and a.max() <= 1.0:
                a = a * 255.0
            return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        a = arr.astype(np.int64)
        if a.size and a.max() > 255:
            a = a * 255 // max(int(a.max()), 1)
        return np.clip(a, 0, 255).astype(np.uint8)
    raise UnsupportedFormatError(f"Unsupported array type {arr.dtype}.")


def array_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Any 2-D/3-D numeric array -> (H, W, 3) uint8 RGB (alpha dropped, gray repeated)."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(_to_uint8(arr)[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = _to_uint8(arr[:, :, :3])
    else:
        raise UnsupportedFormatError(f"Expected an H x W (x 3/4) image array, got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert any PIL mode to RGB; 16-bit and alpha are handled explicitly."""
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if mode == "F" and lo >= 0 and hi <= 1:
            arr = arr * 255.0
        elif lo >= 0 and hi <= 65535 and mode != "F":
            arr = arr / 257.0  # 16-bit range -> 8-bit
        elif hi > lo:
            arr = (arr - lo) / (hi - lo) * 255.0
        notes.append("High bit-depth image converted to 8 bits.")
        return array_to_rgb(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or img.mode == "RGBA":
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("Transparency flattened onto white.")
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB.")
    if mode == "1":
        img = img.convert("L")
    return np.asarray(img.convert("RGB"))


def _mp(pixels: float) -> str:
    return f"{round(pixels / 1e6, 1):g} MP"


def _too_many_pixels(width: int, height: int, limits: Limits) -> ImageTooLargeError:
    """The refusal of an image over the pixel limit: its size and the limit, in one sentence."""
    return ImageTooLargeError(f"The image is {width} \u00d7 {height} pixels ({_mp(width * height)}); "
                              f"the limit is {_mp(limits.max_pixels)} ({limits.max_pixels:,} pixels).")


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a header declares, read by the format's own Pillow plugin without
    Pillow's decompression-bomb check (which refuses before saying how big the image is)."""
    Image.init()
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None or (accept is not None and not accept(data[:16])):
            continue
        try:
            return factory(io.BytesIO(data), "").size
        except Exception:  # noqa: BLE001 - not this format
            continue
    return None


def _open_bytes(data: bytes, limits: Limits, filename: str | None = None) -> LoadedImage:
    if len(data) == 0:
        raise EmptyInputError("The file is empty.")
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLargeError(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {limits.max_upload_bytes / 1e6:.1f} MB."
        )
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = _declared_size(data)
        if size is not None:
            raise _too_many_pixels(*size, limits) from exc
        raise ImageTooLargeError(f"The image declares too many pixels to decode safely; the limit is "
                                 f"{_mp(limits.max_pixels)}.") from exc
    except UnidentifiedImageError as exc:
        claimed = _image_magic(data[:16])
        if claimed:
            raise CorruptImageError(f"The file starts like a {claimed} image but its header is damaged.") from exc
        what = _sniff(data[:4096])
        lead = f"This file is {what}, not an image." if what else "This file is not in an image format we read."
        raise UnsupportedFormatError(f"{lead} The detector reads JPEG, PNG, WebP, GIF, BMP and TIFF images.") from exc
    except Exception as exc:  # noqa: BLE001 - any header parsing failure is a corrupt file
        raise CorruptImageError(f"The image header could not be read ({type(exc).__name__}).") from exc
    width, height = img.size
    if width * height > limits.max_pixels:
        raise _too_many_pixels(width, height, limits)
    fmt = img.format
    try:
        n_frames = getattr(img, "n_frames", 1)
        if n_frames > 1:
            img.seek(0)
            kind = "animation" if fmt in ("GIF", "WEBP", "PNG") else "multi-page file"
            notes.append(f"This {kind} has {n_frames} frames; the first frame was used.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            img = ImageOps.exif_transpose(img)
        rgb = _pil_to_rgb(img, notes)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/damaged data surfaces as many error types
        raise CorruptImageError(
            "The image is damaged or truncated and could not be decoded."
        ) from exc
    # The same bytes, now known to be a usable image: what does their metadata say? (never raises)
    return LoadedImage(rgb=rgb, format=fmt, notes=notes, provenance=read_provenance(data, filename).to_dict())


def load_image(source: ImageInput, limits: Limits | None = None, filename: str | None = None) -> LoadedImage:
    """Load ``source`` into an upright RGB uint8 image, enforcing ``limits``.

    ``filename`` (the upload's name) is only a hint for the provenance reader; a path names itself.
    Raises a subclass of :class:`detector.errors.ImageError` with a message for a person.
    """
    limits = limits or Limits.from_env()
    if source is None:
        raise EmptyInputError("No image was given.")
    if isinstance(source, Image.Image):
        w, h = source.size
        if w * h > limits.max_pixels:
            raise _too_many_pixels(w, h, limits)
        notes: list[str] = []
        try:  # a lazily opened PIL image decodes only now, and may be truncated
            loaded = LoadedImage(_pil_to_rgb(ImageOps.exif_transpose(source), notes), source.format, notes)
        except ImageError:
            raise
        except Exception as exc:  # noqa: BLE001 - same policy as for bytes
            raise CorruptImageError("The image is damaged or truncated and could not be decoded.") from exc
    elif isinstance(source, np.ndarray):
        if source.size == 0:
            raise EmptyInputError("The image array is empty.")
        if source.ndim >= 2 and source.shape[0] * source.shape[1] > limits.max_pixels:
            raise _too_many_pixels(source.shape[1], source.shape[0], limits)
        loaded = LoadedImage(array_to_rgb(source), None, [])
    elif isinstance(source, (bytes, bytearray, memoryview)):
        loaded = _open_bytes(bytes(source), limits, filename)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise EmptyInputError(f"No such file: {path}")
        size = path.stat().st_size
        if size > limits.max_upload_bytes:
            raise ImageTooLargeError(
                f"The file is {size / 1e6:.1f} MB; the limit is {limits.max_upload_bytes / 1e6:.1f} MB."
            )
        loaded = _open_bytes(path.read_bytes(), limits, filename or path.name)
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        loaded = _open_bytes(source.read(limits.max_upload_bytes + 1), limits,
                             filename or (Path(name).name if isinstance(name, str) else None))
    else:
        raise UnsupportedFormatError(f"Cannot read an image from a {type(source).__name__}.")
    h, w = loaded.rgb.shape[:2]
    if min(h, w) < limits.min_side:
        raise ImageTooSmallError(
            f"The image is only {w}x{h} pixels; at least {limits.min_side}x{limits.min_side} is needed to see a face."
        )
    return loaded
