"""Request body bounds, enforced before any handler reads the body.

A declared ``Content-Length`` over the bound is refused at once; a chunked body is counted as it streams
and refused the moment it passes the bound, so an oversized upload never reaches memory or the outbox.
A few routes get a bound of their own (ElevenLabs' ``post_call_audio`` webhook carries a whole call's
MP3 as base64, ~25 MB for twenty minutes): the exception is named per exact path, so raising it for one
vendor's audio does not raise it for every JSON route.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PayloadTooLarge

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Caps request bodies: ``route_limits[path]`` for the paths listed there, else ``json_limit`` bytes,
    or ``upload_limit`` for multipart uploads."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        json_limit: int,
        upload_limit: int,
        route_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.route_limits = dict(route_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        multipart = headers.get("content-type", "").startswith("multipart/")
        limit = self.route_limits.get(scope["path"].rstrip("/")) or (
            self.upload_limit if multipart else self.json_limit
        )
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, int(declared), limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, size: int, limit: int) -> None:
    body = (
        b'{"error":{"type":"PayloadTooLarge","message":"request body of '
        + str(size).encode()
        + b" bytes is larger than the limit of "
        + str(limit).encode()
        + b' bytes","details":[]}}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
