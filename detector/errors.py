"""The project's typed errors: every failure a user can cause ends in one of these.

Front ends catch :class:`DetectorError` and show ``str(err)`` -- a short sentence meant for a
person -- never a traceback.
"""


class DetectorError(Exception):
    """Base class: anything the user can be told about in one sentence."""


class ImageError(DetectorError):
    """The input could not be turned into an RGB image."""


class EmptyInputError(ImageError):
    """No bytes, or nothing uploaded."""


class UnsupportedFormatError(ImageError):
    """The bytes are not an image format we read (text, PDF, ZIP, SVG, ...)."""


class CorruptImageError(ImageError):
    """The file claims to be an image but cannot be decoded (truncated, damaged)."""


class ImageTooLargeError(ImageError):
    """Too many bytes or too many pixels (decompression-bomb guard)."""


class ImageTooSmallError(ImageError):
    """Too few pixels to say anything about a face."""


class ModelError(DetectorError):
    """The model file is missing, tampered with, truncated or of the wrong kind."""


class ConfigError(DetectorError):
    """An ``FDET_*`` environment variable holds a value the detector cannot use."""
