"""Drains the ingest outbox into ClickHouse in batches.

A request is acknowledged once its raw body is committed to the outbox; this worker turns those rows into
stored calls. Rows are marked done only after the insert returned, so a crash replays them, and because a
call's id and replacement key are deterministic, a replay cannot duplicate anything.

No row can hold back the rows behind it. When a batch fails and both stores still answer, the batch is
split in halves until the rows that fail alone are found; the others are stored. A row that fails alone
waits out a growing delay (the claim skips it meanwhile) and after ``max_attempts`` goes to the dead
letters (status ``failed`` with its reason), where the API and ``convoscope ingest failed`` list it and
``retry`` puts it back. When a store does not answer, nothing is charged to the rows: the whole drain
backs off and tries again.
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
from functools import partial
from typing import TypeVar

from ..errors import CallRefused, ConvoscopeError, InputError, StoreError
from ..ingest.canonical import CallLimits, parse_calls
from ..model import Call
from ..model.ids import stored_call_id
from ..store.base import CallStore
from ..store.metadata import MetadataStore, OutboxItem

__all__ = ["IngestHealth", "IngestWorker", "RetryPolicy", "StoresUnavailable", "assign_identity"]

log = logging.getLogger("convoscope.worker")


def assign_identity(project_id: str, call: Call) -> Call:
    """The call as stored: in its project, with its deterministic id (or the id of its identity it has)."""
    call_id = stored_call_id(project_id, call.source, call.external_id, call.started_at, call.id)
    return call.model_copy(update={"id": call_id, "project_id": project_id})


class StoresUnavailable(StoreError):
    """A write failed and a store does not answer a probe either: the failure is not the rows' fault."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How rows that fail to store on their own are retried before they go to the dead letters.

    A row that failed alone waits ``first_delay_s``, then four times longer after each further failure,
    and is dead-lettered on its ``max_attempts``-th failure. A failure with no retry possible (a payload
    that no longer validates) is dead-lettered at once.
    """

    max_attempts: int = 5
    first_delay_s: float = 2.0

    def delay_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure (1-based)."""
        return float(self.first_delay_s * 4 ** max(attempts - 1, 0))


@dataclass(frozen=True, slots=True)
class IngestHealth:
    """When ingest counts as unhealthy, for ``/healthz``.

    ``stall_s``: due rows are pending and no row was stored or dead-lettered for this long.
    ``dead_letter_window_s`` and ``max_dead_letters``: more rows than that were dead-lettered within the
    window (0: any dead letter in the window).
    """

    stall_s: float = 120.0
    dead_letter_window_s: float = 600.0
    max_dead_letters: int = 0


class _RefusedCalls(Exception):
    """Calls of one row that the store refused alone; the row's other calls were stored."""

    def __init__(self, refused: list[tuple[Call, Exception]], total: int) -> None:
        first_call, first_error = refused[0]
        names = ", ".join(call.external_id for call, _ in refused[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        kept = f"; its other {total - len(refused)} calls were stored" if total > len(refused) else ""
        super().__init__(f"call {names}{more} refused by the store ({_describe(first_error)}){kept}")


class _UnitRefused(Exception):
    """A write the store refused, naming which of the written units it refused (positions in the write)
    and whether it wrote the others."""

    def __init__(self, indexes: list[int], cause: CallRefused) -> None:
        super().__init__(str(cause))
        self.indexes = indexes
        self.cause = cause


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ConvoscopeError) else f"{type(exc).__name__}: {exc}"


U = TypeVar("U")


@dataclass(slots=True)
class _Entry:
    """One claimed row and, for canonical calls, the calls it holds (identity assigned)."""

    item: OutboxItem
    calls: list[Call] = field(default_factory=list)


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
        retry: RetryPolicy | None = None,
        health: IngestHealth | None = None,
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
        self._retry = retry or RetryPolicy()
        self.health_policy = health or IngestHealth()
        self._after_store: Callable[[str, Sequence[Call]], None] | None = None
        self._before_store: Callable[[str, Sequence[Call]], list[Call]] | None = None
        self._after_drain: Callable[[Sequence[OutboxItem]], None] | None = None
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
        self.retried_rows = 0
        self.last_error: str | None = None
        self.last_progress = time.monotonic()
        """When a row was last stored or dead-lettered (``time.monotonic()``); start-up counts as one."""
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

    def set_before_store(self, prepare: Callable[[str, Sequence[Call]], list[Call]]) -> None:
        """Store ``prepare(project_id, calls)`` in place of each row's calls (redaction before storage).

        A row whose calls ``prepare`` cannot take is charged like a row the store refused: nothing of it
        is stored in a form ``prepare`` did not produce.
        """
        self._before_store = prepare

    def set_after_drain(self, after_drain: Callable[[Sequence[OutboxItem]], None]) -> None:
        """Call ``after_drain(rows)`` with every claimed row once the drain has settled them (each done,
        dead-lettered or released), to act on their kept payloads."""
        self._after_drain = after_drain

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
            except Exception as exc:  # the worker must outlive any failure, or ingest stops for good
                self.last_error = str(exc)
                if isinstance(exc, ConvoscopeError):
                    log.warning("ingest worker: %s; retrying in %.1fs", exc, backoff_s)
                else:
                    log.exception("ingest worker failed; retrying in %.1fs", backoff_s)
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
            if self._after_drain is not None:
                self._after_drain(items)
        return len(items)

    def _store_items(self, items: Sequence[OutboxItem]) -> None:
        by_project: dict[str, list[_Entry]] = {}
        other_kinds: dict[str, list[_Entry]] = {}
        for item in items:
            if item.kind in self._kinds:
                other_kinds.setdefault(item.kind, []).append(_Entry(item))
                continue
            try:
                calls = self._parse(item)
            except InputError as exc:
                # Validated before the 202, so the rules changed under a stored row: no retry can help.
                self._dead_letter(item, f"the payload no longer validates: {exc}")
                continue
            identified = [assign_identity(item.project_id, call) for call in calls]
            if self._before_store is not None:
                try:
                    identified = self._before_store(item.project_id, identified)
                except Exception as exc:  # charged to its row: the other rows are stored
                    self._charge(item, exc)
                    continue
            by_project.setdefault(item.project_id, []).append(_Entry(item, identified))
        for project_id, entries in by_project.items():
            for chunk in _chunks(entries, self._batch_calls):
                self._store_chunk(project_id, chunk)
        for kind, group in other_kinds.items():
            self._isolated(
                group, partial(self._write_kind, kind), lambda entry, exc: self._charge(entry.item, exc)
            )
        self._forget_handed(items[-1].id)

    def _store_chunk(self, project_id: str, chunk: Sequence[_Entry]) -> None:
        """Store the calls of ``chunk``: call by call isolation, so one bad call never costs its row's others.

        A row whose calls were all written is marked done; a row with a call that failed alone is charged
        (retried later or dead-lettered) with the failing calls named, its other calls already stored (a
        retry writes them again, which replacement makes harmless).
        """
        units = [(entry, call) for entry in chunk for call in entry.calls]
        refused: dict[int, list[tuple[Call, Exception]]] = {}

        def refuse(unit: tuple[_Entry, Call], exc: Exception) -> None:
            refused.setdefault(unit[0].item.id, []).append((unit[1], exc))

        written: list[Call] = []
        self._isolated(units, partial(self._insert_calls, project_id, written), refuse)
        if written:
            calls = list({(c.source, c.external_id): c for c in written}.values())
            if self._after_store is not None:
                # Before the rows are marked done: a crash in between replays them; planning is idempotent.
                self._after_store(project_id, calls)
            self.stored_calls += len(calls)
        for entry in chunk:
            if entry.item.id in refused:
                self._charge(entry.item, _RefusedCalls(refused[entry.item.id], len(entry.calls)))
        self._meta.mark_done(entry.item.id for entry in chunk if entry.item.id not in refused)
        self.last_progress = time.monotonic()

    def _isolated(
        self,
        units: Sequence[U],
        write: Callable[[Sequence[U]], None],
        fail_alone: Callable[[U, Exception], None],
        failed: Exception | None = None,
    ) -> None:
        """Write ``units``; on failure, split them until the units that fail on their own are found.

        When the engine names the rows it refused (``CallRefused``), those units are set aside and the
        others written at once (or already written by the store): at most one more write. Otherwise
        good units are written on the way down; when a half succeeds, the other half of a failed set
        must hold a failing unit, so it is split at once without a write that is known to fail: one
        failing unit among n costs about log2(n) writes. Nothing is charged unless both stores answer;
        otherwise ``StoresUnavailable`` ends the drain.
        """
        if not units:
            return
        if failed is None or len(units) == 1:
            try:
                write(units)
                return
            except Exception as exc:
                self._check_stores(exc)
                failed = exc
        if len(units) == 1:
            fail_alone(units[0], failed.cause if isinstance(failed, _UnitRefused) else failed)
            return
        if isinstance(failed, _UnitRefused) and all(0 <= i < len(units) for i in failed.indexes):
            # The engine named the units it refused: set them aside on its word (a retry tests them
            # again) and write the others, unless the store already did: no search.
            named = set(failed.indexes)
            for index in sorted(named):
                fail_alone(units[index], failed.cause)
            if not failed.cause.others_written:
                self._isolated([u for i, u in enumerate(units) if i not in named], write, fail_alone)
            return
        log.warning("ingest write of %d failed (%s); isolating what fails", len(units), failed)
        middle = len(units) // 2
        first, second = units[:middle], units[middle:]
        try:
            write(first)
        except Exception as exc:
            self._isolated(first, write, fail_alone, exc)
            self._isolated(second, write, fail_alone)
            return
        self._isolated(second, write, fail_alone, failed)

    def _insert_calls(
        self, project_id: str, written: list[Call], units: Sequence[tuple[_Entry, Call]]
    ) -> None:
        """Insert the calls of ``units`` (the newest row's receive time is the batch's version).

        A ``CallRefused`` from the store becomes ``_UnitRefused`` naming the unit, so the search for the
        failing call can start where the engine pointed.
        """
        batch = _Batch()
        owner: dict[tuple[str, str], int] = {}
        for index, (entry, call) in enumerate(units):
            batch.add((call,), _version_of(entry.item))
            owner[(call.source, call.external_id)] = index
        try:
            self._store.insert_calls(project_id, list(batch.calls.values()), version=batch.version)
        except CallRefused as exc:
            kept = list(owner.values())
            refused = [kept[index] for index in exc.indexes]
            if exc.others_written:
                refused_keys = {(units[i][1].source, units[i][1].external_id) for i in refused}
                written.extend(
                    call for _, call in units if (call.source, call.external_id) not in refused_keys
                )
            raise _UnitRefused(refused, exc) from exc
        written.extend(call for _, call in units)

    def _write_kind(self, kind: str, entries: Sequence[_Entry]) -> None:
        failed = self._kinds[kind]([entry.item for entry in entries])
        for entry in entries:
            if entry.item.id in failed:
                self._dead_letter(entry.item, failed[entry.item.id])
        self._meta.mark_done(entry.item.id for entry in entries if entry.item.id not in failed)
        self.last_progress = time.monotonic()

    def _check_stores(self, cause: Exception) -> None:
        """Raise ``StoresUnavailable`` when a store does not answer a probe after ``cause``."""
        for name, probe in (("ClickHouse", self._store.reachable), ("metadata", self._meta.reachable)):
            try:
                probe()
            except ConvoscopeError as exc:
                raise StoresUnavailable(f"{name} store does not answer ({exc}) after: {cause}") from cause

    def _charge(self, item: OutboxItem, exc: Exception) -> None:
        """Count a failure against a row that fails on its own: retry it later, or dead-letter it."""
        reason = str(exc) if isinstance(exc, ConvoscopeError | _RefusedCalls) else _describe(exc)
        attempts = item.attempts + 1
        if attempts >= self._retry.max_attempts:
            self._dead_letter(item, f"{reason} (failed {attempts} times)")
            return
        delay_s = self._retry.delay_s(attempts)
        self._meta.release(item.id, reason, run_after=datetime.now(UTC) + timedelta(seconds=delay_s))
        self.retried_rows += 1
        log.warning(
            "ingest %d failed (attempt %d), retrying in %.0f s: %s", item.id, attempts, delay_s, reason
        )

    def _dead_letter(self, item: OutboxItem, reason: str) -> None:
        self._meta.mark_failed(item.id, reason)
        self.failed_rows += 1
        self.last_progress = time.monotonic()
        log.error("ingest %d of project %s dead-lettered: %s", item.id, item.project_id, reason)

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


def _chunks(entries: Sequence[_Entry], calls_per_chunk: int) -> Iterator[list[_Entry]]:
    """Consecutive runs of entries holding about ``calls_per_chunk`` calls (one insert each)."""
    chunk: list[_Entry] = []
    calls = 0
    for entry in entries:
        chunk.append(entry)
        calls += len(entry.calls)
        if calls >= calls_per_chunk:
            yield chunk
            chunk, calls = [], 0
    if chunk:
        yield chunk


def _version_of(item: OutboxItem) -> int:
    """Later payloads win: the receive time in microseconds orders replacements."""
    return int(item.received_at.timestamp() * 1_000_000)
