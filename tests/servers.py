"""One way to run the Gradio app in a test (on a free loopback port, closed afterwards), and one way to
drive Debian's Chromium against it (never a browser playwright downloads)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Debian Chromium under playwright (the test is skipped without playwright)."""
    import pytest

    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(demo) -> Iterator[str]:
    """Launch ``demo`` (from ``app.build_demo``) with the app's own launch settings; yield its URL."""
    import app

    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs(demo=demo))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@dataclass
class StreamlitServer:
    port: int
    url: str
    log: str = ""  # the server's output, once it has stopped


@contextlib.contextmanager
def streamlit_server(root: Path, seconds: float = 120) -> Iterator[StreamlitServer]:
    """``streamlit run streamlit_app.py`` on a free loopback port, as a user starts it; stopped afterwards."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    server = StreamlitServer(port, f"http://127.0.0.1:{port}/")
    try:
        t = time.monotonic()
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"streamlit exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() - t > seconds:
                    raise AssertionError("streamlit did not start") from None
                time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        server.log = proc.communicate(timeout=30)[0]
