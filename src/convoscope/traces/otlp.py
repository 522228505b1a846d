"""OTLP trace ingest in the server: durable acceptance, span storage, and call assembly.

1. ``OtlpIngest.accept`` (the ``POST /v1/traces`` handler) decodes the export, rejects bad spans one by
   one, and commits the raw body to the outbox (kind ``otlp``) before the exporter gets its answer.
2. The outbox worker hands ``otlp`` rows to ``OtlpIngest.store_items``: spans are keyed by conversation
   (``ingest.otlp.resolve_keys``), stored, and an ``otlp.assemble`` job is queued per conversation, due
   ``otlp_settle_s`` after the conversation's root span arrived, else ``otlp_idle_s`` after its last span.
   Every new batch queues the job again, so it runs once the conversation has gone quiet, and late spans
   re-assemble the call.
3. ``AssembleJob``, a batch handler, collects each conversation's spans from every trace they sit in (a
   span whose ancestors arrived later is keyed now) for many conversations with one read, maps them with
   the framework's mapper, stores the calls with one ``store_calls`` and links the spans to them. The
   GenAI log records of those traces (``traces.otlp_logs``) are read with one more query and folded into
   their spans for the mapping only (``ingest.otlp.log_fold``).
   A re-assembly keeps the call's first start time, so its id never changes. The outcome is also recorded
   under the produced call, whose detail lists its jobs by call id.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..config import Settings
from ..errors import ConvoscopeError, InputError, StoreError
from ..ingest.otlp import (
    FOLDED_EVENTS,
    TRACE_PREFIX,
    PriceTable,
    SpanLimits,
    decode_export,
    fold_logs,
    mapper_for,
    replaced_span,
    resolve_keys,
    root_keys,
    trace_key,
)
from ..ingest.otlp.genai import GenAIMapper
from ..model import Call, Span
from ..runtime.context import JobContext
from ..runtime.jobs import Batched, JobRetry, job_error, per_project
from ..runtime.kinds import OTLP_ASSEMBLE, OTLP_KIND
from ..store.log_queries import LogQueriesMixin, StoredLog
from ..store.metadata import Job, JobSpec, OutboxItem

__all__ = [
    "ASSEMBLE_BATCH",
    "OTLP_ASSEMBLE",
    "OTLP_KIND",
    "STORE_RETRY_S",
    "Accepted",
    "AssembleJob",
    "OtlpIngest",
    "price_table",
    "span_limits",
]

log = logging.getLogger("convoscope.otlp")

ASSEMBLE_BATCH = 64
"""Conversations one ``otlp.assemble`` batch reads, maps and stores together."""
STORE_RETRY_S = 30.0
"""When a batch whose store read or write failed is tried again."""
_HANDED_SPANS = 200_000
"""Decoded spans kept for the worker between acceptance and storage (a shortcut, not state)."""
CHAT_PREFIX = f"{GenAIMapper.prefix}:"
"""Keys of chat conversations (LLM apps), which go quiet between requests only briefly."""
_REMEMBERED = 100_000
"""Conversations whose activity this process remembers (the oldest are forgotten first)."""


def span_limits(settings: Settings) -> SpanLimits:
    """The span caps configured in the settings."""
    return SpanLimits(
        max_attribute_chars=settings.otlp_max_attribute_chars,
        max_span_chars=settings.otlp_max_span_chars,
        max_attributes=settings.otlp_max_attributes,
        max_document_chars=settings.otlp_max_document_chars,
        max_documents=settings.otlp_max_documents,
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

    def __init__(
        self, context: JobContext, *, redact: Callable[[str, list[Span]], list[Span]] | None = None
    ) -> None:
        """``redact(project_id, spans)`` gives the spans as they may be stored (redaction before storage)."""
        self._context = context
        self._redact = redact
        self._limits = span_limits(context.settings)
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
        meta = self._context.meta
        ingest_id = meta.enqueue(project_id, kind=OTLP_KIND, payload=body, content_type=media)
        with self._lock:
            if self._handed_spans + len(batch.spans) <= _HANDED_SPANS:
                self._handed[ingest_id] = batch.spans
                self._handed_spans += len(batch.spans)
        self._context.wake_ingest()
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
        if self._redact is not None:  # before keying: the keys come from what is stored
            spans = self._redact(project_id, spans)
        keys = resolve_keys(spans)
        spans = self._bounded(project_id, spans, keys)
        conversation_ids = [keys.get((span.trace_id, span.span_id)) for span in spans]
        self._context.store.insert_spans(project_id, spans, conversation_ids=conversation_ids)
        self.stored_spans += len(spans)
        jobs = self._plan(project_id, spans, keys)
        self._context.enqueue_jobs(project_id, jobs)

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
        return self._due(project_id, touched)

    def touch(self, project_id: str, keys: Iterable[str]) -> None:
        """Queue the assembly of conversations whose log records just arrived, as their spans would."""
        self._context.enqueue_jobs(project_id, self._due(project_id, dict.fromkeys(keys, False)))

    def _due(self, project_id: str, touched: dict[str, bool]) -> list[JobSpec]:
        """Mark conversations active now (``touched``: key → whether its root came) and return the
        assembly jobs to queue for them."""
        settings = self._context.settings
        now = datetime.now(UTC)
        jobs: list[JobSpec] = []
        with self._lock:
            for key, ended in sorted(touched.items()):
                state = self._activity.pop((project_id, key), None) or _Activity(last_seen=now)
                self._activity[(project_id, key)] = state
                state.last_seen = now
                state.ended = state.ended or ended
                wanted = now + timedelta(seconds=settings.otlp_settle_s if state.ended else self._idle_s(key))
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
        limit = self._context.settings.max_spans_per_call
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

    def _idle_s(self, key: str) -> float:
        """How long a conversation whose root has not come may stay quiet before it is assembled: a
        chat's (``genai:`` keys) shortly, since its requests come seconds apart and its root may never
        be exported (an app span outside the instrumentation); a voice session's after minutes."""
        settings = self._context.settings
        return settings.otlp_chat_idle_s if key.startswith(CHAT_PREFIX) else settings.otlp_idle_s

    def postpone(self, project_id: str, key: str) -> datetime | None:
        """When an open conversation had spans within the idle time: the new due time of its job."""
        idle = timedelta(seconds=self._idle_s(key))
        now = datetime.now(UTC)
        with self._lock:
            state = self._activity.get((project_id, key))
            if state is None or state.ended or now - state.last_seen >= idle:
                return None
            state.due = state.last_seen + idle
            return state.due


class AssembleJob:
    """The ``otlp.assemble`` handler: conversations' spans → stored calls, spans linked to them.

    Batched: the spans of every conversation in a batch are read with one query, their calls stored with
    one ``store_calls`` and their spans linked with one insert, so a batch of N conversations costs a few
    statements rather than a few per conversation. The outcome also shows under the produced call's
    jobs (the job itself is keyed by the conversation, which the call detail does not know).
    """

    def __init__(self, context: JobContext, otlp: OtlpIngest) -> None:
        self._context = context
        self._otlp = otlp
        self._prices = price_table(context.settings)

    def batched(self, size: int = ASSEMBLE_BATCH) -> Batched:
        """This handler for the job runner, ``size`` conversations at a time."""
        return Batched(self.run_batch, size=size)

    def run_batch(self, jobs: Sequence[Job]) -> dict[int, ConvoscopeError]:
        """Assemble the conversations of ``jobs``; returns the jobs whose conversation failed to map."""
        return per_project(jobs, self._assemble_project, _retry_store_failure)

    def _assemble_project(self, project_id: str, jobs: Sequence[Job]) -> dict[int, ConvoscopeError]:
        waiting = self._postpone(project_id, {job.call_id for job in jobs})
        ready = [job for job in jobs if job.call_id not in waiting]
        traced = {job.call_id for job in ready if job.call_id.startswith(TRACE_PREFIX)}
        keys = {job.call_id for job in ready} - traced
        traces = {key.removeprefix(TRACE_PREFIX) for key in traced}
        conversations = self._conversations(project_id, keys, traces)
        starts = self._first_starts(project_id, conversations.values())
        logs = self._logs(project_id, conversations.values())
        errors: dict[int, ConvoscopeError] = {}
        outcomes: dict[str, str | None] = {}
        assembled: list[tuple[str, Call, list[Span]]] = []
        for key, spans in sorted(conversations.items()):
            try:
                call, members = self._call(project_id, key, spans, starts, logs)
            except Exception as exc:  # one conversation that cannot be mapped must not fail the others
                failed = _jobs_of(key, spans, ready)
                error = job_error(exc, failed)
                errors.update({job.id: error for job in failed})
                outcomes.update({call_id: str(error) for call_id in _call_ids(spans)})
                continue
            if call is not None:
                assembled.append((key, call, members))
        self._store(project_id, assembled, outcomes)
        return errors

    def _postpone(self, project_id: str, keys: set[str]) -> set[str]:
        """Re-queue the jobs of open conversations that had spans within the idle time; returns their keys."""
        later: list[JobSpec] = []
        for key in sorted(keys):
            due = self._otlp.postpone(project_id, key)
            if due is not None:
                later.append(JobSpec(OTLP_ASSEMBLE, key, run_after=due))
        if later:
            self._context.meta.enqueue_jobs(project_id, later)
        return {job.call_id for job in later}

    def _conversations(self, project_id: str, keys: set[str], traces: set[str]) -> dict[str, list[Span]]:
        """Every span of each conversation, from each trace it touches (late orphans keyed now).

        A trace job keys what can now be keyed in its trace: the conversations it names are assembled
        too (their other traces read with a second query), and a trace that names none is a call itself.
        """
        store = self._context.store
        spans = store.spans_of_conversations(project_id, keys, traces)
        resolved = resolve_keys(spans)
        found = {key for (trace_id, _), key in resolved.items() if trace_id in traces} - keys
        found -= self._postpone(project_id, found)
        if found:
            seen = {(s.trace_id, s.span_id) for s in spans}
            more = store.spans_of_conversations(project_id, found)
            spans.extend(s for s in more if (s.trace_id, s.span_id) not in seen)
            resolved = resolve_keys(spans)
        wanted = keys | found
        grouped: dict[str, list[Span]] = {}
        for span in spans:
            key = resolved.get((span.trace_id, span.span_id))
            if key in wanted:
                grouped.setdefault(key, []).append(span)
        keyed_traces = {trace_id for trace_id, _ in resolved}
        for span in spans:
            if span.trace_id in traces and span.trace_id not in keyed_traces:
                grouped.setdefault(trace_key(span.trace_id), []).append(span)
        return grouped

    def _first_starts(self, project_id: str, conversations: Iterable[list[Span]]) -> dict[str, datetime]:
        """The start of every call these conversations already became (one read), so their ids stay."""
        call_ids = {call_id for spans in conversations for call_id in _call_ids(spans)}
        stored = self._context.store.get_calls(project_id, call_ids) if call_ids else {}
        return {call_id: found.call.started_at for call_id, found in stored.items()}

    def _logs(self, project_id: str, conversations: Iterable[list[Span]]) -> dict[str, list[StoredLog]]:
        """The GenAI log records of every trace these conversations touch (one read), by trace."""
        store = self._context.store
        if not isinstance(store, LogQueriesMixin):
            return {}
        traces = {span.trace_id for spans in conversations for span in spans}
        by_trace: dict[str, list[StoredLog]] = {}
        for record in store.span_logs_of_traces(project_id, traces, event_names=FOLDED_EVENTS):
            by_trace.setdefault(record.trace_id, []).append(record)
        return by_trace

    def _call(
        self,
        project_id: str,
        key: str,
        spans: list[Span],
        starts: dict[str, datetime],
        logs: dict[str, list[StoredLog]],
    ) -> tuple[Call | None, list[Span]]:
        """The call of one conversation (None when its spans make none) and the spans it was made of.

        The spans are mapped with their log records folded in (``ingest.otlp.log_fold``); the spans
        linked to the call are the stored ones, so the records are never written onto them."""
        members = sorted(spans, key=lambda s: s.start)
        limit = self._context.settings.max_spans_per_call
        left_out = max(0, len(members) - limit) + self._otlp.dropped(project_id, key)
        members = members[:limit]
        started = next((starts[c] for c in sorted(_call_ids(members)) if c in starts), None)
        records = [
            record for trace_id in sorted({s.trace_id for s in members}) for record in logs.get(trace_id, ())
        ]
        mapped = fold_logs(members, records) if records else members
        call = mapper_for(key).assemble(key, mapped, started_at=started, prices=self._prices)
        if call is not None and left_out:
            call = call.model_copy(update={"metadata": {**call.metadata, "spans_left_out": left_out}})
        return call, members

    def _store(
        self, project_id: str, assembled: list[tuple[str, Call, list[Span]]], outcomes: dict[str, str | None]
    ) -> None:
        """Store the calls with one ``store_calls``, link their spans with one insert, record outcomes."""
        if assembled:
            call_ids = self._context.store_calls(project_id, [call for _, call, _ in assembled])
            linked: list[Span] = []
            for (key, _, members), call_id in zip(assembled, call_ids, strict=True):
                outcomes[call_id] = None
                linked.extend(
                    replaced_span(s, call_id=call_id, conversation_id=key)
                    for s in members
                    if s.call_id != call_id or s.conversation_id != key
                )
            if linked:
                self._context.store.insert_spans(project_id, linked)
            log.info("assembled %d conversations from %d spans", len(assembled), len(linked))
        self._context.meta.record_outcomes(project_id, OTLP_ASSEMBLE, outcomes)


def _call_ids(spans: Iterable[Span]) -> set[str]:
    return {s.call_id for s in spans if s.call_id}


def _jobs_of(key: str, spans: Sequence[Span], jobs: Sequence[Job]) -> list[Job]:
    """The jobs that asked for a conversation: its own, and those of the traces it was found in."""
    asked = {key} | {trace_key(s.trace_id) for s in spans}
    return [job for job in jobs if job.call_id in asked]


def _retry_store_failure(exc: ConvoscopeError) -> ConvoscopeError:
    """A batch shares its reads and writes, so a store failure is every job's; assembling again is
    harmless (same call ids), so it is retried rather than failed for good."""
    if isinstance(exc, StoreError):
        return JobRetry(f"the store failed while assembling: {exc}", after_s=STORE_RETRY_S)
    return exc
