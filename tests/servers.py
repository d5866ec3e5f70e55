"""One way to run the Gradio app in a test: on a free loopback port, closed afterwards."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


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
