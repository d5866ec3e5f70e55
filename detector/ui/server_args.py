"""The web app's command line (``python app.py --help``), kept apart from Gradio and TensorFlow.

``app.py`` parses its arguments with this before importing Gradio, so that ``--help`` and a usage
error answer at once instead of after seconds of imports.
"""

from __future__ import annotations

import argparse

from ..config import GAME_DIR_ENV, ServerSettings
from ..errors import DetectorError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="app.py", description="Start the deepfake face detector web app (Gradio).")
    try:
        env = ServerSettings.from_env()
    except DetectorError as err:  # e.g. GRADIO_SERVER_PORT=http
        p.error(str(err))
    p.add_argument("--host", default=env.host,
                   help="interface to listen on (env GRADIO_SERVER_NAME; 0.0.0.0 for all, as in Docker/Spaces)")
    p.add_argument("--port", type=int, default=env.port,
                   help="port (env GRADIO_SERVER_PORT, default 7860)")
    p.add_argument("--share", action="store_true", default=env.share,
                   help="also open a temporary public *.gradio.live link (env FDET_SHARE=1); traffic then "
                        "passes through Gradio's share server")
    p.add_argument("--game-dir", default=env.game_dir,
                   help=f"folder with real/ and fake/ subfolders (any depth) for the game tab (env {GAME_DIR_ENV}); "
                        "without it a small built-in demo set of synthetic blends is used")
    p.add_argument("--model-dir", default=None,
                   help="model folder with model.keras and model.json (env FDET_MODEL_DIR, default assets/model)")
    return p.parse_args(argv)
