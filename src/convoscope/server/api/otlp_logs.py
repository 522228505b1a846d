"""``POST /v1/logs``: the OTLP/HTTP log receiver, beside the trace receiver (``otlp.py``).

Why: GenAI instrumentations may send a chat's messages as log records that name their span (OpenTelemetry's
``opentelemetry-instrumentation-openai-v2`` with ``event_only``); received here, they are stored and folded
into their spans whenever the call is assembled, so such chats are not calls without turns.

The rules are the trace receiver's (``otlp_common``): protobuf or JSON bodies, optionally
gzip-compressed; errors are a ``google.rpc.Status`` in the request's encoding (400 unreadable body, 401
missing or unknown key, 413 over the size bound, 415 another content type); the answer is an
``ExportLogsServiceResponse`` with ``partial_success`` (rejected record count and why) when some records
were refused. It comes only after the raw export is committed to the outbox.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from ...ingest.otlp import PROTOBUF_TYPE
from ...traces.otlp import Accepted
from ..services import Services
from .otlp_common import openapi_extra, receive, responses

__all__ = ["router"]

router = APIRouter(tags=["otlp"])


def _success(accepted: Accepted, media: str) -> Response:
    """The export answer, with ``partial_success`` when records were rejected."""
    if media == PROTOBUF_TYPE:
        response = ExportLogsServiceResponse()
        if accepted.message:
            response.partial_success.rejected_log_records = accepted.rejected
            response.partial_success.error_message = accepted.message
        return Response(response.SerializeToString(), media_type=media)
    document: dict[str, object] = {}
    if accepted.message:
        # proto3 JSON mapping: int64 as a decimal string.
        document["partialSuccess"] = {
            "rejectedLogRecords": str(accepted.rejected),
            "errorMessage": accepted.message,
        }
    return Response(orjson.dumps(document), media_type=media)


def _accept(services: Services, project_id: str, body: bytes, media: str) -> Accepted:
    return services.otlp_logs.accept(project_id, body, media)


@router.post(
    "/v1/logs",
    summary="OTLP/HTTP log export",
    response_class=Response,
    responses=responses("ExportLogsServiceResponse (with partialSuccess when log records were rejected)"),
    openapi_extra=openapi_extra(),
)
async def export_logs(request: Request) -> Response:
    """Accept an OTLP log export; authenticate with ``Authorization: Bearer <project API key>``. GenAI
    message records are joined to their spans when the conversation is assembled into a call."""
    return await receive(request, _accept, _success)
