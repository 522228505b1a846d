"""An ASGI app served by uvicorn in a thread on a loopback port, for tests that need a real server.

The OTLP exporters, browsers and CLI subprocesses in tests talk to the app over real HTTP; this is the
one way they get it (started, checked up, and stopped with the test).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["serve_app"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(app: Any, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Serve ``app``; yields ``http://127.0.0.1:PORT``. The app's lifespan is not run: the caller owns
    the services behind it."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
