"""The one object every ingest path hands its data to before storing it.

The server composes a :class:`Redactor` and puts it where data turns into stored rows: the outbox
worker (canonical calls: REST, the CLI's server mode), ``Services.store_calls`` (vendor webhooks and
pulls, assembled traces, simulation runs, re-stored calls), the OTLP span and log storage, the kept
vendor events, and the outbox rows once processed. Each method is a no-op for a project whose
redaction is off, so the cost of a project that masks nothing is one cached lookup per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

from ..ingest.otlp import LogRecord
from ..model import Call, Span
from ..store.blobs import BlobStore
from ..store.metadata import MetadataStore, OutboxItem
from ..store.scrub import empty_done_payloads, failed_payloads, replace_payloads
from .calls import redact_call
from .policy import Policies
from .recordings import RecordingRedactor
from .settings import RedactionSettings
from .traces import redact_record, redact_span
from .values import mask_value

__all__ = ["Redactor"]

log = logging.getLogger("convoscope.redaction")


class Redactor:
    """Masks a project's calls, spans, log records and raw events as its setting says."""

    def __init__(
        self,
        meta: MetadataStore,
        blobs: BlobStore,
        *,
        default: RedactionSettings | None = None,
        ttl_s: float = 2.0,
    ) -> None:
        self._meta = meta
        self.policies = Policies(meta, default=default, ttl_s=ttl_s)
        self._recordings = RecordingRedactor(blobs)

    def settings(self, project_id: str) -> RedactionSettings:
        """The setting in force for the project now."""
        return self.policies.settings(project_id)

    def calls(self, project_id: str, calls: Sequence[Call]) -> list[Call]:
        """The calls as they may be stored: masked, their recordings muted, dropped or kept."""
        settings = self.settings(project_id)
        if not settings.enabled:
            return list(calls)
        masker = self.policies.masker(settings)
        return [self._recordings.apply(redact_call(call, masker), settings) for call in calls]

    def spans(self, project_id: str, spans: list[Span]) -> list[Span]:
        """The spans as they may be stored."""
        settings = self.settings(project_id)
        if not settings.enabled:
            return spans
        masker = self.policies.masker(settings)
        return [redact_span(span, masker) for span in spans]

    def records(self, project_id: str, records: list[LogRecord]) -> list[LogRecord]:
        """The OTLP log records as they may be stored."""
        settings = self.settings(project_id)
        if not settings.enabled:
            return records
        masker = self.policies.masker(settings)
        return [redact_record(record, masker) for record in records]

    def event(self, project_id: str, payload: bytes) -> bytes:
        """A raw vendor event (JSON) as it may be kept: every string masked but ids and links."""
        settings = self.settings(project_id)
        if not settings.enabled:
            return payload
        return self._json(payload, settings) or payload

    def _json(self, payload: bytes, settings: RedactionSettings) -> bytes | None:
        """Masked JSON, or None when ``payload`` is not JSON."""
        try:
            document: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        masked = mask_value(document, self.policies.masker(settings))
        return payload if masked == document else orjson.dumps(masked)

    def scrub_outbox(self, items: Sequence[OutboxItem]) -> None:
        """After a drain: empty the payloads of the processed rows of redacting projects, and mask those
        of their dead letters (a retry must still read them); a payload that is not JSON cannot be
        masked and is emptied, so retrying that dead letter fails again rather than storing it whole."""
        redacting: dict[str, RedactionSettings] = {}
        ids: list[int] = []
        for item in items:
            if item.project_id not in redacting:
                redacting[item.project_id] = self.settings(item.project_id)
            if redacting[item.project_id].enabled:
                ids.append(item.id)
        if not ids:
            return
        empty_done_payloads(self._meta, ids)
        projects = {item.id: item.project_id for item in items}
        masked: dict[int, bytes] = {}
        for row_id, _, payload in failed_payloads(self._meta, ids):
            new = self._json(payload, redacting[projects[row_id]])
            masked[row_id] = b"" if new is None else new
        replace_payloads(self._meta, masked)
        if masked:
            log.info("masked the payloads of %d dead-lettered ingest rows", len(masked))
