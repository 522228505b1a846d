"""Spans and OTLP log records with their personal values masked, before they are stored.

A trace carries what was said as attribute values (prompts, completions, transcripts, tool arguments),
in span events (an exception's message) and in log records (GenAI message events); each is masked the
way free-form JSON is (``values``). Ids, times and names of spans are kept: they name no person, and a
call is assembled from them. Spans are masked before their conversation is keyed, so the key, the stored
spans and every later assembly read the same values.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..ingest.otlp import LogRecord
from ..model import Span
from .locate import Masker
from .values import mask_value

__all__ = ["redact_record", "redact_span"]


def redact_span(span: Span, masker: Masker) -> Span:
    """``span`` with its attributes, resource attributes, events, links, documents and status masked."""
    update: dict[str, Any] = {
        "attributes": mask_value(span.attributes, masker),
        "resource_attributes": mask_value(span.resource_attributes, masker),
        "events": mask_value(span.events, masker),
        "links": mask_value(span.links, masker),
    }
    if span.status_message:
        update["status_message"] = masker.text(span.status_message)
    if span.documents:
        update["documents"] = [
            document.model_copy(
                update={
                    "content": masker.text(document.content),
                    "metadata": mask_value(document.metadata, masker),
                }
            )
            for document in span.documents
        ]
    return span.model_copy(update=update)


def redact_record(record: LogRecord, masker: Masker) -> LogRecord:
    """``record`` with its body and attributes masked."""
    return replace(
        record,
        body=mask_value(record.body, masker, "body"),
        attributes=mask_value(record.attributes, masker),
        resource_attributes=mask_value(record.resource_attributes, masker),
    )
