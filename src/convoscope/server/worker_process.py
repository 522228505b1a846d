"""``convoscope worker``: the work behind the API in a process of its own, as many as are needed.

An API server with ``run_jobs`` off only answers requests (it stays stateless: what it accepts is
committed to the outbox in the metadata database). Worker processes drain that outbox into ClickHouse
and run the post-ingest jobs, schedules, alert rules and retention (:mod:`.background`). They share
state only through the databases, so they need a ClickHouse server (embedded chDB belongs to one
process) and PostgreSQL for metadata (its row locks hand each row and job to one worker); recordings
need a store every process reaches: an S3 bucket, or a data directory on a shared filesystem.

A worker that is killed loses nothing: its outbox rows and jobs stay leased to it for
``claim_lease_s`` (renewed while it works) and are then taken by another; its alert and retention
locks end with its database connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from ..config import Settings
from ..errors import InputError
from .runner import GC_YOUNG_THRESHOLD

if TYPE_CHECKING:
    from .background import Loop

__all__ = ["check_shared_stores", "run_worker"]

log = logging.getLogger("convoscope.worker")


def check_shared_stores(settings: Settings, *, who: str) -> None:
    """InputError naming each setting that keeps the stores from being shared between processes."""
    problems: list[str] = []
    if not settings.clickhouse_url:
        problems.append(
            "CONVOSCOPE_CLICKHOUSE_URL is not set: the embedded store belongs to one process, so "
            f"{who} needs a ClickHouse server"
        )
    backend = make_url(settings.resolved_metadata_url).get_backend_name()
    if backend != "postgresql":
        problems.append(
            f"CONVOSCOPE_METADATA_URL names {backend}, not PostgreSQL: {who} shares the outbox and the job "
            "queue with other processes through PostgreSQL's row locks"
        )
    if problems:
        raise InputError("; ".join(problems))


def run_worker(settings: Settings, *, ready: Callable[[], None] | None = None) -> None:
    """Run the background loops until SIGINT or SIGTERM, then close the stores."""
    check_shared_stores(settings, who="convoscope worker")
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    from .background import background_loops
    from .services import open_services

    services = open_services(settings)
    try:
        asyncio.run(_run(background_loops(services), ready))
    finally:
        services.close()


async def _run(loops: list[Loop], ready: Callable[[], None] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(run()) for run in loops]
    if ready is not None:
        ready()
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({stopped, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopped}:
            task.result()  # a loop that died: its error ends the worker, which its supervisor restarts
    finally:
        for task in [*tasks, stopped]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
