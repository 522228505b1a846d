"""``POST /v1/traces``: the OTLP/HTTP trace receiver, so exporters point straight at convoscope.

Follows the OTLP/HTTP specification: protobuf (``application/x-protobuf``) or JSON (``application/json``)
bodies, optionally gzip-compressed; the answer is an ``ExportTraceServiceResponse`` in the request's
encoding, with ``partial_success`` (rejected span count and a message) when some spans were refused.
Errors carry a ``google.rpc.Status`` body in the request's encoding: 400 for a body that cannot be read,
401 for a missing or unknown key, 413 over the size bound, 415 for another content type (``otlp_common``,
shared with the log receiver). The answer comes only after the raw export is committed to the outbox, so
an acknowledged span survives a crash.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ...ingest.otlp import PROTOBUF_TYPE
from ...traces.otlp import Accepted
from ..services import Services
from .otlp_common import openapi_extra, receive, responses

__all__ = ["router"]

router = APIRouter(tags=["otlp"])


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


def _accept(services: Services, project_id: str, body: bytes, media: str) -> Accepted:
    return services.otlp.accept(project_id, body, media)


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export",
    response_class=Response,
    responses=responses("ExportTraceServiceResponse (with partialSuccess when spans were rejected)"),
    openapi_extra=openapi_extra(),
)
async def export_traces(request: Request) -> Response:
    """Accept an OTLP trace export; authenticate with ``Authorization: Bearer <project API key>``."""
    return await receive(request, _accept, _success)
