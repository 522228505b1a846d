"""``/healthz``: a real query on both stores, because a green check over a broken store misleads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ...errors import ConvoscopeError
from ..deps import get_services

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health of the stores and the ingest worker")
async def healthz(request: Request) -> JSONResponse:
    """200 when both stores answer a real query; 503 naming the store that failed otherwise."""
    services = get_services(request)
    checks: dict[str, Any] = {}
    healthy = True
    for name, probe in (("clickhouse", services.store.ping), ("metadata", services.meta.ping)):
        try:
            checks[name] = {"ok": True, **await run_in_threadpool(probe)}
        except ConvoscopeError as exc:
            healthy = False
            checks[name] = {"ok": False, "error": str(exc)}
    worker = services.worker
    checks["ingest"] = {
        "stored_calls": worker.stored_calls,
        "failed_rows": worker.failed_rows,
        "last_error": worker.last_error,
        "pending": await run_in_threadpool(services.meta.pending_count),
    }
    body = jsonable_encoder({"status": "ok" if healthy else "error", "checks": checks})
    return JSONResponse(body, status_code=200 if healthy else 503)
