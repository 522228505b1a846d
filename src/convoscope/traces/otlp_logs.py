"""OTLP log ingest in the server: durable acceptance, record storage, and re-assembly of their calls.

Why: GenAI instrumentations may send a chat's messages as log records rather than on its spans; the
records are kept beside the spans (``span_logs``) and folded into them whenever a call is assembled
(``AssembleJob``), so they end in the call whichever of the two arrives first.

1. ``OtlpLogIngest.accept`` (the ``POST /v1/logs`` handler) decodes the export, rejects bad records one by
   one, and commits the raw body to the outbox (kind ``otlp_logs``) before the exporter gets its answer.
2. The outbox worker hands those rows to ``OtlpLogIngest.store_items``: the records are decoded again
   from the committed body and stored; for the GenAI records among them, the conversations their traces'
   stored spans belong to are assembled again (a trace whose spans name none is a trace-only call). A
   trace none of whose spans is stored yet queues nothing: its spans' arrival queues the assembly, which
   reads the records then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ..errors import InputError, StoreError
from ..ingest.otlp import FOLDED_EVENTS, LogRecord, decode_logs, trace_key
from ..runtime.context import JobContext
from ..runtime.kinds import OTLP_LOGS_KIND
from ..store.log_queries import LogQueriesMixin
from ..store.metadata import OutboxItem
from .otlp import Accepted, OtlpIngest, span_limits

__all__ = ["OTLP_LOGS_KIND", "OtlpLogIngest"]

log = logging.getLogger("convoscope.otlp")


class OtlpLogIngest:
    """The OTLP log side of the ingest path, shared by the receiver and the outbox worker."""

    def __init__(
        self,
        context: JobContext,
        otlp: OtlpIngest,
        *,
        redact: Callable[[str, list[LogRecord]], list[LogRecord]] | None = None,
    ) -> None:
        """``redact(project_id, records)`` gives the records as they may be stored."""
        self._context = context
        self._redact = redact
        self._otlp = otlp
        self._limits = span_limits(context.settings)
        self.stored_records = 0

    def accept(self, project_id: str, body: bytes, media: str) -> Accepted:
        """Decode, validate and commit one export; raises ``PayloadError`` for an unreadable body."""
        received = datetime.now(UTC)
        batch = decode_logs(body, media, self._limits, received=received)
        if not batch.records:
            return Accepted(None, 0, batch.rejected, batch.message)
        ingest_id = self._context.meta.enqueue(
            project_id, kind=OTLP_LOGS_KIND, payload=body, content_type=media, received_at=received
        )
        self._context.wake_ingest()
        return Accepted(ingest_id, len(batch.records), batch.rejected, batch.message)

    def store_items(self, items: Sequence[OutboxItem]) -> dict[int, str]:
        """Store the records of committed exports and queue the assembly they change; returns rows that
        failed."""
        failed: dict[int, str] = {}
        by_project: dict[str, list[LogRecord]] = {}
        for item in items:
            try:
                decoded = decode_logs(
                    item.payload, item.content_type, self._limits, received=item.received_at
                )
            except InputError as exc:
                failed[item.id] = str(exc)
                continue
            by_project.setdefault(item.project_id, []).extend(decoded.records)
        for project_id, records in by_project.items():
            self._store(project_id, records)
        return failed

    def _store(self, project_id: str, records: list[LogRecord]) -> None:
        store = self._context.store
        if not isinstance(store, LogQueriesMixin):
            raise StoreError(f"the call store ({type(store).__name__}) cannot hold log records")
        if self._redact is not None:
            records = self._redact(project_id, records)
        store.insert_span_logs(project_id, records)
        self.stored_records += len(records)
        traces = {r.trace_id for r in records if r.span_id and r.event_name in FOLDED_EVENTS}
        if not traces:
            return
        keys = {
            key
            for trace_id, found in store.conversations_of_traces(project_id, traces).items()
            for key in (found or {trace_key(trace_id)})
        }
        log.debug("stored %d log records; re-assembling %d conversations", len(records), len(keys))
        self._otlp.touch(project_id, keys)
