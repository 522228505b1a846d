"""``/healthz``: the truth about the stores and ingest, because a green check over a stalled worker misleads.

503 names every reason: a store that does not answer a real query (the blob store: a file written and
removed, or a HEAD of the bucket), due ingest rows that no drain has made
progress on for ``health_stall_s``, or rows dead-lettered within ``health_dead_letter_window_s``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...errors import ConvoscopeError
from ..deps import get_services
from ..services import Services

__all__ = ["router"]

router = APIRouter(tags=["health"])


def _ingest_check(services: Services) -> tuple[dict[str, Any], list[str]]:
    """The worker's state and the reasons it is unhealthy (none when it is well)."""
    worker = services.worker
    policy = worker.health_policy
    now = datetime.now(UTC)
    due, oldest = services.meta.due_pending(now)
    dead = services.meta.failed_since(now - timedelta(seconds=policy.dead_letter_window_s))
    problems: list[str] = []
    if services.settings.run_jobs:
        idle_s = time.monotonic() - worker.last_progress
        if due and idle_s > policy.stall_s:
            problems.append(f"ingest stalled: {due} rows wait and none was stored for {idle_s:.0f} s")
    else:
        # The drain runs in worker processes, whose progress this one cannot see: a due row that has
        # waited longer than the stall time means none of them is draining.
        idle_s = (now - oldest).total_seconds() if due and oldest is not None else 0.0
        if idle_s > policy.stall_s:
            problems.append(
                f"ingest stalled: {due} rows wait, the oldest for {idle_s:.0f} s; "
                "is a `convoscope worker` running?"
            )
    if dead > policy.max_dead_letters:
        problems.append(
            f"ingest dead letters rising: {dead} rows failed for good in the last "
            f"{policy.dead_letter_window_s:.0f} s (GET /api/v1/ingest?status=failed lists them)"
        )
    check = {
        "ok": not problems,
        "pending": services.meta.pending_count(),
        "due": due,
        "oldest_due_at": oldest,
        "seconds_since_progress": round(idle_s, 3),
        "dead_letters_in_window": dead,
        "calls_written": worker.stored_calls,
        "retried_rows": worker.retried_rows,
        "failed_rows": worker.failed_rows,
        "last_error": worker.last_error,
    }
    return check, problems


@router.get(
    "/healthz",
    summary="Health of the stores and the ingest worker",
    responses={503: {"description": "A store failed its probe", "content": {"application/json": {}}}},
)
async def healthz(request: Request) -> JSONResponse:
    """200 when every store answers a real query and ingest makes progress; 503 with the reasons otherwise."""
    services = get_services(request)
    checks: dict[str, Any] = {}
    problems: list[str] = []
    probes = (
        ("clickhouse", services.store.ping),
        ("metadata", services.meta.ping),
        ("blobs", services.blobs.ping),
    )
    for name, probe in probes:
        try:
            checks[name] = {"ok": True, **await run_in_threadpool(probe)}
        except ConvoscopeError as exc:
            problems.append(f"{name} store does not answer: {exc}")
            checks[name] = {"ok": False, "error": str(exc)}
    try:
        checks["ingest"], ingest_problems = await run_in_threadpool(_ingest_check, services)
        problems.extend(ingest_problems)
    except ConvoscopeError as exc:
        problems.append(f"ingest state could not be read: {exc}")
        checks["ingest"] = {"ok": False, "error": str(exc)}
    body = jsonable_encoder({"status": "error" if problems else "ok", "problems": problems, "checks": checks})
    return JSONResponse(body, status_code=503 if problems else 200)
