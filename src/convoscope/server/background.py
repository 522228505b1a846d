"""The loops that work behind the API: ingest, jobs, schedules, alerts and retention, in one list.

A server with ``run_jobs`` on runs them all itself. With it off, ``convoscope worker`` processes run
them instead, as many as are started: the outbox and the job queue hand each row and job to one claimer
(``FOR UPDATE SKIP LOCKED`` and leases), and schedules claim each fire time in the database, so those
run in every worker. Alert rules notify and retention deletes, so only one worker at a time runs each,
under an :class:`~convoscope.store.exclusive.ExclusiveLock`; when its holder dies, another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import ConvoscopeError
from ..store.exclusive import ExclusiveLock
from .services import Services

__all__ = ["LOCK_RETRY_S", "Loop", "background_loops", "run_alone"]

log = logging.getLogger("convoscope.server.background")

LOCK_RETRY_S = 5.0
"""How often a worker that does not hold a loop's lock asks again, and a holder checks it still does."""

Loop = Callable[[], Coroutine[Any, Any, None]]


async def run_alone(lock: ExclusiveLock, loop: Loop, *, retry_s: float = LOCK_RETRY_S) -> None:
    """Run ``loop`` while this process holds ``lock``; wait for the lock while another holds it."""
    try:
        while True:
            try:
                got = await asyncio.to_thread(lock.try_acquire)
            except ConvoscopeError as exc:
                log.warning("%s", exc)
                got = False
            if not got:
                await asyncio.sleep(retry_s)
                continue
            log.info("this process now runs %s", lock.name)
            task = asyncio.create_task(loop())
            try:
                while await asyncio.to_thread(lock.still_held):
                    done, _ = await asyncio.wait({task}, timeout=retry_s)
                    if done:
                        task.result()  # a loop that ended by itself: surface why
                        return
                log.warning(
                    "lost the %s lock (database connection gone); waiting to take it again", lock.name
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        await asyncio.to_thread(lock.release)


def background_loops(services: Services) -> list[Loop]:
    """Every background loop of a process that does the work behind the API."""

    def alone(name: str, loop: Loop) -> Loop:
        return lambda: run_alone(ExclusiveLock(services.meta, name), loop)

    return [
        services.worker.run,
        services.jobs.run,
        services.schedules.run,
        alone("alerts", services.alerts.run),
        alone("retention", services.retention.run),
    ]
