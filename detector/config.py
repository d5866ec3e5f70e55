"""Every knob in one place: limits, defaults, the names each setting accepts, and the environment
variables that set them (docs/configuration.md lists the same).

No other module reads ``os.environ`` for a setting: they ask this one (``Settings()`` for the
detector, ``ServerSettings.from_env()`` for the web app, the ``env_*`` readers for the rest).
Limits protect a public server from hostile input; each has a sane default and a variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from explain import BACKENDS as CAM_BACKENDS
from explain import METHODS as CAM_METHODS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
DEFAULT_MODEL_DIR = ASSETS_DIR / "model"
SHARED_FACES = PROJECT_ROOT.parent / "shared" / "data" / "faces"

# ------------------------------------------------------------------ environment variables

MAX_UPLOAD_BYTES_ENV = "FDET_MAX_UPLOAD_BYTES"
MAX_PIXELS_ENV = "FDET_MAX_PIXELS"
MIN_SIDE_ENV = "FDET_MIN_SIDE"
MAX_FACES_ENV = "FDET_MAX_FACES"
MODEL_DIR_ENV = "FDET_MODEL_DIR"
HF_REPO_ENV = "FDET_HF_REPO"
OMP_THREADS_ENV = "OMP_NUM_THREADS"  # read, not owned: TF Lite's threads follow it (Ray sets it per actor)
HF_REVISION_ENV = "FDET_HF_REVISION"
FACE_FINDER_ENV = "FDET_FACE_FINDER"
FACE_FINDER_ENV_OLD = "FDET_FACE_DETECTOR"  # the earlier name, still read when FDET_FACE_FINDER is unset
CAM_BACKEND_ENV = "FDET_CAM_BACKEND"
ENGINE_ENV = "FDET_ENGINE"
SHARE_ENV = "FDET_SHARE"
GAME_DIR_ENV = "FDET_GAME_DIR"
C2PA_TRUST_ANCHORS_ENV = "FDET_C2PA_TRUST_ANCHORS"  # a PEM bundle of trusted C2PA roots (provenance)
HOST_ENV = "GRADIO_SERVER_NAME"
PORT_ENV = "GRADIO_SERVER_PORT"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"  # huggingface_hub's own; the Hub download honours it

# ------------------------------------------------------------------ names and defaults

# The face crop: a square of side CROP_MARGIN * max(box w, box h), the same in training and inference.
CROP_MARGIN = 1.3
MIN_FACE = 24  # px; smaller faces are ignored by the face finder

# Face finders (--face-finder, FDET_FACE_FINDER); "auto" is detector.inference.faces.AUTO (MTCNN).
FACE_FINDERS = ("auto", "mtcnn", "haar")
DEFAULT_FACE_FINDER = "auto"

# How the classifier runs (FDET_ENGINE): "auto" = its TF Lite copy when the model folder has a valid
# one, else TensorFlow; "tflite" insists on the copy; "tensorflow" never uses it.  A Detector
# reports the one in use as "tflite" or "tensorflow".  ("tf" is the earlier spelling of "tensorflow".)
ENGINES = ("auto", "tflite", "tensorflow")
ENGINE_ALIASES = {"tf": "tensorflow"}
DEFAULT_ENGINE = "auto"

# Heatmaps: the methods and back ends explain.gradcam offers (FDET_CAM_BACKEND for the latter).
DEFAULT_CAM_METHOD = CAM_METHODS[0]  # chosen by bench/fidelity.py (docs/heatmaps.md)
DEFAULT_CAM_BACKEND = CAM_BACKENDS[0]  # "fused"

# Videos: frames sampled per clip and the top-k rule (P(fake) = mean of the k most suspicious frames).
VIDEO_FRAMES = 16
VIDEO_TOP_K = 3
MAX_VIDEO_FRAMES = 64  # the most frames one web request may ask for

DEFAULT_HF_REVISION = "main"
DEFAULT_HOST = "127.0.0.1"  # loopback unless asked: 0.0.0.0 for Docker/Spaces
DEFAULT_PORT = 7860


# ------------------------------------------------------------------ reading the environment


def env_str(name: str, *older: str) -> str | None:
    """The stripped value of ``name`` (else of the first set ``older`` name); None when unset or blank."""
    for var in (name, *older):
        value = (os.environ.get(var) or "").strip()
        if value:
            return value
    return None


def env_truthy(name: str) -> bool:
    """1 / true / yes / on (any case), as huggingface_hub reads its own switches."""
    return (env_str(name) or "").lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
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


def quiet_environment() -> None:
    """Process-wide switches every entry point sets before importing TensorFlow or Gradio.

    Gradio reads its analytics switch once at import, so it is *set* (privacy: no usage statistics
    leave the server); the others are defaults a user can still override.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Limits:
    """Input limits; ``Limits.from_env()`` reads the ``FDET_*`` environment variables."""

    max_upload_bytes: int = 20 * 1024 * 1024  # FDET_MAX_UPLOAD_BYTES
    max_pixels: int = 40_000_000  # FDET_MAX_PIXELS, checked from the header before decoding
    min_side: int = 16  # FDET_MIN_SIDE, smaller images cannot show a face
    max_faces: int = 20  # FDET_MAX_FACES, faces scored per image (largest first)

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_upload_bytes=env_int(MAX_UPLOAD_BYTES_ENV, d.max_upload_bytes),
            max_pixels=env_int(MAX_PIXELS_ENV, d.max_pixels),
            min_side=env_int(MIN_SIDE_ENV, d.min_side),
            max_faces=env_int(MAX_FACES_ENV, d.max_faces),
        )


@dataclass(frozen=True)
class CropConfig:
    """How a face box becomes a model input; identical in training and inference."""

    margin: float = CROP_MARGIN  # square side = margin * max(box w, box h)
    min_face: int = MIN_FACE  # faces smaller than this (px) are ignored by the face finder


def _env_path(name: str) -> Path | None:
    value = env_str(name)
    return None if value is None else Path(value)


def lite_threads() -> int:
    """Threads per TF Lite interpreter: ``OMP_NUM_THREADS`` when set to a positive whole number (Ray sets it
    to an actor's CPUs), else up to 4 cores."""
    try:
        wanted = int(env_str(OMP_THREADS_ENV) or "")
    except ValueError:
        wanted = 0
    return wanted if wanted > 0 else max(1, min(4, os.cpu_count() or 1))


def hub_repo() -> str | None:
    """``FDET_HF_REPO``: the Hub repository to load the model from, if any."""
    return env_str(HF_REPO_ENV)


@dataclass
class Settings:
    """The detector's settings, read from the environment when created."""

    limits: Limits = field(default_factory=Limits.from_env)
    crop: CropConfig = field(default_factory=CropConfig)
    # FDET_MODEL_DIR; None: the Hub model when FDET_HF_REPO is set, else DEFAULT_MODEL_DIR
    model_dir: Path | None = field(default_factory=lambda: _env_path(MODEL_DIR_ENV))
    face_finder: str = field(default_factory=lambda: env_str(FACE_FINDER_ENV, FACE_FINDER_ENV_OLD)
                             or DEFAULT_FACE_FINDER)
    # "fused" (one pass for label + maps) or "tf-keras-vis" (the library's own Gradcam classes)
    cam_backend: str = field(default_factory=lambda: env_str(CAM_BACKEND_ENV) or DEFAULT_CAM_BACKEND)
    engine: str = field(default_factory=lambda: env_str(ENGINE_ENV) or DEFAULT_ENGINE)


@dataclass(frozen=True)
class ServerSettings:
    """The web app's defaults for ``--host``, ``--port``, ``--share`` and ``--game-dir``."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    share: bool = False
    game_dir: str | None = None

    @classmethod
    def from_env(cls) -> ServerSettings:
        return cls(host=env_str(HOST_ENV) or DEFAULT_HOST, port=env_int(PORT_ENV, DEFAULT_PORT),
                   share=env_str(SHARE_ENV) == "1", game_dir=env_str(GAME_DIR_ENV))
