"""Cold start of the web app: seconds from ``python app.py --port N`` to its first ``/detect`` answer."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any

from detector.config import DEFAULT_CAM_METHOD

from .common import AppServer


def app_cold_start(photo: str, model_dir: Path | None, timeout: float = 300.0) -> dict[str, Any]:
    """Seconds from launching ``python app.py`` to its first ``/detect`` answer (and to its page answering)."""
    from gradio_client import Client, handle_file

    with AppServer(model_dir=model_dir, startup_timeout=timeout) as server:
        with contextlib.redirect_stdout(io.StringIO()):
            client = Client(server.url, verbose=False)
            answer = client.predict(handle_file(photo), DEFAULT_CAM_METHOD, api_name="/detect")
        first = time.perf_counter() - server.started_at
        if not isinstance(answer, dict) or answer.get("error") or "p_fake" not in answer:
            raise RuntimeError(f"app.py's first answer was not a detection: {str(answer)[:200]}")
        return {"mode": "app", "cold_start_s": round(first, 3), "port_open_s": round(server.ready_s, 3)}
