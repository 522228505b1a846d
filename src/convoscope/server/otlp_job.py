"""OTLP trace ingest in the server: durable acceptance, span storage, and call assembly.

1. ``OtlpIngest.accept`` (the ``POST /v1/traces`` handler) decodes the export, rejects bad spans one by
   one, and commits the raw body to the outbox (kind ``otlp``) before the exporter gets its answer.
2. The outbox worker hands ``otlp`` rows to ``OtlpIngest.store_items``: spans are keyed by conversation
   (``ingest.otlp.resolve_keys``), stored, and an ``otlp.assemble`` job is queued per conversation, due
   ``otlp_settle_s`` after the conversation's root span arrived, else ``otlp_idle_s`` after its last span.
   Every new batch queues the job again, so it runs once the conversation has gone quiet, and late spans
   re-assemble the call.
3. ``AssembleJob`` collects the conversation's spans from every trace they sit in (a span whose ancestors
   arrived later is keyed now), maps them with the framework's mapper, stores the call through
   ``Services.store_calls`` and links the spans to it. A re-assembly keeps the call's first start time,
   so its id never changes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import InputError
from ..ingest.otlp import (
    TRACE_PREFIX,
    PriceTable,
    SpanLimits,
    decode_export,
    mapper_for,
    replaced_span,
    resolve_keys,
    root_keys,
    trace_key,
)
from ..model import Span
from ..store.metadata import Job, JobSpec, OutboxItem

if TYPE_CHECKING:
    from .services import Services

__all__ = [
    "OTLP_ASSEMBLE",
    "OTLP_KIND",
    "Accepted",
    "AssembleJob",
    "OtlpIngest",
    "price_table",
    "span_limits",
]

log = logging.getLogger("convoscope.otlp")

OTLP_KIND = "otlp"
"""Outbox kind of a raw OTLP trace export."""

OTLP_ASSEMBLE = "otlp.assemble"
"""Job kind: assemble one conversation (job key = the conversation key) into a call."""

_HANDED_SPANS = 200_000
"""Decoded spans kept for the worker between acceptance and storage (a shortcut, not state)."""
_REMEMBERED = 100_000
"""Conversations whose activity this process remembers (the oldest are forgotten first)."""


def span_limits(settings: Settings) -> SpanLimits:
    """The span caps configured in the settings."""
    return SpanLimits(
        max_attribute_chars=settings.otlp_max_attribute_chars,
        max_span_chars=settings.otlp_max_span_chars,
        max_attributes=settings.otlp_max_attributes,
    )


def price_table(settings: Settings) -> PriceTable:
    """The configured prices: LLM tokens (``llm_prices``), TTS characters and STT minutes."""
    return PriceTable(
        llm=dict(settings.llm_prices), tts=dict(settings.tts_prices), stt=dict(settings.stt_prices)
    )


@dataclass
class _Activity:
    """What this process knows of one conversation: its last spans, whether its root came, and when the
    assembly job it queued is due. Lost on restart, which only means a job assembles when it comes due
    instead of postponing itself; it lets a batch skip queueing a job that is already pending."""

    last_seen: datetime
    ended: bool = False
    due: datetime | None = None
    spans: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Accepted:
    """What one export request became: its outbox row (None if nothing was valid) and the rejects."""

    ingest_id: int | None
    accepted: int
    rejected: int
    message: str


class OtlpIngest:
    """The OTLP side of the ingest path, shared by the receiver and the outbox worker."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._limits = span_limits(services.settings)
        self._handed: dict[int, list[Span]] = {}
        self._handed_spans = 0
        self._activity: OrderedDict[tuple[str, str], _Activity] = OrderedDict()
        self._lock = threading.Lock()
        self.stored_spans = 0

    def accept(self, project_id: str, body: bytes, media: str) -> Accepted:
        """Decode, validate and commit one export; raises ``PayloadError`` for an unreadable body."""
        batch = decode_export(body, media, self._limits)
        if not batch.spans:
            return Accepted(None, 0, batch.rejected, batch.message)
        meta = self._services.meta
        ingest_id = meta.enqueue(project_id, kind=OTLP_KIND, payload=body, content_type=media)
        with self._lock:
            if self._handed_spans + len(batch.spans) <= _HANDED_SPANS:
                self._handed[ingest_id] = batch.spans
                self._handed_spans += len(batch.spans)
        self._services.worker.notify()
        return Accepted(ingest_id, len(batch.spans), batch.rejected, batch.message)

    def store_items(self, items: Sequence[OutboxItem]) -> dict[int, str]:
        """Store the spans of committed exports and queue their assembly; returns rows that failed."""
        failed: dict[int, str] = {}
        by_project: dict[str, list[Span]] = {}
        for item in items:
            try:
                spans = self._spans_of(item)
            except InputError as exc:
                failed[item.id] = str(exc)
                continue
            by_project.setdefault(item.project_id, []).extend(spans)
        for project_id, spans in by_project.items():
            self._store(project_id, spans)
        self._forget_handed(max(item.id for item in items))
        return failed

    def _forget_handed(self, up_to_id: int) -> None:
        """Drop offers for rows already stored from their payload (the offer came after the claim)."""
        with self._lock:
            for stale in [key for key in self._handed if key <= up_to_id]:
                self._handed_spans -= len(self._handed.pop(stale))

    def _spans_of(self, item: OutboxItem) -> list[Span]:
        with self._lock:
            handed = self._handed.pop(item.id, None)
            if handed is not None:
                self._handed_spans -= len(handed)
                return handed
        return decode_export(item.payload, item.content_type, self._limits).spans

    def _store(self, project_id: str, spans: list[Span]) -> None:
        keys = resolve_keys(spans)
        spans = self._bounded(project_id, spans, keys)
        keyed = [_keyed(span, keys.get((span.trace_id, span.span_id))) for span in spans]
        self._services.store.insert_spans(project_id, keyed)
        self.stored_spans += len(keyed)
        jobs = self._plan(project_id, spans, keys)
        if jobs:
            self._services.meta.enqueue_jobs(project_id, jobs)
            self._services.jobs.notify()

    def _plan(
        self, project_id: str, spans: Sequence[Span], keys: dict[tuple[str, str], str]
    ) -> list[JobSpec]:
        """One assembly job per conversation touched, unless one already pending will see these spans."""
        touched: dict[str, bool] = {key: False for key in keys.values()}
        for key in root_keys(spans, keys):
            touched[key] = True
        for span in spans:
            if (span.trace_id, span.span_id) not in keys:
                # Unkeyed: its ancestors are elsewhere (stored earlier or still to come), or the trace
                # names no conversation at all (a GenAI trace-only call, due when its root arrives).
                key = trace_key(span.trace_id)
                touched[key] = touched.get(key, False) or span.parent_span_id is None
        settings = self._services.settings
        now = datetime.now(UTC)
        jobs: list[JobSpec] = []
        with self._lock:
            for key, ended in sorted(touched.items()):
                state = self._activity.pop((project_id, key), None) or _Activity(last_seen=now)
                self._activity[(project_id, key)] = state
                state.last_seen = now
                state.ended = state.ended or ended
                wanted = now + timedelta(
                    seconds=settings.otlp_settle_s if state.ended else settings.otlp_idle_s
                )
                if state.due is not None and now < state.due <= wanted:
                    continue  # not claimed yet (it is not due), so it will read these spans
                state.due = wanted
                jobs.append(JobSpec(kind=OTLP_ASSEMBLE, call_id=key, run_after=wanted))
            while len(self._activity) > _REMEMBERED:
                self._activity.popitem(last=False)
        return jobs

    def _bounded(self, project_id: str, spans: list[Span], keys: dict[tuple[str, str], str]) -> list[Span]:
        """The spans within ``max_spans_per_call`` of their conversation (roots are always kept).

        Counted by this process since it started, so a runaway conversation cannot fill the store; the
        call says how many were left out (``metadata.spans_left_out``).
        """
        limit = self._services.settings.max_spans_per_call
        now = datetime.now(UTC)
        kept: list[Span] = []
        with self._lock:
            for span in spans:
                key = keys.get((span.trace_id, span.span_id))
                if key is None:
                    kept.append(span)
                    continue
                state = self._activity.get((project_id, key))
                if state is None:
                    state = self._activity[(project_id, key)] = _Activity(last_seen=now)
                if state.spans >= limit and not mapper_for(key).is_root(span):
                    state.dropped += 1
                    continue
                state.spans += 1
                kept.append(span)
        return kept

    def dropped(self, project_id: str, key: str) -> int:
        """Spans of a conversation not stored because it was over its bound."""
        with self._lock:
            state = self._activity.get((project_id, key))
            return state.dropped if state is not None else 0

    def postpone(self, project_id: str, key: str) -> datetime | None:
        """When an open conversation had spans within the idle time: the new due time of its job."""
        idle = timedelta(seconds=self._services.settings.otlp_idle_s)
        now = datetime.now(UTC)
        with self._lock:
            state = self._activity.get((project_id, key))
            if state is None or state.ended or now - state.last_seen >= idle:
                return None
            state.due = state.last_seen + idle
            return state.due


def _keyed(span: Span, key: str | None) -> Span:
    if key is None or span.conversation_id == key:
        return span
    return replaced_span(span, conversation_id=key)


class AssembleJob:
    """The ``otlp.assemble`` handler: one conversation's spans → one stored call, spans linked to it."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._prices = price_table(services.settings)

    @classmethod
    def of(cls, services: Services) -> AssembleJob:
        return cls(services)

    def __call__(self, job: Job) -> None:
        if job.call_id.startswith(TRACE_PREFIX):
            if not self._waits(job.project_id, job.call_id):
                self._trace(job.project_id, job.call_id.removeprefix(TRACE_PREFIX))
        elif not self._waits(job.project_id, job.call_id):
            self.assemble(job.project_id, job.call_id)

    def _waits(self, project_id: str, key: str) -> bool:
        """Re-queue the job of an open conversation that had spans within the idle time."""
        later = self._services.otlp.postpone(project_id, key)
        if later is None:
            return False
        self._services.meta.enqueue_jobs(project_id, [JobSpec(OTLP_ASSEMBLE, key, run_after=later)])
        return True

    def _trace(self, project_id: str, trace_id: str) -> None:
        """Key what can now be keyed in a trace; a trace that names no conversation is a call itself."""
        store = self._services.store
        spans = store.list_spans(project_id, trace_id=trace_id)
        keys = resolve_keys(spans)
        if not keys:
            self.assemble(project_id, trace_key(trace_id), spans=spans)
            return
        for key in sorted(set(keys.values())):
            if not self._waits(project_id, key):
                self.assemble(project_id, key)

    def members(self, project_id: str, key: str) -> list[Span]:
        """Every span of the conversation, from each trace it touches (late orphans keyed now)."""
        store = self._services.store
        traces = sorted({s.trace_id for s in store.list_spans(project_id, conversation_id=key)})
        found: list[Span] = []
        for trace_id in traces:
            spans = store.list_spans(project_id, trace_id=trace_id)
            keys = resolve_keys(spans)
            found.extend(s for s in spans if keys.get((s.trace_id, s.span_id)) == key)
        return found

    def assemble(self, project_id: str, key: str, *, spans: list[Span] | None = None) -> str | None:
        """Store the call of one conversation; returns its id (None when the spans make no call)."""
        members = sorted(spans if spans is not None else self.members(project_id, key), key=lambda s: s.start)
        if not members:
            return None
        limit = self._services.settings.max_spans_per_call
        left_out = max(0, len(members) - limit) + self._services.otlp.dropped(project_id, key)
        members = members[:limit]
        mapper = mapper_for(key)
        call = mapper.assemble(
            key, members, started_at=self._first_start(project_id, members), prices=self._prices
        )
        if call is None:
            return None
        if left_out:
            call = call.model_copy(update={"metadata": {**call.metadata, "spans_left_out": left_out}})
        call_id = self._services.store_calls(project_id, [call])[0]
        linked = [
            s.model_copy(update={"call_id": call_id, "conversation_id": key})
            for s in members
            if s.call_id != call_id or s.conversation_id != key
        ]
        if linked:
            self._services.store.insert_spans(project_id, linked)
        log.info("assembled %s from %d spans into call %s", key, len(members), call_id)
        return call_id

    def _first_start(self, project_id: str, spans: Sequence[Span]) -> datetime | None:
        """The start of the call this conversation already became, so its id stays the same."""
        for call_id in sorted({s.call_id for s in spans if s.call_id}):
            stored = self._services.store.get_call(project_id, call_id)
            if stored is not None:
                return stored.call.started_at
        return None
