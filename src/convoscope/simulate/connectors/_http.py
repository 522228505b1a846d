"""One pooled HTTP client per connector, and one POST that maps every failure onto the AgentError family.

Both HTTP connectors (OpenAI-compatible and webhook) are stateless: each turn is one POST of the whole
history. What they share is how to be a good client at simulation scale and how to blame failures:

* **The pool.** A run keeps hundreds of conversations in flight (the simulator aims at 500 at once) against
  one agent, so each connector holds room for every one of them (:data:`DEFAULT_MAX_CONNECTIONS`) and
  keeps connections alive between turns (HTTP/1.1 keep-alive: a conversation's next turn rarely pays a
  new TCP handshake). The room is split into ``httpx.AsyncClient`` shards of
  :data:`SHARD_CONNECTIONS`, each conversation keeping to one: httpcore's pool bookkeeping costs time
  quadratic in its number of connections on every request, which at 300 connections in one pool was most
  of the client's CPU (measured: over half of a 600-request run). Waiting for a free connection has no
  timeout of its own; it counts against the turn's deadline instead, so a too-small pool shows up as
  slow turns, not as failures blamed on the agent.
* **Stale connections.** A server closes a kept-alive connection after its own idle timeout (5 s for
  uvicorn and Node.js), and a request sent on it just as it closes fails with no answer. Two defences:
  idle connections are dropped here first (:data:`KEEPALIVE_EXPIRY_S`), and a request whose connection
  drops before any answer is sent once more on a fresh one. Both HTTP protocols post the whole history,
  so a repeat asks the same question again; it does not act twice. A second drop is the agent's.
* **The blame.** A refused or broken connection, or an HTTP error status, is :class:`AgentUnreachable`
  (with the status and the start of the body, because that is what tells a 401 from a crashed agent); no
  answer within ``timeout_s`` is :class:`AgentTimeout`; anything else wrong with a 2xx body is the
  protocol parser's business (:class:`MalformedReply`).
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from ._wire import excerpt
from .base import AgentTimeout, AgentUnreachable

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_MAX_CONNECTIONS",
    "ClientPool",
    "post_json",
    "public_url",
]

DEFAULT_MAX_CONNECTIONS = 1024
"""Room for the simulator's 500 concurrent conversations twice over (a turn and a retry, or two runs)."""

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""How long a TCP (and TLS) connection may take before the agent counts as unreachable."""

SHARD_CONNECTIONS = 32
"""Connections per ``httpx.AsyncClient``: small enough that its pool's bookkeeping stays cheap."""

KEEPALIVE_EXPIRY_S = 4.0
"""Idle connections are kept this long: under the 5 s idle timeout of common servers (uvicorn, Node.js),
so the pool lets a connection go before the server does rather than racing it."""

_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""How a connection that closed under a request shows itself (no answer, a reset, a broken pipe)."""


def public_url(url: str) -> str:
    """``url`` without credentials or query string, for error messages (a webhook URL may carry a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class ClientPool:
    """The connector's connections: ``max_connections`` kept-alive HTTP/1.1 connections in shards.

    :meth:`client` gives each new conversation a shard, in turn, so conversations spread evenly and
    a conversation's turns reuse its shard's connections. Shards are made on first use and share one TLS
    context (loading the CA bundle once, not per shard). Redirects are not followed (an agent endpoint
    that redirects a POST is misconfigured, and saying so beats replaying the body elsewhere); proxies
    come from the environment as for any client.
    """

    def __init__(
        self, *, headers: Mapping[str, str] | None, max_connections: int, connect_timeout_s: float
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.headers = dict(headers or {})
        self.max_connections = max_connections
        self._shards = math.ceil(max_connections / SHARD_CONNECTIONS)
        self._per_shard = math.ceil(max_connections / self._shards)
        self._connect_timeout_s = connect_timeout_s
        self._clients: dict[int, httpx.AsyncClient] = {}
        self._ssl: ssl.SSLContext | None = None
        self._opened = 0

    def client(self) -> httpx.AsyncClient:
        """The client a new conversation uses for all its turns."""
        index = self._opened % self._shards
        self._opened += 1
        client = self._clients.get(index)
        if client is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            client = self._clients[index] = httpx.AsyncClient(
                headers=self.headers,
                verify=self._ssl,
                limits=httpx.Limits(
                    max_connections=self._per_shard,
                    max_keepalive_connections=self._per_shard,
                    keepalive_expiry=KEEPALIVE_EXPIRY_S,
                ),
                timeout=httpx.Timeout(60.0, connect=self._connect_timeout_s, pool=None),
                http1=True,
                http2=False,
                follow_redirects=False,
            )
        return client

    async def aclose(self) -> None:
        """Close every shard's connections."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.aclose() for client in clients))


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Any,
    *,
    timeout_s: float,
    connect_timeout_s: float,
) -> tuple[bytes, float]:
    """POST ``body`` as JSON; the 2xx response body and the turn's latency in seconds.

    ``timeout_s`` bounds the wait for the agent's answer (each read, and the whole exchange once a
    connection is had: connect time is bounded apart by ``connect_timeout_s`` and blamed as unreachable).
    The latency runs from just before the request is sent to the last byte of the answer (of the attempt
    that got one, when a dropped connection made a second necessary).
    """
    content = orjson.dumps(body)
    where = public_url(url)
    timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=None)
    try:
        async with asyncio.timeout(connect_timeout_s + timeout_s):
            for attempt in (1, 2):
                started = time.perf_counter()
                try:
                    response = await client.post(
                        url, content=content, headers={"content-type": "application/json"}, timeout=timeout
                    )
                    break
                except _DROPPED:
                    if attempt == 2:
                        raise
    except TimeoutError:
        raise AgentTimeout(f"{where} did not answer within {timeout_s:g} s") from None
    except httpx.ConnectTimeout:
        raise AgentUnreachable(f"{where}: no connection within {connect_timeout_s:g} s") from None
    except httpx.TimeoutException:
        raise AgentTimeout(f"{where} did not answer within {timeout_s:g} s") from None
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise AgentUnreachable(f"{where}: {detail}") from None
    latency_s = time.perf_counter() - started
    if not 200 <= response.status_code < 300:
        raise AgentUnreachable(f"{where} answered HTTP {response.status_code}: {excerpt(response.content)!r}")
    return response.content, latency_s
