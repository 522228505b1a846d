"""One pooled HTTP client per connector, and one POST that maps every failure onto the AgentError family.

Both HTTP connectors (OpenAI-compatible and webhook) are stateless: each turn is one POST of the whole
history. What they share is how to be a good client at simulation scale and how to blame failures:

* **The pool.** A run keeps hundreds of conversations in flight (the simulator aims at 500 at once) against
  one agent, so each connector holds one ``httpx.AsyncClient`` whose pool has room for every one of them
  (:data:`DEFAULT_MAX_CONNECTIONS`) and keeps connections alive between turns (HTTP/1.1 keep-alive: a
  conversation's next turn rarely pays a new TCP handshake). Waiting for a free connection has no timeout
  of its own; it counts against the turn's deadline instead, so a too-small pool shows up as slow turns,
  not as failures blamed on the agent.
* **The blame.** A refused or broken connection, or an HTTP error status, is :class:`AgentUnreachable`
  (with the status and the start of the body, because that is what tells a 401 from a crashed agent); no
  answer within ``timeout_s`` is :class:`AgentTimeout`; anything else wrong with a 2xx body is the
  protocol parser's business (:class:`MalformedReply`).
"""

from __future__ import annotations

import asyncio
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
    "make_client",
    "post_json",
    "public_url",
]

DEFAULT_MAX_CONNECTIONS = 1024
"""Room for the simulator's 500 concurrent conversations twice over (a turn and a retry, or two runs)."""

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""How long a TCP (and TLS) connection may take before the agent counts as unreachable."""

KEEPALIVE_EXPIRY_S = 30.0
"""Idle connections are kept this long: longer than a simulated caller's pause between turns."""


def public_url(url: str) -> str:
    """``url`` without credentials or query string, for error messages (a webhook URL may carry a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def make_client(
    *, headers: Mapping[str, str] | None, max_connections: int, connect_timeout_s: float
) -> httpx.AsyncClient:
    """The connector's one client: a pool for ``max_connections`` kept-alive HTTP/1.1 connections.

    Redirects are not followed (an agent endpoint that redirects a POST is misconfigured, and saying so
    beats replaying the body somewhere else), and proxies come from the environment as for any client.
    """
    if max_connections < 1:
        raise ValueError("max_connections must be at least 1")
    return httpx.AsyncClient(
        headers=dict(headers or {}),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        ),
        timeout=httpx.Timeout(60.0, connect=connect_timeout_s, pool=None),
        http1=True,
        http2=False,
        follow_redirects=False,
    )


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
    The latency runs from just before the request is sent to the last byte of the answer.
    """
    content = orjson.dumps(body)
    where = public_url(url)
    timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=None)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(connect_timeout_s + timeout_s):
            response = await client.post(
                url, content=content, headers={"content-type": "application/json"}, timeout=timeout
            )
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
