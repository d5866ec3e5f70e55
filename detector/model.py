"""The classifier: build it, save it with its card, load it safely.

One Functional Keras model maps a batch of 0..255 RGB face crops to one sigmoid "fake"
probability.  The ImageNet normalisation lives inside the model, the head is
``GAP -> Dropout -> Dense(1, name="logit") -> sigmoid``, and the backbone is built flat (no
nested models) so Grad-CAM tools can reach its last convolution by name.

A saved model is a folder: ``model.keras`` plus ``model.json`` (input size, threshold,
temperature, Grad-CAM layer, SHA-256 of the weights file, metrics), and ``model.tflite``: the
same network converted to TF Lite for fast CPU inference: ``explain.gradcam.forward_function``,
which returns the CAM layer's features, the logit, the probability and the logit's gradient with
respect to the features (checked against the Keras model when written; used only while its recorded
source hash matches ``model.keras``).  Loading checks the hash,
uses Keras ``safe_mode`` and refuses ``Lambda`` layers, so a model file from the internet cannot
run code.  Calibration (temperature ``T``) is folded into the ``logit`` layer when saving, so the
model's output *is* the calibrated probability; ``model.json`` keeps ``T`` for the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import backbone as bb
from .errors import ModelError

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "model.json"
LITE_FILE = "model.tflite"  # the same network converted for fast CPU inference (detector.lite)


@dataclass
class ModelConfig:
    """Everything inference needs besides the weights; saved as ``model.json``."""

    name: str = "fdet-mobilenetv2"
    version: str = "0.0.0"
    architecture: str = "mobilenetv2"
    input_size: int = 160
    threshold: float = 0.5
    temperature: float = 1.0
    cam_layer: str = bb.LAST_CONV_LAYER
    # Model 2 ("dual"): a second input of native-resolution patches (detector.views); 1.x models have ["image"]
    inputs: list[str] = field(default_factory=lambda: ["image"])
    patch: int = 64
    n_patches: int = 4
    native_max: int = 256
    artefact_layer: str = ""  # the artefact branch's feature map ("" when the model has none)
    crop_margin: float = 1.3
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


# ------------------------------------------------------------------ architectures


def _head(features, dropout: float, name: str) -> keras.Model:
    x = keras.layers.GlobalAveragePooling2D(name="gap")(features)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    out = keras.layers.Activation("sigmoid", name="p_fake")(logit)
    return out


ARCHITECTURES = ("dual", "mobilenetv2", "small_cnn", "efficientnetv2b0")


def build_model(architecture: str = "dual", input_size: int = 160, pretrained: bool = True,
                dropout: float = 0.2, weights_path: str | Path | None = None, patch: int = 64,
                n_patches: int = 4) -> tuple[keras.Model, str]:
    """Build an untrained classifier; returns ``(model, cam_layer_name)``.

    ``architecture``: ``dual`` (model 2: the ImageNet MobileNetV2 on the 160 px view *and* the
    native-resolution artefact branch of :mod:`detector.artefact` on ``n_patches`` patches of
    ``patch`` px, fused before one logit), ``mobilenetv2`` (model 1.x: the semantic branch alone),
    ``small_cnn`` (a 4-block CNN trained from scratch), or ``efficientnetv2b0`` (the seed
    project's architecture, ``weights=None``; benchmarks only).
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if architecture == "dual":
        from . import artefact

        x = keras.layers.Normalization(mean=bb.IMAGENET_MEAN, variance=[s * s for s in bb.IMAGENET_STD],
                                       name="imagenet_norm")(inputs)
        semantic = bb.mobilenet_v2_features(x)
        patches = keras.Input((n_patches, patch, patch, 3), name="patches")
        art = artefact.artefact_features(patches, n_patches, patch)
        pooled = keras.layers.Concatenate(name="fused")([keras.layers.GlobalAveragePooling2D(name="gap")(semantic),
                                                         keras.layers.GlobalAveragePooling2D(name="art_gap")(art)])
        h = keras.layers.Dropout(dropout, name="dropout")(pooled)
        logit = keras.layers.Dense(1, name="logit")(h)
        out = keras.layers.Activation("sigmoid", name="p_fake")(logit)
        model = keras.Model([inputs, patches], out, name="fdet_dual")
        artefact.init_branch(model)
        if pretrained:
            bb.load_torch_imagenet_weights(model, weights_path)
        return model, bb.LAST_CONV_LAYER
    if architecture == "mobilenetv2":
        x = keras.layers.Normalization(mean=bb.IMAGENET_MEAN, variance=[s * s for s in bb.IMAGENET_STD],
                                       name="imagenet_norm")(inputs)
        features = bb.mobilenet_v2_features(x)
        cam_layer = bb.LAST_CONV_LAYER
    elif architecture == "small_cnn":
        x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
        for i, filters in enumerate((32, 64, 128, 256)):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv1")(x)
            x = keras.layers.BatchNormalization(name=f"block{i}_bn1")(x)
            x = keras.layers.ReLU(name=f"block{i}_relu1")(x)
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv2")(x)
            x = keras.layers.BatchNormalization(name=f"block{i}_bn2")(x)
            x = keras.layers.ReLU(name=f"block{i}_relu2")(x)
            if i < 3:
                x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        features = x
        cam_layer = "block3_relu2"
    elif architecture == "efficientnetv2b0":
        base = keras.applications.EfficientNetV2B0(include_top=False, weights=None, input_tensor=inputs)
        features = base.output
        cam_layer = "top_activation"
    else:
        raise ValueError(f"unknown architecture {architecture!r}")
    model = keras.Model(inputs, _head(features, dropout, architecture), name=f"fdet_{architecture}")
    if architecture == "mobilenetv2" and pretrained:
        bb.load_torch_imagenet_weights(model, weights_path)
    return model, cam_layer


# ------------------------------------------------------------------ saving and loading


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Divide the ``logit`` layer by ``temperature`` so the sigmoid output is calibrated."""
    layer = model.get_layer("logit")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])


def _json_safe(obj):
    """NaN/inf become null so the card stays valid JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_lite(model: keras.Model, config: ModelConfig, out_dir: str | Path) -> bool:
    """Convert ``model`` to ``model.tflite`` in ``out_dir`` and record its hashes in ``config``.

    The conversion is checked on a probe batch (probabilities within 1e-4 of Keras).  Returns
    False, leaving no file and blank hashes, when conversion fails: the bundle then runs in TF.
    """
    from explain.gradcam import forward_function

    from . import lite

    out = Path(out_dir)
    config.lite_sha256 = config.lite_source_sha256 = ""
    (out / LITE_FILE).unlink(missing_ok=True)
    try:
        fn = forward_function(model, config.cam_layer)
        content = lite.convert(fn)
        probe = np.random.default_rng(0).uniform(0, 255, (3, config.input_size, config.input_size, 3))
        probe = probe.astype(np.float32)
        got = lite.LiteRunner(content)(probe)
        want = [np.asarray(t) for t in fn(probe)]
        if not all(g.shape == w.shape for g, w in zip(got, want, strict=True)) or not all(
                np.allclose(g, w, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(w).max())))
                for g, w in zip(got, want, strict=True)):
            raise ValueError("converted model does not reproduce the Keras model")
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; TF inference still works
        log.warning("No TF Lite copy written for %s (%s); the model will run in TensorFlow.", out, exc)
        return False
    (out / LITE_FILE).write_bytes(content)
    config.lite_sha256 = sha256_file(out / LITE_FILE)
    config.lite_source_sha256 = config.sha256
    return True


def write_config(config: ModelConfig, out_dir: str | Path) -> None:
    (Path(out_dir) / CONFIG_FILE).write_text(json.dumps(_json_safe(asdict(config)), indent=2, allow_nan=False) + "\n")


def save_bundle(model: keras.Model, config: ModelConfig, out_dir: str | Path, lite: bool = True) -> Path:
    """Write ``model.keras``, ``model.tflite`` and ``model.json`` (with their SHA-256) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A fresh copy carries no optimizer state: a third of the size, and nothing to resume by accident.
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    clean.save(out / MODEL_FILE)
    config.sha256 = sha256_file(out / MODEL_FILE)
    if lite:
        write_lite(clean, config, out)
    else:
        config.lite_sha256 = config.lite_source_sha256 = ""
        (out / LITE_FILE).unlink(missing_ok=True)
    write_config(config, out)
    return out


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


FORWARD_OUTPUTS = 4  # explain.gradcam.forward_function: features, logit, probability, gradient


def load_lite(model_dir: str | Path, config: ModelConfig):
    """A ``detector.lite.LiteRunner`` for the bundle's TF Lite copy when :func:`read_lite` accepts it.

    :class:`ModelError` when the file is intact but is not this card's forward pass (input size or
    number of outputs differ: e.g. written by an older version of this project).
    """
    content = read_lite(model_dir, config)
    if content is None:
        return None
    from .lite import LiteRunner

    runner = LiteRunner(content)
    if tuple(runner.input_shape[1:]) != (config.input_size, config.input_size, 3) \
            or runner.n_outputs != FORWARD_OUTPUTS:
        raise ModelError(f"{model_dir}: model.tflite (input {runner.input_shape}, {runner.n_outputs} "
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
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Lambda):
            raise ModelError(f"The model contains a Lambda layer ({layer.name}); refusing to run it.")
    names = [t.name.split(":")[0] for t in model.inputs]
    if names != list(config.inputs):
        raise ModelError(f"Model inputs {names} do not match its card's inputs {config.inputs}.")
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    want = {"image": (config.input_size, config.input_size, 3),
            "patches": (config.n_patches, config.patch, config.patch, 3)}
    for name, shape in zip(names, shapes, strict=True):
        if tuple(shape)[1:] != want.get(name):
            raise ModelError(f"Model input {name} {tuple(shape)} does not match its card "
                             f"(expected {want.get(name)}).")
    if tuple(model.output_shape)[1:] != (1,):
        raise ModelError(f"Model output {model.output_shape} is not a single probability.")
    try:
        model.get_layer(config.cam_layer)
        model.get_layer("logit")
    except ValueError as exc:
        raise ModelError(f"The model lacks a layer named in its card: {exc}") from exc


def predict_proba(model: keras.Model, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities that each crop is fake, shape (N,)."""
    if len(crops) == 0:
        return np.zeros((0,), np.float32)
    return model.predict(np.asarray(crops, np.float32), batch_size=batch_size, verbose=0).reshape(-1)
