"""Serve an ASGI app with uvicorn on a free loopback port in a background thread.

Tests, the demo and the docs need the reference agent reachable over real HTTP and WebSocket, in the same
process, with no port to configure. The socket is bound before the thread starts, so the port is known
(and taken) at once and :attr:`LoopbackServer.url` is valid as soon as :meth:`LoopbackServer.start`
returns. This is the same arrangement as :class:`convoscope.testing.openai_server.FakeOpenAIServer`, kept
generic over the app.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LoopbackServer"]

_STARTUP_TIMEOUT_S = 10.0
_BACKLOG = 2048
"""Room for hundreds of simulated conversations connecting at once."""


class LoopbackServer:
    """uvicorn serving ``app`` on ``host`` (loopback) in a daemon thread, as a context manager.

    ``graceful_s`` bounds how long :meth:`stop` waits for requests still in flight (a ``silent`` agent
    holds its requests open on purpose), after which they are cancelled.
    """

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", name: str = "loopback", graceful_s: float = 1.0
    ):
        self.app = app
        self.host = host
        self.name = name
        self.graceful_s = graceful_s
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://host:port``, with no trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        """Bind a free port and serve until :meth:`stop`; raises when the server does not come up."""
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            backlog=_BACKLOG,
            timeout_graceful_shutdown=max(1, round(self.graceful_s)),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=self.name)
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.name} server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_STARTUP_TIMEOUT_S + self.graceful_s)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None
        self._socket = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
