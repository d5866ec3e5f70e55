"""Save a trained model as a folder the front ends load, with its TF Lite copy; ``export-lite``.

    python -m detector export-lite runs/v1          # add model.tflite to a folder saved before it existed
    python -m detector export-lite --mtcnn          # re-convert MTCNN's networks into assets/mtcnn

:func:`save_bundle` writes ``model.keras``, ``model.tflite`` and ``model.json`` with their SHA-256
(the folder format is :mod:`detector.inference.bundle`); :func:`write_lite` converts the forward
pass (:func:`detector.inference.forward.forward_function`) and checks the conversion on a probe
batch before keeping it.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from ..errors import DetectorError
from ..inference.bundle import CONFIG_FILE, LITE_FILE, MODEL_FILE, ModelConfig, load_bundle, sha256_file

log = logging.getLogger(__name__)


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
    from ..inference import lite
    from ..inference.bundle import input_shape, map_layers
    from ..inference.forward import forward_function

    out = Path(out_dir)
    config.lite_sha256 = config.lite_source_sha256 = ""
    (out / LITE_FILE).unlink(missing_ok=True)
    try:
        fn = forward_function(model, map_layers(config))
        content = lite.convert(fn)
        rng = np.random.default_rng(0)
        probe = [rng.uniform(0, 255, (3, *input_shape(config, name))).astype(np.float32) for name in config.inputs]
        got = lite.LiteRunner(content, inputs=list(config.inputs))(*probe)
        want = [np.asarray(t) for t in fn(*probe)]
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


# ------------------------------------------------------------------ python -m detector export-lite


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detector export-lite",
        description="Write model.tflite (the same network for fast CPU inference) into a model folder and "
                    "record its SHA-256 in model.json (training does this itself; use it for older folders), "
                    "and/or --mtcnn: MTCNN's three networks into assets/mtcnn.")
    p.add_argument("model_dir", nargs="?", help="model folder with model.keras and model.json")
    p.add_argument("--mtcnn", nargs="?", const="", metavar="DIR",
                   help="also convert MTCNN's networks (into DIR, default assets/mtcnn)")
    a = p.parse_args(argv)
    if a.model_dir is None and a.mtcnn is None:
        p.error("give a model folder, --mtcnn, or both")
    status = 0
    if a.mtcnn is not None:
        from ..inference.mtcnn_nets import export_mtcnn_lite

        for path in export_mtcnn_lite(a.mtcnn or None):
            print(f"wrote {path}")
    if a.model_dir is not None:
        status = _export_model(a.model_dir)
    return status


def _export_model(model_dir: str) -> int:
    try:
        model, config = load_bundle(model_dir)
    except DetectorError as exc:
        print(f"error: {exc}")
        return 2
    ok = write_lite(model, config, model_dir)
    write_config(config, model_dir)
    print(f"wrote {model_dir}/{LITE_FILE} (sha256 {config.lite_sha256[:12]}...)" if ok
          else "conversion failed; the model folder is unchanged apart from model.json's empty TF Lite fields")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
