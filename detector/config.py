"""Every knob in one place: limits, default paths and the environment variables that set them.

Limits protect a public server from hostile input; each has a sane default and an environment
variable (listed in the README) to change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
DEFAULT_MODEL_DIR = ASSETS_DIR / "model"
SHARED_FACES = PROJECT_ROOT.parent / "shared" / "data" / "faces"


def _env_int(name: str, default: int) -> int:
    """A positive integer from the environment; a clear :class:`ConfigError` for anything else."""
    from .errors import ConfigError

    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"environment variable {name} must be at least 1, got {value!r}")
    return number


@dataclass(frozen=True)
class Limits:
    """Input limits; ``Limits.from_env()`` reads the ``FDET_*`` environment variables."""

    max_upload_bytes: int = 20 * 1024 * 1024  # FDET_MAX_UPLOAD_BYTES
    max_pixels: int = 40_000_000  # FDET_MAX_PIXELS, checked from the header before decoding
    min_side: int = 16  # FDET_MIN_SIDE, smaller images cannot show a face
    max_faces: int = 20  # FDET_MAX_FACES, faces scored per image (largest first)

    @classmethod
    def from_env(cls) -> "Limits":
        d = cls()
        return cls(
            max_upload_bytes=_env_int("FDET_MAX_UPLOAD_BYTES", d.max_upload_bytes),
            max_pixels=_env_int("FDET_MAX_PIXELS", d.max_pixels),
            min_side=_env_int("FDET_MIN_SIDE", d.min_side),
            max_faces=_env_int("FDET_MAX_FACES", d.max_faces),
        )


# The face crop: a square of side CROP_MARGIN * max(box w, box h), the same in training and inference.
CROP_MARGIN = 1.3


@dataclass(frozen=True)
class CropConfig:
    """How a face box becomes a model input; identical in training and inference."""

    margin: float = CROP_MARGIN  # square side = margin * max(box w, box h)
    min_face: int = 24  # faces smaller than this (px) are ignored by the detector


# Face detector names the CLIs and FDET_FACE_DETECTOR accept; "auto" is detector.inference.faces.AUTO.
FACE_DETECTORS = ("auto", "mtcnn", "haar")


@dataclass
class Settings:
    limits: Limits = field(default_factory=Limits.from_env)
    crop: CropConfig = field(default_factory=CropConfig)
    model_dir: Path = field(default_factory=lambda: Path(os.environ.get("FDET_MODEL_DIR", DEFAULT_MODEL_DIR)))
    face_detector: str = field(default_factory=lambda: os.environ.get("FDET_FACE_DETECTOR", "auto"))
    # "fused" (one compiled pass for label + maps) or "tf-keras-vis" (the library's own Gradcam classes)
    cam_backend: str = field(default_factory=lambda: os.environ.get("FDET_CAM_BACKEND", "fused"))
    # "auto" runs the classifier's TF Lite copy when the model folder has a valid one; "tf" never does
    engine: str = field(default_factory=lambda: os.environ.get("FDET_ENGINE", "auto"))
