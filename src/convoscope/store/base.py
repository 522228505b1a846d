"""The store interface: what the server, the CLI and the workers need from persistence.

Calls, turns, tool calls, spans and scores live in ClickHouse SQL (embedded chDB or a server); the
shapes here are backend-free so that callers never name a concrete store.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from ..model import Call, CallSource, EndReason, MetricResult, Span

__all__ = [
    "Aggregate",
    "Bucket",
    "CallFilter",
    "CURSOR_PATTERN",
    "CallOrder",
    "CallPage",
    "CallStore",
    "CallSummary",
    "SeriesPoint",
    "SeriesQuery",
    "StoredCall",
]


class CallOrder(StrEnum):
    """The orders the calls list pages through (each with the call id as the tie-break)."""

    NEWEST = "newest"
    OLDEST = "oldest"
    LONGEST = "longest"
    COSTLIEST = "costliest"


class CallFilter(BaseModel):
    """Filters of the calls list; every field is optional and they combine with AND."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str | None = None
    source: CallSource | None = None
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    end_reason: EndReason | None = None
    has_recording: bool | None = None
    agent_version: str | None = None
    failing_metric: str | None = None
    """Calls with a failed score of this metric."""
    score_metric: str | None = None
    """With ``score_min``/``score_max``: calls whose score of this metric lies in the range."""
    score_min: float | None = None
    score_max: float | None = None
    text: str | None = Field(default=None, min_length=1, max_length=256)
    """Calls with a turn containing this text (any case, any stored version of the call)."""
    order: CallOrder = CallOrder.NEWEST
    """Not a filter: the order pages come in (a cursor belongs to the order it was given in)."""


class CallSummary(BaseModel):
    """One row of the calls list: enough for a table, without turns."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: CallSource
    external_id: str
    agent_id: str | None
    started_at: datetime
    duration_s: float
    end_reason: EndReason
    turn_count: int
    tool_call_count: int
    tool_error_count: int
    cost_usd: float
    has_recording: bool
    tags: list[str]


CURSOR_PATTERN = r"^-?[0-9]{1,16}\.[0-9a-f-]{1,64}$"
"""A page cursor: the last row's sort value (its start in microseconds since the epoch; or its duration
in microseconds, or its cost in millionths of a dollar, for those orders) and id. Clients treat it as
opaque; any string of this shape is a position in the list's order, so the API can declare exactly which
cursors it takes (the start's sixteen digits stay inside the store's time range)."""


class CallPage(BaseModel):
    """A page of calls in the list's order, with the cursor of the next page (None at the end)."""

    items: list[CallSummary]
    next_cursor: str | None = None


class StoredCall(BaseModel):
    """A call as stored, with its scores and the version that won."""

    call: Call
    scores: list[MetricResult] = Field(default_factory=list)
    version: int
    ingested_at: datetime


class Aggregate(StrEnum):
    """Aggregations a time series may ask for."""

    COUNT = "count"
    AVG = "avg"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


class Bucket(StrEnum):
    """Time bucket widths."""

    HOUR = "hour"
    DAY = "day"


class SeriesQuery(BaseModel):
    """A time series over a call column, a turn column, or a stored metric's numeric value.

    ``field`` is one of the names in ``store.schema.SERIES_FIELDS`` or ``metric:<name>``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    aggregate: Aggregate = Aggregate.AVG
    bucket: Bucket = Bucket.DAY
    since: datetime
    until: datetime
    group_by_agent: bool = False
    agent_id: str | None = None
    source: CallSource | None = None


class SeriesPoint(BaseModel):
    """One bucket of a series; ``group`` is the agent id when grouped, else None."""

    bucket_start: datetime
    group: str | None
    value: float | None
    count: int


class CallStore(Protocol):
    """Persistence of calls and their analytics, scoped by project on every method."""

    def insert_calls(self, project_id: str, calls: Sequence[Call], *, version: int) -> list[str]:
        """Write calls, replacing any stored call with the same (source, external_id); returns ids.

        ``version`` orders replacements: the highest version of a call wins in every query, so a
        replayed older payload can never override a newer one.
        """
        ...

    def get_call(self, project_id: str, call_id: str) -> StoredCall | None:
        """The newest version of one call with its turns, tool calls, recordings and scores."""
        ...

    def get_calls(self, project_id: str, call_ids: Collection[str]) -> dict[str, StoredCall]:
        """``get_call`` for many calls at once, by id; an id without a current call is absent."""
        ...

    def list_calls(self, project_id: str, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        """Calls matching the filters, newest first, paginated by an opaque cursor."""
        ...

    def count_calls(self, project_id: str) -> int:
        """How many distinct calls the project holds (after replacement)."""
        ...

    def series(self, project_id: str, query: SeriesQuery) -> list[SeriesPoint]:
        """A time series over calls, turns or metric scores."""
        ...

    def metric_names(self, project_id: str) -> list[str]:
        """The metrics the project has scores of, sorted."""
        ...

    def insert_scores(self, project_id: str, results: Sequence[MetricResult]) -> None:
        """Write metric results; a newer result of the same (call, metric) replaces the older one."""
        ...

    def insert_spans(
        self, project_id: str, spans: Sequence[Span], *, conversation_ids: Sequence[str | None] | None = None
    ) -> None:
        """Write spans (OpenTelemetry-shaped), replacing a span with the same (trace_id, span_id);
        ``conversation_ids`` (one per span, None keeps the span's own) are written as their keys."""
        ...

    def list_spans(
        self,
        project_id: str,
        *,
        call_id: str | None = None,
        trace_id: str | None = None,
        conversation_id: str | None = None,
    ) -> list[Span]:
        """Spans of one call, trace or conversation, by start time."""
        ...

    def spans_of_conversations(
        self, project_id: str, conversation_ids: Collection[str], trace_ids: Collection[str] = ()
    ) -> list[Span]:
        """Every span of each trace holding a span of ``conversation_ids``, and of ``trace_ids``, by start."""
        ...

    def ping(self) -> dict[str, object]:
        """Run a real query against the store and report what it saw; raises StoreError if it cannot."""
        ...

    def reachable(self) -> None:
        """The cheapest real query that reads the event tables; raises StoreError if it cannot run."""
        ...

    def close(self) -> None:
        """Release the store (chDB allows one open data directory per process)."""
        ...
