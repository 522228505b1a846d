"""Drains the ingest outbox into ClickHouse in batches.

A request is acknowledged once its raw body is committed to the outbox; this worker turns those rows into
stored calls. Rows are marked done only after the insert returned, so a crash replays them, and because a
call's id and replacement key are deterministic, a replay cannot duplicate anything.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..errors import ConvoscopeError, InputError
from ..ingest.canonical import CallLimits, parse_calls
from ..model import Call, call_id_for
from ..store.base import CallStore
from ..store.metadata import MetadataStore, OutboxItem

__all__ = ["IngestWorker", "assign_identity"]

log = logging.getLogger("convoscope.worker")


def assign_identity(project_id: str, call: Call) -> Call:
    """The call as stored: in its project, with its deterministic id."""
    call_id = call_id_for(project_id, call.source, call.external_id, call.started_at)
    return call.model_copy(update={"id": call_id, "project_id": project_id})


@dataclass
class _Batch:
    """Calls of one project gathered from several outbox rows; later rows win on the same key."""

    calls: dict[tuple[str, str], Call] = field(default_factory=dict)
    version: int = 0

    def add(self, calls: Iterable[Call], version: int) -> None:
        for call in calls:
            self.calls[(call.source, call.external_id)] = call
        self.version = max(self.version, version)


class IngestWorker:
    """One consumer of the outbox inside the server process."""

    def __init__(
        self,
        *,
        meta: MetadataStore,
        store: CallStore,
        limits: CallLimits,
        batch_calls: int,
        poll_s: float,
        claim_rows: int = 256,
        retention: timedelta = timedelta(days=7),
        purge_every_s: float = 3600.0,
        linger_s: float = 0.05,
    ) -> None:
        """``linger_s``: after a drain that took less than a full claim, how long to let more rows
        gather before the next one. Each drain has a fixed cost (an insert per table, the metadata
        commits) that a stream of small requests paid per request; one 512-span OTLP export per
        drain cost about twice the CPU per span of four."""
        self._meta = meta
        self._store = store
        self._limits = limits
        self._batch_calls = batch_calls
        self._poll_s = poll_s
        self._claim_rows = claim_rows
        self._linger_s = linger_s
        self._retention = retention
        self._purge_every_s = purge_every_s
        self._after_store: Callable[[str, Sequence[Call]], None] | None = None
        self._kinds: dict[str, Callable[[Sequence[OutboxItem]], dict[int, str]]] = {}
        self._last_purge: datetime | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Calls validated by the request handler, by outbox id: the worker uses them instead of parsing the
        # committed payload again. Only a shortcut: after a restart the payload is parsed from the outbox.
        self._handed: dict[int, list[Call]] = {}
        self._handed_calls = 0
        self._handed_limit = 50_000
        self._handed_lock = threading.Lock()
        self.stored_calls = 0
        self.failed_rows = 0
        self.last_error: str | None = None
        self.last_busy = float("-inf")
        """When a drain last found work or a request was last received (``time.monotonic()``)."""
        self._active = 0
        """Requests being received plus drains storing rows, now."""
        self._active_lock = threading.Lock()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark ingest busy for a while: a request read, validated and committed, a drain (``busy_at``)."""
        with self._active_lock:
            self._active += 1
        try:
            yield
        finally:
            with self._active_lock:
                self._active -= 1
            self.last_busy = time.monotonic()

    def busy_at(self) -> float:
        """When ingest was last busy (``time.monotonic()``): now while a request is being received or a
        drain is storing rows, else when the last of those ended.

        Jobs give ingest the CPU while it is busy. The start of a drain alone is not the signal: one
        drain of a backlog stores many batches for seconds, and between two large POSTs the worker
        waits while the next body is parsed; jobs run then would slow both down.
        """
        return time.monotonic() if self._active else self.last_busy

    def register_kind(self, kind: str, handler: Callable[[Sequence[OutboxItem]], dict[int, str]]) -> None:
        """Store outbox rows of another ``kind`` (not canonical calls) with ``handler``.

        The handler gets the claimed rows of its kind and returns ``{row id: error}`` for the rows it
        could not take; the others are marked done once it returns.
        """
        self._kinds[kind] = handler

    def set_after_store(self, after_store: Callable[[str, Sequence[Call]], None]) -> None:
        """Call ``after_store(project_id, calls)`` after each stored batch (to plan follow-up jobs)."""
        self._after_store = after_store

    def hand_over(self, ingest_id: int, calls: list[Call]) -> None:
        """Offer the already-validated calls of a committed outbox row, then wake the worker."""
        with self._handed_lock:
            if self._handed_calls + len(calls) <= self._handed_limit:
                self._handed[ingest_id] = calls
                self._handed_calls += len(calls)
        self.notify()

    def notify(self) -> None:
        """Wake the worker now (thread-safe); it also polls on its own."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Drain until cancelled, waking on notify or every poll interval."""
        self._loop = asyncio.get_running_loop()
        backoff_s = self._poll_s
        while True:
            try:
                drained = await asyncio.to_thread(self.drain_once)
                backoff_s = self._poll_s
            except ConvoscopeError as exc:
                self.last_error = str(exc)
                log.warning("ingest worker: %s; retrying in %.1fs", exc, backoff_s)
                drained = 0
                backoff_s = min(backoff_s * 2, 30.0)
            if drained:
                if drained < self._claim_rows and self._linger_s > 0:
                    await asyncio.sleep(self._linger_s)
                continue
            await asyncio.to_thread(self.purge_if_due)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff_s)
            except TimeoutError:
                pass
            self._wake.clear()

    def drain_once(self) -> int:
        """Store one claim of outbox rows; returns how many rows were handled."""
        items = self._meta.claim(self._claim_rows)
        if not items:
            return 0
        with self.busy():
            self._store_items(items)
        return len(items)

    def _store_items(self, items: Sequence[OutboxItem]) -> None:
        batches: dict[str, _Batch] = {}
        done: list[int] = []
        pending_calls = 0
        other_kinds: dict[str, list[OutboxItem]] = {}
        for item in items:
            if item.kind in self._kinds:
                other_kinds.setdefault(item.kind, []).append(item)
                continue
            try:
                calls = self._parse(item)
            except InputError as exc:
                # Validated before the 202, so this means the rules changed under a stored row: keep it
                # for inspection rather than dropping it.
                self._meta.mark_failed(item.id, str(exc))
                self.failed_rows += 1
                continue
            batches.setdefault(item.project_id, _Batch()).add(
                (assign_identity(item.project_id, call) for call in calls), _version_of(item)
            )
            done.append(item.id)
            pending_calls += len(calls)
            if pending_calls >= self._batch_calls:
                self._flush(batches, done)
                batches, done, pending_calls = {}, [], 0
        self._flush(batches, done)
        for kind, group in other_kinds.items():
            failed = self._kinds[kind](group)
            for item_id, error in failed.items():
                self._meta.mark_failed(item_id, error)
                self.failed_rows += 1
            self._meta.mark_done(item.id for item in group if item.id not in failed)
        self._forget_handed(items[-1].id)

    def purge_if_due(self, *, now: datetime | None = None) -> int:
        """Delete stored outbox payloads older than the retention, at most once per interval."""
        moment = now or datetime.now(UTC)
        if self._last_purge is not None and (moment - self._last_purge).total_seconds() < self._purge_every_s:
            return 0
        self._last_purge = moment
        cutoff = moment - self._retention
        try:
            return self._meta.purge_done(cutoff)
        except ConvoscopeError as exc:
            self.last_error = str(exc)
            return 0

    def _parse(self, item: OutboxItem) -> list[Call]:
        with self._handed_lock:
            handed = self._handed.pop(item.id, None)
            if handed is not None:
                self._handed_calls -= len(handed)
                return handed
        return parse_calls(item.payload, self._limits)

    def _forget_handed(self, up_to_id: int) -> None:
        """Drop offers for rows already stored from their payload (the offer came after the claim)."""
        with self._handed_lock:
            for stale in [key for key in self._handed if key <= up_to_id]:
                self._handed_calls -= len(self._handed.pop(stale))

    def _flush(self, batches: dict[str, _Batch], done: list[int]) -> None:
        for project_id, batch in batches.items():
            calls = list(batch.calls.values())
            self._store.insert_calls(project_id, calls, version=batch.version)
            self.stored_calls += len(calls)
            if self._after_store is not None:
                # Before the rows are marked done: a crash in between replays them; planning is idempotent.
                self._after_store(project_id, calls)
        if done:
            self._meta.mark_done(done)


def _version_of(item: OutboxItem) -> int:
    """Later payloads win: the receive time in microseconds orders replacements."""
    return int(item.received_at.timestamp() * 1_000_000)
