"""Runs post-ingest jobs (re-hosting recordings, audio analysis, evals, trace assembly) in the server.

Jobs live in the metadata store, so they survive a restart; this runner claims due ones, hands each to the
handler registered for its kind and records the outcome on the job row. A handler signals a transient
failure with ``JobRetry`` (the job comes back after a backoff, up to ``max_attempts``); any other
convoscope error fails the job for good with its message, which stays visible on the call. One failing
call never blocks the others.

A kind may register a :class:`Batched` handler instead, which receives up to ``size`` claimed jobs at
once: reading many calls with one query and writing their results with one insert costs little more
than doing it for one. Its outcomes are settled with one metadata commit per batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import ConvoscopeError
from ..store.jobqueue import JobFailure
from ..store.metadata import Job, MetadataStore

__all__ = ["BatchJobHandler", "Batched", "JobHandler", "JobRetry", "JobRunner", "job_error", "per_project"]

log = logging.getLogger("convoscope.jobs")

JobHandler = Callable[[Job], None]
"""Does one job; raises ``JobRetry`` to try again later or another ``ConvoscopeError`` to give up."""

BatchJobHandler = Callable[[Sequence[Job]], Mapping[int, ConvoscopeError]]
"""Does several jobs of one kind at once; returns {job id: error} for the jobs that did not succeed
(a JobRetry error retries that job, any other ConvoscopeError fails it); every job not named is done."""


def job_error(exc: Exception, jobs: Sequence[Job]) -> ConvoscopeError:
    """A handler's exception as the error its jobs record; a bug (not a ``ConvoscopeError``) is logged
    with its traceback and recorded as an internal error, so one failing call never stops the others."""
    if isinstance(exc, ConvoscopeError):
        return exc
    named = ", ".join(f"{job.id} ({job.kind} of call {job.call_id})" for job in jobs)
    log.error("job %s crashed", named, exc_info=exc)
    return ConvoscopeError(f"internal error: {type(exc).__name__}: {exc}")


class JobRetry(ConvoscopeError):
    """A transient failure (a slow server, a 5xx): run the job again after ``after_s`` seconds."""

    def __init__(self, message: str, *, after_s: float) -> None:
        super().__init__(message)
        self.after_s = after_s


def per_project(
    jobs: Sequence[Job],
    run: Callable[[str, list[Job]], Mapping[int, ConvoscopeError]],
    on_error: Callable[[ConvoscopeError], ConvoscopeError] = lambda exc: exc,
) -> dict[int, ConvoscopeError]:
    """Run a batch one project at a time (reads and writes are per project); a project's failure, as
    ``on_error`` words it (a retry, say), is the error of its jobs alone, not of the whole batch."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.project_id, []).append(job)
    errors: dict[int, ConvoscopeError] = {}
    for project_id, group in groups.items():
        try:
            errors.update(run(project_id, group))
        except ConvoscopeError as exc:
            error = on_error(exc)
            errors.update({job.id: error for job in group})
    return errors


@dataclass(frozen=True)
class Batched:
    """A kind's handler that takes up to ``size`` jobs at once; raising fails or retries the whole batch."""

    handler: BatchJobHandler
    size: int
    """Most jobs handed over at once."""

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"a batch handler needs a size of at least 1, not {self.size}")


class JobRunner:
    """Claims due jobs of the registered kinds and runs them off the event loop, one lane per kind.

    ``ingest_busy_at`` tells when ingest was last busy; while that was within ``yield_to_ingest_s`` a
    lane waits before its next claim, but no longer than ``max_deferral_s`` or, after a long claim, than
    it takes for its claims to be at most ``busy_share`` of the time (see ``_give_way_to_ingest``).
    """

    def __init__(
        self,
        meta: MetadataStore,
        handlers: Mapping[str, JobHandler | Batched],
        *,
        poll_s: float = 1.0,
        claim_jobs: int = 16,
        max_attempts: int = 5,
        ingest_busy_at: Callable[[], float] | None = None,
        yield_to_ingest_s: float = 0.5,
        max_deferral_s: float = 5.0,
        busy_share: float = 0.05,
        renew_every_s: float = 60.0,
    ) -> None:
        if not 0.0 < busy_share <= 1.0:
            raise ValueError(f"busy_share must be in (0, 1], not {busy_share}")
        self._meta = meta
        self._handlers = dict(handlers)
        self._poll_s = poll_s
        self._claim_jobs = claim_jobs
        self._max_attempts = max_attempts
        self._ingest_busy_at = ingest_busy_at
        self._yield_to_ingest_s = yield_to_ingest_s
        self._max_deferral_s = max_deferral_s
        self._busy_share = busy_share
        self._renew_every_s = renew_every_s
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._wakes: list[asyncio.Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.done_jobs = 0
        self.failed_jobs = 0

    @property
    def kinds(self) -> frozenset[str]:
        """The job kinds this runner handles."""
        return frozenset(self._handlers)

    def register(self, kind: str, handler: JobHandler | Batched) -> None:
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
        lanes.append(asyncio.create_task(self._keep_leases()))
        try:
            await asyncio.gather(*lanes)
        finally:
            for lane in lanes:
                lane.cancel()

    async def _lane(self, kinds: frozenset[str]) -> None:
        wake = asyncio.Event()
        self._wakes.append(wake)
        claim_s = 0.0
        while True:
            await self._give_way_to_ingest(claim_s)
            started = time.monotonic()
            try:
                ran = await asyncio.to_thread(self._run_claim, kinds)
            except ConvoscopeError as exc:
                log.warning("job runner (%s): %s", ", ".join(sorted(kinds)), exc)
                ran = 0
            claim_s = time.monotonic() - started if ran else 0.0
            if ran:
                continue
            try:
                await asyncio.wait_for(wake.wait(), timeout=self._poll_s)
            except TimeoutError:
                pass
            wake.clear()

    async def _keep_leases(self) -> None:
        """Renew the leases of the jobs running here, so no other worker takes a long job over while
        this process is alive; a killed process stops renewing, and its jobs are free once they lapse."""
        while True:
            await asyncio.sleep(self._renew_every_s)
            with self._in_flight_lock:
                running = list(self._in_flight)
            if running:
                try:
                    await asyncio.to_thread(self._meta.renew_jobs, running)
                except ConvoscopeError as exc:
                    log.warning("could not renew the leases of %d running jobs: %s", len(running), exc)

    async def _give_way_to_ingest(self, claim_s: float) -> None:
        """Wait while ingest was busy within ``yield_to_ingest_s``, but not longer than the lane's bound.

        Ingest acknowledges calls and jobs only analyse them, so under a burst the outbox drains first.
        The bound keeps jobs moving under sustained load instead of starving them: at least
        ``max_deferral_s``, and long enough that the lane's last claim (``claim_s``, a batch of
        evaluations can take a few hundred ms) is at most ``busy_share`` of the time while ingest is busy.
        """
        if self._ingest_busy_at is None:
            return
        bound = max(self._max_deferral_s, claim_s * (1.0 - self._busy_share) / self._busy_share)
        deferred_since = time.monotonic()
        while time.monotonic() - self._ingest_busy_at() < self._yield_to_ingest_s:
            if time.monotonic() - deferred_since >= bound:
                return
            await asyncio.sleep(self._yield_to_ingest_s / 2)

    def run_once(self) -> int:
        """Run one claim of due jobs of every kind synchronously; returns how many ran."""
        return self._run_claim(self.kinds)

    def _run_claim(self, kinds: frozenset[str]) -> int:
        """Claim due jobs of ``kinds`` and run them, kind by kind in the order their first job was due.

        A batched kind's jobs go to its handler ``size`` at a time; the claim is large enough for one
        full batch of every batched kind asked for.
        """
        limit = max([self._claim_jobs] + [self._batch_size(kind) for kind in kinds])
        jobs = self._meta.claim_jobs(kinds, limit)
        ids = {job.id for job in jobs}
        with self._in_flight_lock:
            self._in_flight |= ids
        try:
            by_kind: dict[str, list[Job]] = {}
            for job in jobs:
                by_kind.setdefault(job.kind, []).append(job)
            for kind, group in by_kind.items():
                handler = self._handlers[kind]
                if isinstance(handler, Batched):
                    for start in range(0, len(group), handler.size):
                        self._run_batch(handler, group[start : start + handler.size])
                else:
                    for job in group:
                        self._run(handler, job)
        finally:
            with self._in_flight_lock:
                self._in_flight -= ids
        return len(jobs)

    def _batch_size(self, kind: str) -> int:
        handler = self._handlers.get(kind)
        return handler.size if isinstance(handler, Batched) else 0

    def run_until_idle(self, *, max_rounds: int = 100) -> int:
        """Run due jobs, including the follow-ups they queue, until none is due; returns how many ran."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            if not ran:
                break
            total += ran
        return total

    def _run(self, handler: JobHandler, job: Job) -> None:
        try:
            handler(job)
        except Exception as exc:
            self._settle([job], {job.id: job_error(exc, [job])})
            return
        self._settle([job], {})

    def _run_batch(self, batched: Batched, jobs: Sequence[Job]) -> None:
        try:
            errors = dict(batched.handler(jobs))
        except Exception as exc:
            error = job_error(exc, jobs)
            errors = {job.id: error for job in jobs}
        self._settle(jobs, errors)

    def _settle(self, jobs: Sequence[Job], errors: Mapping[int, ConvoscopeError]) -> None:
        """Record every job's outcome in one metadata commit: retried, failed, else done."""
        done: list[int] = []
        failed: list[JobFailure] = []
        now = datetime.now(UTC)
        for job in jobs:
            error = errors.get(job.id)
            if error is None:
                done.append(job.id)
            elif isinstance(error, JobRetry) and job.attempts < self._max_attempts:
                failed.append(JobFailure(job.id, str(error), now + timedelta(seconds=error.after_s)))
            else:
                message = str(error)
                if isinstance(error, JobRetry):
                    message = f"{message} (gave up after {job.attempts} attempts)"
                log.warning("job %s (%s of call %s) failed: %s", job.id, job.kind, job.call_id, message)
                failed.append(JobFailure(job.id, message))
        self._meta.settle_jobs(done, failed)
        self.done_jobs += len(done)
        self.failed_jobs += sum(1 for failure in failed if failure.retry_at is None)
