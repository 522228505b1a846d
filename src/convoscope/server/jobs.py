"""Runs post-ingest jobs (re-hosting recordings, audio analysis, evals, trace assembly) in the server.

Jobs live in the metadata store, so they survive a restart; this runner claims due ones, hands each to the
handler registered for its kind and records the outcome on the job row. A handler signals a transient
failure with ``JobRetry`` (the job comes back after a backoff, up to ``max_attempts``); any other
convoscope error fails the job for good with its message, which stays visible on the call. One failing
call never blocks the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from ..errors import ConvoscopeError
from ..store.metadata import Job, MetadataStore

__all__ = ["JobHandler", "JobRetry", "JobRunner"]

log = logging.getLogger("convoscope.jobs")

JobHandler = Callable[[Job], None]
"""Does one job; raises ``JobRetry`` to try again later or another ``ConvoscopeError`` to give up."""


class JobRetry(ConvoscopeError):
    """A transient failure (a slow server, a 5xx): run the job again after ``after_s`` seconds."""

    def __init__(self, message: str, *, after_s: float) -> None:
        super().__init__(message)
        self.after_s = after_s


class JobRunner:
    """Claims due jobs of the registered kinds and runs them off the event loop, one lane per kind."""

    def __init__(
        self,
        meta: MetadataStore,
        handlers: Mapping[str, JobHandler],
        *,
        poll_s: float = 1.0,
        claim_jobs: int = 16,
        max_attempts: int = 5,
        ingest_busy_at: Callable[[], float] | None = None,
        yield_to_ingest_s: float = 0.5,
        max_deferral_s: float = 5.0,
    ) -> None:
        self._meta = meta
        self._handlers = dict(handlers)
        self._poll_s = poll_s
        self._claim_jobs = claim_jobs
        self._max_attempts = max_attempts
        self._ingest_busy_at = ingest_busy_at
        self._yield_to_ingest_s = yield_to_ingest_s
        self._max_deferral_s = max_deferral_s
        self._wakes: list[asyncio.Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.done_jobs = 0
        self.failed_jobs = 0

    @property
    def kinds(self) -> frozenset[str]:
        """The job kinds this runner handles."""
        return frozenset(self._handlers)

    def register(self, kind: str, handler: JobHandler) -> None:
        """Handle jobs of ``kind`` with ``handler`` (a later registration of the same kind wins)."""
        self._handlers[kind] = handler

    def notify(self) -> None:
        """Wake every lane now (thread-safe), e.g. right after jobs were queued."""
        if self._loop is not None:
            for wake in self._wakes:
                self._loop.call_soon_threadsafe(wake.set)

    async def run(self) -> None:
        """Run jobs until cancelled, one lane per job kind; jobs a crashed process left running go back first.

        Lanes keep kinds from queueing behind each other: a slow recording download or a burst of
        evaluations does not hold up audio analysis of other calls.
        """
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._meta.recover_jobs)
        lanes = [asyncio.create_task(self._lane(frozenset({kind}))) for kind in sorted(self._handlers)]
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()

    async def _lane(self, kinds: frozenset[str]) -> None:
        wake = asyncio.Event()
        self._wakes.append(wake)
        while True:
            await self._give_way_to_ingest()
            try:
                ran = await asyncio.to_thread(self._run_claim, kinds)
            except ConvoscopeError as exc:
                log.warning("job runner (%s): %s", ", ".join(sorted(kinds)), exc)
                ran = 0
            if ran:
                continue
            try:
                await asyncio.wait_for(wake.wait(), timeout=self._poll_s)
            except TimeoutError:
                pass
            wake.clear()

    async def _give_way_to_ingest(self) -> None:
        """Wait while ingest was busy within ``yield_to_ingest_s``, for at most ``max_deferral_s`` in a row.

        Ingest acknowledges calls and jobs only analyse them, so under a burst the outbox drains first; the
        bound keeps jobs moving under sustained load instead of starving them.
        """
        if self._ingest_busy_at is None:
            return
        deferred_since = time.monotonic()
        while time.monotonic() - self._ingest_busy_at() < self._yield_to_ingest_s:
            if time.monotonic() - deferred_since >= self._max_deferral_s:
                return
            await asyncio.sleep(self._yield_to_ingest_s / 2)

    def run_once(self) -> int:
        """Run one claim of due jobs of every kind synchronously; returns how many ran."""
        return self._run_claim(self.kinds)

    def _run_claim(self, kinds: frozenset[str]) -> int:
        jobs = self._meta.claim_jobs(kinds, self._claim_jobs)
        for job in jobs:
            self._run(job)
        return len(jobs)

    def run_until_idle(self, *, max_rounds: int = 100) -> int:
        """Run due jobs, including the follow-ups they queue, until none is due; returns how many ran."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            if not ran:
                break
            total += ran
        return total

    def _run(self, job: Job) -> None:
        handler = self._handlers[job.kind]
        try:
            handler(job)
        except JobRetry as exc:
            if job.attempts >= self._max_attempts:
                self._fail(job, f"{exc} (gave up after {job.attempts} attempts)")
            else:
                retry_at = datetime.now(UTC) + timedelta(seconds=exc.after_s)
                self._meta.fail_job(job.id, str(exc), retry_at=retry_at)
            return
        except ConvoscopeError as exc:
            self._fail(job, str(exc))
            return
        except Exception as exc:  # a bug in one handler must not stop every other call's jobs
            log.exception("job %s %s of call %s crashed", job.id, job.kind, job.call_id)
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")
            return
        self._meta.finish_job(job.id)
        self.done_jobs += 1

    def _fail(self, job: Job, error: str) -> None:
        log.warning("job %s (%s of call %s) failed: %s", job.id, job.kind, job.call_id, error)
        self._meta.fail_job(job.id, error)
        self.failed_jobs += 1
