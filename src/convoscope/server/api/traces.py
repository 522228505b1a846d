"""Reading spans: a call's spans, or one trace, as a tree with timings.

Each node has its offset from the first span (or from the call's start), its duration, and its children
by start time. A span whose parent is not among the spans read (another trace, not yet arrived) is a
root of the tree, so nothing is hidden.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, JsonValue
from starlette.concurrency import run_in_threadpool

from ...errors import NotFound, PayloadError
from ...ingest.otlp import PriceTable
from ...ingest.otlp.steps import step_of
from ...model import Document, Span
from ...traces.otlp import price_table
from ..auth import CurrentProject
from ..deps import get_services

__all__ = ["TRACE_ID_PATTERN", "SpanNode", "SpanTreeOut", "build_tree", "router"]

router = APIRouter(prefix="/api/v1", tags=["traces"])

TRACE_ID_PATTERN = r"^[0-9a-f]{32}$"
"""A trace id as OTLP/JSON and the W3C trace context write it: 16 bytes as 32 lowercase hex digits."""


class SpanNode(BaseModel):
    """One span with its timing and its children."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start: datetime
    end: datetime | None
    offset_ms: float = Field(
        description="Milliseconds from the tree's origin (the call's start, else the first span)."
    )
    duration_ms: float | None
    status_code: str
    status_message: str
    attributes: dict[str, JsonValue]
    resource_attributes: dict[str, JsonValue]
    scope_name: str
    call_id: str | None
    conversation_id: str | None
    events: list[JsonValue] = Field(
        default_factory=list, description='Span events: {"name", "time_unix_nano", "attributes"} each.'
    )
    links: list[JsonValue] = Field(
        default_factory=list, description='Links to other spans: {"trace_id", "span_id", "attributes"} each.'
    )
    documents: list[Document] = Field(
        default_factory=list, description="Documents a retriever or re-ranker span returned."
    )
    step: str | None = Field(
        default=None,
        description="What the span did in an LLM or RAG app (llm, embedding, retriever, reranker, tool, "
        "chain, prompt, agent, ...), read from whichever convention wrote it.",
    )
    input: JsonValue = Field(default=None, description="The step's input, as the span gave it.")
    output: JsonValue = Field(default=None, description="The step's output, as the span gave it.")
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(default=None, description="Priced with the configured model prices.")
    children: list[SpanNode] = Field(default_factory=list)


class SpanTreeOut(BaseModel):
    """The spans of a call or a trace, as trees."""

    origin: datetime | None
    span_count: int
    trace_ids: list[str]
    roots: list[SpanNode]


def build_tree(
    spans: list[Span], origin: datetime | None = None, prices: PriceTable | None = None
) -> SpanTreeOut:
    """The spans as trees by parentage, children by start time; ``origin`` defaults to the first start.
    Each node says what step it was, with its tokens and cost priced by ``prices`` (none when None)."""
    table = prices or PriceTable()
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    start = origin or (ordered[0].start if ordered else None)
    nodes: dict[tuple[str, str], SpanNode] = {}
    for span in ordered:
        end = span.end
        step = step_of(span, table)
        nodes[(span.trace_id, span.span_id)] = SpanNode(
            **span.model_dump(exclude={"kind"}),
            kind=span.kind.value,
            step=step.kind,
            input=step.input,
            output=step.output,
            input_tokens=step.input_tokens,
            output_tokens=step.output_tokens,
            cost_usd=step.cost_usd,
            offset_ms=(span.start - start).total_seconds() * 1000 if start else 0.0,
            duration_ms=None if end is None else (end - span.start).total_seconds() * 1000,
        )
    roots: list[SpanNode] = []
    for span in ordered:
        node = nodes[(span.trace_id, span.span_id)]
        parent = nodes.get((span.trace_id, span.parent_span_id)) if span.parent_span_id else None
        (parent.children if parent is not None and parent is not node else roots).append(node)
    return SpanTreeOut(
        origin=start,
        span_count=len(ordered),
        trace_ids=sorted({s.trace_id for s in ordered}),
        roots=roots,
    )


def _prices(request: Request) -> PriceTable:
    return price_table(get_services(request).settings)


@router.get("/calls/{call_id}/spans", summary="A call's spans as a tree")
async def call_spans(call_id: str, request: Request, project: CurrentProject) -> SpanTreeOut:
    """Spans linked to the call (OTLP-ingested calls), offsets from the call's start."""
    store = get_services(request).store
    stored = await run_in_threadpool(store.get_call, project.id, call_id)
    if stored is None:
        raise NotFound(f"call {call_id} not found")
    spans = await run_in_threadpool(lambda: store.list_spans(project.id, call_id=call_id))
    return build_tree(spans, stored.call.started_at, _prices(request))


@router.get("/traces/{trace_id}", summary="One trace as a tree")
async def trace(
    trace_id: Annotated[
        str, Path(description="32 lowercase hex digits", json_schema_extra={"pattern": TRACE_ID_PATTERN})
    ],
    request: Request,
    project: CurrentProject,
) -> SpanTreeOut:
    """Every stored span of the trace, offsets from its first span."""
    if re.match(TRACE_ID_PATTERN, trace_id) is None:
        raise PayloadError(
            f"trace id {trace_id!r} is not 32 lowercase hex digits",
            [{"loc": "path.trace_id", "msg": f"must match {TRACE_ID_PATTERN}"}],
        )
    store = get_services(request).store
    spans = await run_in_threadpool(lambda: store.list_spans(project.id, trace_id=trace_id))
    if not spans:
        raise NotFound(f"trace {trace_id} not found")
    return build_tree(spans, prices=_prices(request))
