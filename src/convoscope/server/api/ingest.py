"""``POST /api/v1/calls``: durable ingest of canonical calls.

The handler validates the body, commits it to the outbox and only then answers 202; the worker stores it.
A multipart upload carries one call and its recording: the audio is probed, written to the blob store
(fsync'd) and referenced from the call before the outbox commit, so a 202 never points at missing bytes.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ...audio.probe import probe_audio
from ...errors import NotFound, PayloadError
from ...ingest.canonical import parse_calls
from ...model import Call, Recording, Role
from ...model.ids import stored_call_id
from ...store.metadata import OutboxStatus
from ..auth import CurrentProject
from ..deps import get_services
from ..openapi import error_responses
from ..services import Services, limits_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["ingest"])

MAX_INGEST_ID = 2**63 - 1
"""Ingest ids are 64-bit identities: a larger number names nothing and must not reach the database driver
(SQLite refuses it with an overflow)."""


def _enqueue(
    services: Services, project_id: str, body: bytes, blob_refs: list[str]
) -> tuple[int, list[Call]]:
    calls = parse_calls(body, limits_of(services.settings))
    ingest_id = services.meta.enqueue(
        project_id, kind="calls", payload=body, content_type="application/json", blob_refs=blob_refs
    )
    return ingest_id, calls


def _accepted(services: Services, project_id: str, ingest_id: int, calls: list[Call]) -> JSONResponse:
    services.worker.hand_over(ingest_id, calls)
    ids = [stored_call_id(project_id, c.source, c.external_id, c.started_at, c.id) for c in calls]
    return JSONResponse({"accepted": len(calls), "ids": ids, "ingest_id": ingest_id}, status_code=202)


def _parse_channel_map(text: str) -> dict[int, Role]:
    """``user,agent`` → {0: user, 1: agent}; the order is the channel order, stated by the sender."""
    roles = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return {index: Role(role) for index, role in enumerate(roles)}
    except ValueError:
        raise PayloadError(
            f"channel_map: {text!r} is not a comma-separated list of roles (user, agent, system, tool)",
            [{"loc": "channel_map", "msg": "expected e.g. 'user,agent'"}],
        ) from None


async def _multipart(request: Request, services: Services, project_id: str) -> JSONResponse:
    async with request.form(max_files=1, max_fields=8) as form:
        return await _ingest_form(form, services, project_id)


_FORM_PARTS = ("call", "recording", "channel_map", "vantage")


async def _ingest_form(form: FormData, services: Services, project_id: str) -> JSONResponse:
    unknown = sorted({name for name in form if name not in _FORM_PARTS})
    if unknown:
        raise PayloadError(
            f"multipart body has unknown parts {unknown}; the parts are {', '.join(_FORM_PARTS)}",
            [{"loc": name or "(unnamed part)", "msg": "unknown part"} for name in unknown],
        )
    raw_call = form.get("call")
    if raw_call is None:
        raise PayloadError(
            "multipart body needs a 'call' part with the call JSON", [{"loc": "call", "msg": "missing"}]
        )
    call_bytes = await raw_call.read() if isinstance(raw_call, UploadFile) else raw_call.encode()
    limits = limits_of(services.settings)
    document = parse_calls(call_bytes, limits)
    if len(document) != 1:
        raise PayloadError(
            "multipart ingest takes exactly one call", [{"loc": "call", "msg": "one call expected"}]
        )
    upload = form.get("recording")
    if not isinstance(upload, UploadFile):
        return await _json_ingest(services, project_id, call_bytes)
    audio = await upload.read()
    info = await run_in_threadpool(probe_audio, audio, filename=upload.filename)
    channel_text = form.get("channel_map")
    channel_map = _parse_channel_map(channel_text) if isinstance(channel_text, str) else {}
    if channel_map and len(channel_map) != info.channels:
        raise PayloadError(
            f"channel_map names {len(channel_map)} channels but the recording has {info.channels}",
            [{"loc": "channel_map", "msg": "channel count mismatch"}],
        )
    sha = await run_in_threadpool(services.blobs.put, audio)
    recording = Recording(
        uri=f"blob:{sha}",
        format=info.format,
        sample_rate=info.sample_rate,
        channels=info.channels,
        channel_map=channel_map,
        duration_s=info.duration_s,
        sha256=sha,
        vantage=str(form.get("vantage") or "upload"),
    )
    call = document[0]
    stored = call.model_copy(update={"recordings": [recording, *call.recordings]})
    body = orjson.dumps(stored.model_dump(mode="json", exclude_none=True))
    ingest_id, calls = await run_in_threadpool(_enqueue, services, project_id, body, [sha])
    return _accepted(services, project_id, ingest_id, calls)


async def _json_ingest(services: Services, project_id: str, body: bytes) -> JSONResponse:
    ingest_id, calls = await run_in_threadpool(_enqueue, services, project_id, body, [])
    return _accepted(services, project_id, ingest_id, calls)


@router.post(
    "/calls",
    status_code=202,
    summary="Ingest calls",
    responses=error_responses(422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Call"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "call": {"$ref": "#/components/schemas/Call", "description": "the call as JSON"},
                            "recording": {"type": "string", "format": "binary"},
                            "channel_map": {"type": "string", "example": "user,agent"},
                            "vantage": {"type": "string", "description": "where the audio was captured"},
                        },
                        "required": ["call"],
                        "additionalProperties": False,
                    }
                },
            },
        }
    },
)
async def ingest_calls(request: Request, project: CurrentProject) -> JSONResponse:
    """Accept one call, a list of up to 1,000, ``{"calls": [...]}``, or a multipart call with its recording.

    Answers 202 with the calls' ids once the payload is durable; the calls become queryable when the
    worker has stored them (``GET /api/v1/ingest/{ingest_id}`` tells).
    """
    services = get_services(request)
    with services.worker.busy():
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            return await _multipart(request, services, project.id)
        return await _json_ingest(services, project.id, await request.body())


class IngestStatus(BaseModel):
    """Where one ingest request stands: ``pending``, ``done`` or ``failed`` (a dead letter, with why)."""

    ingest_id: int
    kind: str
    status: Literal["pending", "done", "failed"]
    error: str | None = Field(description="The last failure: why a dead letter failed, or a retry's cause.")
    attempts: int = Field(description="Failed tries so far.")
    received_at: datetime
    processed_at: datetime | None
    retry_at: datetime | None = Field(description="When a pending request that failed is tried again.")


class IngestPage(BaseModel):
    """Ingest requests, newest first; pass ``next_before`` as ``before`` for the next page."""

    items: list[IngestStatus]
    next_before: int | None


def ingest_status_of(status: OutboxStatus) -> IngestStatus:
    """The public view of an outbox row (the API's and the CLI's)."""
    return IngestStatus(
        ingest_id=status.id,
        kind=status.kind,
        status=status.status,
        error=status.error,
        attempts=status.attempts,
        received_at=status.received_at,
        processed_at=status.processed_at,
        retry_at=status.run_after,
    )


@router.get("/ingest", summary="List ingest requests by status (the dead letters: status=failed)")
async def list_ingest(
    request: Request,
    project: CurrentProject,
    status: Annotated[Literal["failed", "pending"], Query(description="Which requests to list.")] = "failed",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_INGEST_ID, description="Only requests older than this ingest id.")
    ] = None,
) -> IngestPage:
    """The project's ingest requests in one state, newest first (``failed``: the dead letters)."""
    services = get_services(request)
    found = await run_in_threadpool(
        partial(services.meta.list_outbox, project.id, status=status, limit=limit, before_id=before)
    )
    items = [ingest_status_of(item) for item in found]
    return IngestPage(items=items, next_before=items[-1].ingest_id if len(items) == limit else None)


# ``:int`` keeps ``/ingest/{source}`` (POST, a vendor name) and this path apart when routing.
@router.get("/ingest/{ingest_id:int}", summary="Status of one ingest request")
async def ingest_status(
    ingest_id: Annotated[int, Path(ge=0, le=MAX_INGEST_ID)], request: Request, project: CurrentProject
) -> IngestStatus:
    """``pending``, ``done`` or ``failed`` (with the error) for an ``ingest_id`` a POST returned."""
    services = get_services(request)
    status = await run_in_threadpool(services.meta.status, ingest_id)
    if status is None or status.project_id != project.id:
        raise NotFound(f"ingest {ingest_id} not found")
    return ingest_status_of(status)


@router.post("/ingest/{ingest_id}/retry", summary="Put a dead-lettered ingest request back in the queue")
async def retry_ingest(
    ingest_id: Annotated[int, Path(ge=0, le=MAX_INGEST_ID)], request: Request, project: CurrentProject
) -> IngestStatus:
    """A ``failed`` request becomes ``pending`` again, due now; others are answered unchanged."""
    services = get_services(request)
    status = await run_in_threadpool(services.meta.retry_failed, project.id, ingest_id)
    services.worker.notify()
    return ingest_status_of(status)
