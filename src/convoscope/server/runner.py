"""Run the server process: own the data directory, open the stores, serve HTTP until stopped."""

from __future__ import annotations

import gc
from collections.abc import Callable

import uvicorn

from ..config import Settings
from ..store.lock import DataDirLock
from .app import create_app
from .services import Services, open_services

__all__ = ["GC_YOUNG_THRESHOLD", "serve"]

GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default is 700). Ingest makes a few objects
per span or call that live for milliseconds; at 700 the batches in flight outlived young collections and
the full collections they caused took about a quarter of the server's CPU under OTLP load."""


def serve(settings: Settings, *, before_start: Callable[[Services], None] | None = None) -> None:
    """Serve until interrupted; ``before_start`` runs with the opened services (the demo seeds data)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    lock = DataDirLock(settings.data_dir)
    lock.acquire()
    try:
        services = open_services(settings)
        try:
            if before_start is not None:
                before_start(services)
            app = create_app(services)
            config = uvicorn.Config(
                app, host=settings.host, port=settings.port, log_level="warning", access_log=False
            )
            server = uvicorn.Server(config)
            lock.publish_server(f"http://{settings.host}:{settings.port}")
            server.run()
        finally:
            services.close()
    finally:
        lock.release()
