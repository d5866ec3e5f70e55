"""Deepfake face detector: the public API.

    from detector import get_detector
    result = get_detector().analyze("photo.jpg")          # a DetectionResult
    print(result.label, result.p_fake, [f.p_fake for f in result.faces])

The package is laid out by stage -- ``inference/`` (what the apps run), ``training/``,
``evaluation/``, ``batch/`` (the scan CLI) and ``ui/`` (helpers both web apps share) -- and
``python -m detector`` lists the command-line tasks.  The names below are imported on first use,
so ``import detector`` (and every ``--help``) stays free of TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    ConfigError,
    CorruptImageError,
    DetectorError,
    EmptyInputError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    ModelError,
    UnsupportedFormatError,
)

# public name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "Detector": "detector.inference.pipeline",
    "get_detector": "detector.inference.pipeline",
    "DetectionResult": "detector.inference.results",
    "FaceResult": "detector.inference.results",
    "load_image": "detector.inference.images",
    "LoadedImage": "detector.inference.images",
}

__all__ = [
    "Detector", "get_detector", "DetectionResult", "FaceResult", "load_image", "LoadedImage",
    "DetectorError", "ImageError", "EmptyInputError", "UnsupportedFormatError", "CorruptImageError",
    "ImageTooLargeError", "ImageTooSmallError", "ModelError", "ConfigError",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ does the importing
    from .inference.images import LoadedImage, load_image
    from .inference.pipeline import Detector, get_detector
    from .inference.results import DetectionResult, FaceResult


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'detector' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
