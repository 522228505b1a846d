"""Reading calls: the list, one call in full, and its recording with HTTP range support."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...errors import InputError, NotFound
from ...model import CallSource, EndReason
from ...model.blob_ref import stored_sha
from ...recordings.fetch import unstored_reason
from ...runtime.params import Timestamp
from ...store.base import CURSOR_PATTERN, CallFilter, CallOrder, CallPage, StoredCall
from ..auth import CurrentProject
from ..deps import get_services
from ..errors import error_body

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["calls"])

_MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_SERVE_CHUNK = 1024 * 1024
_CURSOR_OR_EMPTY = f"^$|{CURSOR_PATTERN}"
_RECORDING_TYPES = (*_MEDIA_TYPES.values(), "application/octet-stream")


@router.get("/calls", summary="List calls (newest first, or another order)")
async def list_calls(
    request: Request,
    project: CurrentProject,
    agent: str | None = None,
    source: CallSource | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    tag: str | None = None,
    end_reason: EndReason | None = None,
    has_recording: bool | None = None,
    agent_version: str | None = None,
    failing_metric: Annotated[
        str | None, Query(description="Calls with a failed score of this metric.")
    ] = None,
    score_metric: Annotated[
        str | None, Query(description="With `score_min`/`score_max`: calls whose score of it is in range.")
    ] = None,
    score_min: float | None = None,
    score_max: float | None = None,
    text: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Text in any turn (any case).")
    ] = None,
    order: Annotated[CallOrder, Query(description="The order pages come in.")] = CallOrder.NEWEST,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=_CURSOR_OR_EMPTY,
            description="`next_cursor` of the previous page; empty or absent for the first page.",
        ),
    ] = None,
) -> CallPage:
    """Filters combine with AND; pass ``next_cursor`` back as ``cursor`` for the next page (an empty
    ``cursor=``, as a form or a URL template sends it, is the first page)."""
    filters = CallFilter(
        agent_id=agent,
        source=source,
        since=since,
        until=until,
        tag=tag,
        end_reason=end_reason,
        has_recording=has_recording,
        agent_version=agent_version,
        failing_metric=failing_metric,
        score_metric=score_metric,
        score_min=score_min,
        score_max=score_max,
        text=text,
        order=order,
    )
    store = get_services(request).store
    return await run_in_threadpool(store.list_calls, project.id, filters, limit=limit, cursor=cursor or None)


async def _stored_call(request: Request, project_id: str, call_id: str) -> StoredCall:
    stored = await run_in_threadpool(get_services(request).store.get_call, project_id, call_id)
    if stored is None:
        raise NotFound(f"call {call_id} not found")
    return stored


class JobView(BaseModel):
    """Where one post-ingest job of the call stands (a failure keeps its error here)."""

    kind: str
    status: str
    attempts: int
    error: str | None
    updated_at: datetime


class CallDetail(StoredCall):
    """A stored call with the state of its post-ingest jobs (recording, audio analysis, evals)."""

    jobs: list[JobView] = Field(default_factory=list)


@router.get("/calls/{call_id}", summary="One call with turns, tool calls, recordings, scores and jobs")
async def get_call(call_id: str, request: Request, project: CurrentProject) -> CallDetail:
    """The newest stored version of the call."""
    stored = await _stored_call(request, project.id, call_id)
    statuses = await run_in_threadpool(get_services(request).meta.jobs_for_call, project.id, call_id)
    jobs = [
        JobView(kind=s.kind, status=s.status, attempts=s.attempts, error=s.error, updated_at=s.updated_at)
        for s in statuses
    ]
    return CallDetail(**dict(stored), jobs=jobs)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks for; None for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        raise _Unsatisfiable(size)
    first, last = match.group(1), match.group(2)
    if not first:
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise _Unsatisfiable(size)
    return start, end


class _Unsatisfiable(InputError):
    def __init__(self, size: int) -> None:
        super().__init__("requested range not satisfiable")
        self.size = size


@router.get(
    "/calls/{call_id}/recording",
    summary="The call's recording (supports Range requests)",
    response_class=Response,
    responses={
        200: {"content": {media: {} for media in _RECORDING_TYPES}},
        206: {"description": "Partial content", "content": {media: {} for media in _RECORDING_TYPES}},
        416: {"description": "The `Range` header asks for bytes the recording does not have."},
    },
)
async def get_recording(
    call_id: str,
    request: Request,
    project: CurrentProject,
    index: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Serves our re-hosted copy; ``index`` picks one of several recordings."""
    stored = await _stored_call(request, project.id, call_id)
    recordings = stored.call.recordings
    if index >= len(recordings):
        raise NotFound(f"call {call_id} has no recording {index}")
    recording = recordings[index]
    sha = stored_sha(recording)
    if sha is None:
        jobs = await run_in_threadpool(get_services(request).meta.jobs_for_call, project.id, call_id)
        raise NotFound(f"recording {index} of call {call_id} is {unstored_reason(recording, jobs)}")
    blobs = get_services(request).blobs
    size = await run_in_threadpool(blobs.size, sha)
    media_type = _MEDIA_TYPES.get((recording.format or "").lower(), "application/octet-stream")
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'}
    try:
        byte_range = _byte_range(request.headers.get("range"), size)
    except _Unsatisfiable:
        return JSONResponse(
            error_body(
                "RangeNotSatisfiable", f"range {request.headers.get('range')!r} is not in 0-{size - 1}"
            ),
            status_code=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = byte_range if byte_range is not None else (0, size - 1)
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end + 1 - start)
    return StreamingResponse(
        _file_range(partial(blobs.open, sha), start, end + 1),
        status_code=200 if byte_range is None else 206,
        media_type=media_type,
        headers=headers,
    )


def _file_range(opener: Callable[[], BinaryIO], start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of a blob, a megabyte at a time (a recording may be 100 MiB).

    The blob is opened on the first read, not before: a player that cancels its range request before
    the body starts (seeking, leaving the page) would otherwise leave an open file to the collector. The
    file is closed when the response ends or the client goes away."""
    with opener() as handle:
        handle.seek(start)
        remaining = stop - start
        while remaining > 0:
            chunk = handle.read(min(remaining, _SERVE_CHUNK))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
