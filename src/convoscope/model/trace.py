"""OpenTelemetry-shaped spans, linked to a call when the call is known."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from .document import Document
from .enums import SpanKind

__all__ = ["Span"]


class Span(BaseModel):
    """One span as exported by a tracing framework; raw attributes are kept whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    span_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    parent_span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    name: str
    kind: SpanKind = SpanKind.INTERNAL
    start: AwareDatetime
    end: AwareDatetime | None = None
    status_code: str = "unset"
    status_message: str = ""
    attributes: dict[str, JsonValue] = Field(default_factory=dict)
    resource_attributes: dict[str, JsonValue] = Field(default_factory=dict)
    scope_name: str = ""
    call_id: str | None = None
    conversation_id: str | None = None
    """The conversation the span belongs to (``<framework>:<id>``), which groups spans into a call."""
    events: list[JsonValue] = Field(default_factory=list)
    """Span events as exported, each ``{"name", "time_unix_nano", "attributes"}``: a stream's first
    token, an exception, a retry."""
    links: list[JsonValue] = Field(default_factory=list)
    """Links to spans of other traces, each ``{"trace_id", "span_id", "attributes"}``."""
    documents: list[Document] = Field(default_factory=list)
    """The documents a retriever or re-ranker span returned, read out of its attributes at the edge so
    that the attribute caps never cut them (they have their own bound)."""
