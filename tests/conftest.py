"""Shared test setup: offline, no analytics, one detector per session, example photos from packages."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_FACES = PROJECT_ROOT.parent / "shared" / "data" / "faces"

requires_shared_data = pytest.mark.skipif(
    not (SHARED_FACES / "manifest.csv").is_file(), reason="../shared/data/faces is not present"
)


def run_bench(module: str, *args: str, out: Path):
    """Run ``python -m bench.<module> --quick ARGS --out OUT`` as a user would (shipped model, offline);
    assert it succeeded and that the JSON on stdout is the JSON written to ``out``; return (JSON, stderr)."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("FDET_MODEL_DIR", None)
    proc = subprocess.run([sys.executable, "-m", f"bench.{module}", "--quick", *args, "--out", str(out)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc == json.loads(out.read_text())
    return doc, proc.stderr


@pytest.fixture(scope="session")
def detector():
    """The shipped model with the default face finder (loaded once)."""
    from detector.inference.pipeline import get_detector

    return get_detector()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def no_face() -> np.ndarray:
    """A photo without a face (scikit-image's coffee cup)."""
    import skimage.data

    return skimage.data.coffee()
