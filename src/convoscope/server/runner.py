"""Run the server process: own the data directory, open the stores, serve HTTP until stopped.

Start-up imports the web framework, both stores' drivers and the job handlers, and opens the stores:
hundreds of thousands of objects that live as long as the process. The cyclic collector would walk them
again and again while they are being made, so it is off until the server is about to listen; the objects
made by then are frozen (``gc.freeze``: never scanned again), which also keeps later full collections
short. The heavy imports are inside :func:`serve` so that they happen with the collector off.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..store.lock import DataDirLock

if TYPE_CHECKING:
    from ..config import Settings
    from .services import Services

__all__ = ["GC_YOUNG_THRESHOLD", "serve"]

GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default is 700). Ingest makes a few objects
per span or call that live for milliseconds; at 700 the batches in flight outlived young collections and
the full collections they caused took about a quarter of the server's CPU under OTLP load."""


@contextmanager
def _collector_paused() -> Iterator[Callable[[], None]]:
    """Cyclic GC off; the yielded ``resume`` freezes what exists and turns it back on (so does leaving)."""
    was_enabled = gc.isenabled()
    gc.disable()

    def resume() -> None:
        gc.freeze()
        if was_enabled:
            gc.enable()

    try:
        yield resume
    finally:
        if was_enabled:
            gc.enable()


def serve(settings: Settings, *, before_start: Callable[[Services], None] | None = None) -> None:
    """Serve until interrupted; ``before_start`` runs with the opened services (the demo seeds data)."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    with _collector_paused() as resume:
        import uvicorn

        from .app import create_app
        from .services import open_services

        # A server that leaves the work to `convoscope worker` processes shares every store with them
        # and with other API servers: it owns no data directory, so it takes no lock on one.
        alone = settings.run_jobs
        if not alone:
            from .worker_process import check_shared_stores

            check_shared_stores(settings, who="a server with CONVOSCOPE_RUN_JOBS=false")
        lock = DataDirLock(settings.data_dir)
        if alone:
            lock.acquire()
        try:
            services = open_services(settings)
            try:
                if before_start is not None:
                    before_start(services)
                app = create_app(services, run_worker=alone)
                config = uvicorn.Config(
                    app, host=settings.host, port=settings.port, log_level="warning", access_log=False
                )
                server = uvicorn.Server(config)
                if alone:
                    lock.publish_server(f"http://{settings.host}:{settings.port}")
                resume()
                server.run()
            finally:
                services.close()
        finally:
            if alone:
                lock.release()
