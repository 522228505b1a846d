"""``create_app``: wires services, routers, error mapping and the ingest worker into one FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .api import (
    audio_jobs,
    calls,
    evals,
    health,
    ingest,
    metrics,
    otlp,
    otlp_logs,
    simulation,
    trace_search,
    traces,
    webhooks,
)
from .api.access import router as access_router
from .api.alerts import router as alerts_router
from .api.audit import router as audit_router
from .api.redaction import router as redaction_router
from .api.retention import router as retention_router
from .api.reviews import router as reviews_router
from .api.schedules import router as schedules_router
from .api.simulation_definitions import router as simulation_definitions_router
from .api_docs import install_api_docs
from .audit import AuditMiddleware
from .background import background_loops
from .errors import install_error_handlers
from .limits import BodyLimitMiddleware
from .openapi import install_openapi
from .rate_limit import RateLimitMiddleware
from .security_headers import SecurityHeadersMiddleware
from .services import Services
from .ui import router as ui_router

__all__ = ["create_app"]


def create_app(services: Services, *, run_worker: bool = True) -> FastAPI:
    """The app over already-opened services; the outbox worker and the job runner run while the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runners = background_loops(services) if run_worker else []
        tasks = [asyncio.create_task(run()) for run in runners]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="convoscope",
        version=__version__,
        summary="Test, monitor and evaluate voice AI agents.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    install_api_docs(app)
    routers = (ingest.router, webhooks.router, calls.router, metrics.router, health.router, audio_jobs.router)
    simulation_routers = (simulation.router, simulation_definitions_router)
    for router in (
        *routers,
        evals.router,
        otlp.router,
        otlp_logs.router,
        traces.router,
        trace_search.router,
        *simulation_routers,
        ui_router,
    ):
        app.include_router(router)
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("convoscope.server") / "static")),
        name="static",
    )
    app.include_router(alerts_router)
    app.include_router(schedules_router)
    app.include_router(reviews_router)
    app.include_router(redaction_router)
    for router in (access_router, audit_router, retention_router):
        app.include_router(router)
    app.add_middleware(AuditMiddleware, recorder=lambda: services.audit)
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=services.settings.max_body_bytes,
        upload_limit=services.settings.max_recording_bytes,
        route_limits={"/api/v1/ingest/elevenlabs": services.settings.max_webhook_audio_bytes},
    )
    app.add_middleware(
        RateLimitMiddleware,
        per_key=services.settings.rate_limit,
        login=services.settings.login_rate_limit,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    install_openapi(app)
    return app
