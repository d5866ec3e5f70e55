"""A saved model folder: read it, check it, load it safely -- what every front end loads.

A saved model is a folder: ``model.keras`` plus ``model.json`` (:class:`ModelConfig`: input size,
threshold, temperature, Grad-CAM layer, SHA-256 of the weights file, metrics), and
``model.tflite``: the same network converted to TF Lite for fast CPU inference -- the forward pass
of :func:`detector.inference.forward.forward_function`, which returns the CAM layer's features,
the logit, the probability and the logit's gradient with respect to the features (written and
checked against the Keras model by :mod:`detector.training.export`; used only while its recorded
source hash matches ``model.keras``).  Loading checks the hash, uses Keras ``safe_mode`` and
refuses ``Lambda`` layers, so a model file from the internet cannot run code.  Calibration
(temperature ``T``) was folded into the ``logit`` layer when saving, so the model's output *is*
the calibrated probability; ``model.json`` keeps ``T`` for the record.  Loading never needs the
training code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import CROP_MARGIN
from ..errors import ModelError

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "model.json"
LITE_FILE = "model.tflite"  # the same network converted for fast CPU inference (detector.inference.lite)
# MobileNetV2's last ReLU: detector.training.backbone.LAST_CONV_LAYER (a test pins the two together;
# written out here because loading a model never imports the training code).
DEFAULT_CAM_LAYER = "features_18_relu"


@dataclass
class ModelConfig:
    """Everything inference needs besides the weights; saved as ``model.json``."""

    name: str = "fdet-mobilenetv2"
    version: str = "0.0.0"
    architecture: str = "mobilenetv2"
    input_size: int = 160
    threshold: float = 0.5
    temperature: float = 1.0
    cam_layer: str = DEFAULT_CAM_LAYER
    # Model 2 ("dual"): a second input of native-resolution patches (detector.inference.views);
    # model 1.x takes ["image"] only.
    inputs: list[str] = field(default_factory=lambda: ["image"])
    patch: int = 64
    n_patches: int = 4
    native_max: int = 256
    artefact_layer: str = ""  # the artefact branch's feature map ("" when the model has none)
    # layers feeding the logit through global pooling, in the head's order: the heatmaps' sources
    map_layers: list[str] = field(default_factory=list)
    crop_margin: float = CROP_MARGIN
    sha256: str = ""
    lite_sha256: str = ""  # SHA-256 of model.tflite ...
    lite_source_sha256: str = ""  # ... and of the model.keras it was converted from
    trained_on: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def map_layers(config: ModelConfig) -> list[str]:
    """The layers the heatmaps come from (model 1.x cards name only ``cam_layer``)."""
    return list(config.map_layers) or [config.cam_layer]


def input_shape(config: ModelConfig, name: str) -> tuple[int, ...]:
    """Shape of one model input without the batch axis."""
    if name == "image":
        return (config.input_size, config.input_size, 3)
    if name == "patches":
        return (config.n_patches, config.patch, config.patch, 3)
    raise ModelError(f"unknown model input {name!r} in the model card")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_lite(model_dir: str | Path, config: ModelConfig) -> bytes | None:
    """The bundle's ``model.tflite`` when it is there, intact and converted from this ``model.keras``."""
    path = Path(model_dir) / LITE_FILE
    if not path.is_file() or not config.lite_sha256:
        return None
    if config.lite_source_sha256 != config.sha256:
        log.warning("Ignoring %s: it was converted from another model.keras (re-export with "
                    "`python -m detector export-lite %s`).", path, model_dir)
        return None
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != config.lite_sha256:
        log.warning("Ignoring %s: it does not match its model card (modified or truncated).", path)
        return None
    return content




def load_lite(model_dir: str | Path, config: ModelConfig):
    """A :class:`~detector.inference.lite.LiteRunner` for the bundle's TF Lite copy when :func:`read_lite` accepts it.

    :class:`ModelError` when the file is intact but is not this card's forward pass (input size or
    number of outputs differ: e.g. written by an older version of this project).
    """
    content = read_lite(model_dir, config)
    if content is None:
        return None
    from .lite import LiteRunner

    try:
        runner = LiteRunner(content, inputs=list(config.inputs))
    except ValueError as exc:
        raise ModelError(f"{model_dir}: model.tflite is not this card's model ({exc}); re-export it with "
                         f"`python -m detector export-lite {model_dir}`.") from None
    want = [input_shape(config, name) for name in config.inputs]
    ranks = [1, 1] + [4] * (2 * len(map_layers(config)))  # logit, probability, features..., gradients...
    if [tuple(s[1:]) for s in runner.input_shapes] != want or runner.output_ranks != ranks:
        raise ModelError(f"{model_dir}: model.tflite (inputs {runner.input_shapes}, {runner.n_outputs} "
                         f"outputs) is not this card's model; re-export it with "
                         f"`python -m detector export-lite {model_dir}`.")
    return runner


def read_config(model_dir: str | Path) -> ModelConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"No model card found at {path}.")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise TypeError("not a JSON object")
        return ModelConfig.from_dict(card)
    except (ValueError, TypeError) as exc:  # ValueError covers bad JSON and bad UTF-8
        raise ModelError(f"The model card {path} is not valid JSON.") from exc


def verify_weights(model_dir: str | Path, config: ModelConfig, what: str = "model file") -> Path:
    """``model.keras``'s path; :class:`ModelError` unless it is there and matches the card's SHA-256.

    ``what`` names the file in the mismatch message ("The {what} {path} does not match ...").
    """
    model_dir = Path(model_dir)
    path = model_dir / MODEL_FILE
    if not path.is_file():
        raise ModelError(f"No model file found at {path}.")
    if not config.sha256:
        raise ModelError(f"The model card {model_dir / CONFIG_FILE} has no sha256; refusing to load.")
    digest = sha256_file(path)
    if digest != config.sha256:
        raise ModelError(
            f"The {what} {path} does not match its model card (SHA-256 {digest[:12]}... "
            f"expected {config.sha256[:12]}...): it was modified or truncated."
        )
    return path


def load_bundle(model_dir: str | Path, verify: bool = True) -> tuple[keras.Model, ModelConfig]:
    """Load a saved model folder; checks the SHA-256 and refuses unsafe layers."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    path = model_dir / MODEL_FILE
    if verify:
        verify_weights(model_dir, config)
    elif not path.is_file():
        raise ModelError(f"No model file found at {path}.")
    import keras  # here, not at import: reading and checking a card needs no TensorFlow

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a broken archive
        raise ModelError(f"The model file {path} could not be loaded: {exc}") from exc
    check_model(model, config)
    return model, config


def _all_layers(model: keras.Layer):
    """Every layer, including those inside nested models (``model.layers`` lists only the top)."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def check_model(model: keras.Model, config: ModelConfig) -> None:
    """The shape contract every front end relies on."""
    import keras

    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Lambda):
            raise ModelError(f"The model contains a Lambda layer ({layer.name}); refusing to run it.")
    names = [t.name.split(":")[0] for t in model.inputs]
    if names != list(config.inputs):
        raise ModelError(f"Model inputs {names} do not match its card's inputs {config.inputs}.")
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    for name, shape in zip(names, shapes, strict=True):
        if tuple(shape)[1:] != input_shape(config, name):
            raise ModelError(f"Model input {name} {tuple(shape)} does not match its card "
                             f"(expected {input_shape(config, name)}).")
    if tuple(model.output_shape)[1:] != (1,):
        raise ModelError(f"Model output {model.output_shape} is not a single probability.")
    try:
        for name in [config.cam_layer, "logit", *config.map_layers]:
            model.get_layer(name)
    except ValueError as exc:
        raise ModelError(f"The model lacks a layer named in its card: {exc}") from exc
