"""``POST /v1/traces``: the OTLP/HTTP trace receiver, so exporters point straight at convoscope.

Follows the OTLP/HTTP specification: protobuf (``application/x-protobuf``) or JSON (``application/json``)
bodies, optionally gzip-compressed; the answer is an ``ExportTraceServiceResponse`` in the request's
encoding, with ``partial_success`` (rejected span count and a message) when some spans were refused.
Errors carry a ``google.rpc.Status`` body in the request's encoding: 400 for a body that cannot be read,
401 for a missing or unknown key, 413 over the size bound, 415 for another content type. The answer comes
only after the raw export is committed to the outbox, so an acknowledged span survives a crash.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from ...errors import AuthError, PayloadError, PayloadTooLarge
from ...ingest.otlp import JSON_TYPE, PROTOBUF_TYPE, decompress, media_type
from ...traces.otlp import Accepted
from ..auth import current_project
from ..deps import get_services
from ..openapi import BEARER

__all__ = ["router"]

router = APIRouter(tags=["otlp"])

# google.rpc.Code values for the Status body.
_INVALID_ARGUMENT = 3
_RESOURCE_EXHAUSTED = 8
_UNAUTHENTICATED = 16


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


def _status(http_status: int, code: int, message: str, media: str) -> Response:
    """A ``google.rpc.Status`` (code = 1, message = 2) in the request's encoding."""
    if media == PROTOBUF_TYPE:
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    else:
        body = orjson.dumps({"code": code, "message": message})
    headers = {"WWW-Authenticate": "Bearer"} if http_status == 401 else None
    return Response(body, status_code=http_status, media_type=media, headers=headers)


def _success(accepted: Accepted, media: str) -> Response:
    """The export answer; ``partial_success`` with no rejected spans carries warnings (what was cut), as
    the OTLP specification allows."""
    if media == PROTOBUF_TYPE:
        response = ExportTraceServiceResponse()
        if accepted.message:
            response.partial_success.rejected_spans = accepted.rejected
            response.partial_success.error_message = accepted.message
        return Response(response.SerializeToString(), media_type=media)
    document: dict[str, object] = {}
    if accepted.message:
        # proto3 JSON mapping: int64 as a decimal string, and a zero count left out (warnings only).
        partial: dict[str, str] = {"errorMessage": accepted.message}
        if accepted.rejected:
            partial["rejectedSpans"] = str(accepted.rejected)
        document["partialSuccess"] = partial
    return Response(orjson.dumps(document), media_type=media)


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


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "ExportTraceServiceResponse (with partialSuccess when spans were rejected)",
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


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export",
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PROTOBUF_TYPE: _BINARY, JSON_TYPE: {"schema": {"type": "object"}}},
        },
        "security": [{BEARER: []}],
    },
)
async def export_traces(request: Request) -> Response:
    """Accept an OTLP trace export; authenticate with ``Authorization: Bearer <project API key>``."""
    media = media_type(request.headers.get("content-type"))
    try:
        project = await current_project(request)
    except AuthError as exc:  # before the content type, so an unauthenticated caller learns nothing else
        return _status(401, _UNAUTHENTICATED, str(exc), media or JSON_TYPE)
    if media is None:
        return _status(
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
        accepted = await run_in_threadpool(services.otlp.accept, project.id, body, media)
    except PayloadTooLarge as exc:
        return _status(413, _RESOURCE_EXHAUSTED, str(exc), media)
    except PayloadError as exc:
        return _status(400, _INVALID_ARGUMENT, str(exc), media)
    return _success(accepted, media)
