"""Request rate limits: per API key on the API and the OTLP receiver, per client address on sign-in.

A limit is a moving window (``limits``' ``MovingWindowRateLimiter``, in this process's memory): a key
that sent ``N`` requests in the last window gets 429 with ``Retry-After`` (whole seconds until the
oldest request leaves the window) in the API's error shape, before any handler, body read or store
query runs. The key is counted by a digest of the bearer token, so the plaintext is never kept; an
unknown key is counted like a known one (the authentication that follows answers 401). Sign-in
attempts are counted per client address, which bounds guessing keys through the login form.
"""

from __future__ import annotations

import hashlib
import math
import time

import orjson
from limits import RateLimitItem, parse, storage, strategies
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RateLimitMiddleware"]

_LIMITED_PREFIXES = ("/api/", "/v1/")
"""Paths counted per API key: the REST API and the OTLP receiver."""


def _bearer_digest(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return hashlib.sha256(token.strip()).hexdigest()[:32]
    return None


class RateLimitMiddleware:
    """Answers 429 past ``per_key`` (requests of one bearer token) or ``login`` (POST /login per
    client address); None turns a limit off."""

    def __init__(self, app: ASGIApp, *, per_key: str | None, login: str | None) -> None:
        self.app = app
        self.per_key: RateLimitItem | None = parse(per_key) if per_key else None
        self.login: RateLimitItem | None = parse(login) if login else None
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def _over(self, scope: Scope) -> tuple[RateLimitItem, str, str, str] | None:
        """The limit a request is over, the namespace and identity it is counted under, and what is
        counted (for the message); None when the request is within its limits."""
        path: str = scope["path"]
        if self.per_key is not None and path.startswith(_LIMITED_PREFIXES):
            digest = _bearer_digest(scope)
            if digest is not None and not self.limiter.hit(self.per_key, "key", digest):
                return self.per_key, "key", digest, "requests with this API key"
        if self.login is not None and path == "/login" and scope["method"] == "POST":
            client = scope.get("client")
            address = client[0] if client else "unknown"
            if not self.limiter.hit(self.login, "login", address):
                return self.login, "login", address, "sign-in attempts from this address"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over = self._over(scope)
        if over is None:
            await self.app(scope, receive, send)
            return
        item, namespace, identity, counted = over
        reset, _ = self.limiter.get_window_stats(item, namespace, identity)
        retry_after = max(1, math.ceil(reset - time.time()))
        unit = item.GRANULARITY.name if item.multiples == 1 else f"{item.multiples} {item.GRANULARITY.name}s"
        message = f"more than {item.amount} {counted} per {unit}; retry in {retry_after} s"
        body = orjson.dumps({"error": {"type": "RateLimited", "message": message, "details": []}})
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
