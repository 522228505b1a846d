"""What the OTLP/HTTP receivers (``/v1/traces``, ``/v1/logs``) share, so they answer alike.

Why: the OTLP/HTTP specification fixes one behaviour for every signal: protobuf (``application/x-protobuf``)
or JSON (``application/json``) bodies, optionally gzip-compressed; errors carry a ``google.rpc.Status`` in
the request's encoding (400 for a body that cannot be read, 401 for a missing or unknown key, 413 over
the size bound, 415 for another content type). Only decoding, storing and the export answer differ by
signal, so each receiver gives :func:`receive` its own ``accept`` and ``answer``.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from ...errors import AuthError, Forbidden, PayloadError, PayloadTooLarge
from ...ingest.otlp import JSON_TYPE, PROTOBUF_TYPE, decompress, media_type
from ...traces.otlp import Accepted
from ..auth import current_project
from ..deps import get_services
from ..openapi import BEARER
from ..services import Services

__all__ = ["Accept", "Answer", "openapi_extra", "receive", "responses", "status_response"]

# google.rpc.Code values for the Status body.
_INVALID_ARGUMENT = 3
_PERMISSION_DENIED = 7
_RESOURCE_EXHAUSTED = 8
_UNAUTHENTICATED = 16

Accept = Callable[[Services, str, bytes, str], Accepted]
"""(services, project id, decompressed body, media type) → what the export became; raises
``PayloadError`` for a body that cannot be read. Runs in a worker thread."""
Answer = Callable[[Accepted, str], Response]
"""The signal's export answer (``Export*ServiceResponse``) in the request's encoding."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_response(http_status: int, code: int, message: str, media: str) -> Response:
    """A ``google.rpc.Status`` (code = 1, message = 2) in the request's encoding."""
    if media == PROTOBUF_TYPE:
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    else:
        body = orjson.dumps({"code": code, "message": message})
    headers = {"WWW-Authenticate": "Bearer"} if http_status == 401 else None
    return Response(body, status_code=http_status, media_type=media, headers=headers)


async def receive(request: Request, accept: Accept, answer: Answer) -> Response:
    """Authenticate, check the content type, decompress and hand the body to ``accept``; every refusal
    is a Status. The key is checked before the content type, so an unauthenticated caller learns nothing
    else."""
    media = media_type(request.headers.get("content-type"))
    try:
        project = await current_project(request)
    except AuthError as exc:
        return status_response(401, _UNAUTHENTICATED, str(exc), media or JSON_TYPE)
    except Forbidden as exc:
        return status_response(403, _PERMISSION_DENIED, str(exc), media or JSON_TYPE)
    if media is None:
        return status_response(
            415,
            _INVALID_ARGUMENT,
            f"unsupported Content-Type {request.headers.get('content-type')!r}: "
            f"send {PROTOBUF_TYPE} or {JSON_TYPE}",
            JSON_TYPE,
        )
    services = get_services(request)
    try:
        body = decompress(
            await request.body(), request.headers.get("content-encoding"), services.settings.max_body_bytes
        )
        accepted = await run_in_threadpool(accept, services, project.id, body, media)
    except PayloadTooLarge as exc:
        return status_response(413, _RESOURCE_EXHAUSTED, str(exc), media)
    except PayloadError as exc:
        return status_response(400, _INVALID_ARGUMENT, str(exc), media)
    return answer(accepted, media)


# -- the OpenAPI description ---------------------------------------------------------------------------

_BINARY: dict[str, object] = {"schema": {"type": "string", "format": "binary"}}
_RPC_STATUS: dict[str, object] = {
    "type": "object",
    "description": "google.rpc.Status, as the OTLP/HTTP specification requires for errors.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}


def _rpc_error(why: str, *, json_schema: dict[str, object] = _RPC_STATUS) -> dict[str, object]:
    """An error response of the receiver: a Status in the request's encoding."""
    return {"description": why, "content": {JSON_TYPE: {"schema": json_schema}, PROTOBUF_TYPE: _BINARY}}


def responses(answer: str) -> dict[int | str, dict[str, object]]:
    """A receiver's responses: ``answer`` describes its 200 (the signal's export response)."""
    return {
        200: {
            "description": answer,
            "content": {JSON_TYPE: {"schema": {"type": "object"}}, PROTOBUF_TYPE: _BINARY},
        },
        400: _rpc_error("The body cannot be decoded as an export."),
        401: _rpc_error("Missing or unknown API key."),
        # A declared Content-Length over the bound is refused before the receiver runs, in the API's shape.
        413: _rpc_error(
            "The body is larger than its bound.",
            json_schema={"anyOf": [_RPC_STATUS, {"$ref": "#/components/schemas/Error"}]},
        ),
        415: {"description": "Another Content-Type.", "content": {JSON_TYPE: {"schema": _RPC_STATUS}}},
    }


def openapi_extra() -> dict[str, object]:
    """The request body (protobuf or JSON) and the key every receiver asks for."""
    return {
        "requestBody": {
            "required": True,
            "content": {PROTOBUF_TYPE: _BINARY, JSON_TYPE: {"schema": {"type": "object"}}},
        },
        "security": [{BEARER: []}],
    }
