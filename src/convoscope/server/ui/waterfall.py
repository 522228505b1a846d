"""A traced call's spans as a waterfall: one row per span in tree order, a bar placed by offset and length.

``GET /api/v1/calls/{id}/spans`` answers the same spans as a tree (``api/traces.build_tree``); the page
needs them flattened, in the order a tree is read (each span followed by its children, by start time),
with the depth to indent by. A voice call can carry thousands of spans, and reading each as a pipeline
step (``step_of``: kind, tokens, cost) is the expensive part, so only the rows of the page being shown are
read that way; the rest are ordered and measured only. The bars of every page share one scale (the whole
call's extent), so a page loaded later lines up with the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ...ingest.otlp import PriceTable
from ...ingest.otlp.steps import step_of
from ...model import Span

__all__ = ["PAGE_SPANS", "SpanRow", "Waterfall", "waterfall"]

PAGE_SPANS = 500
"""Rows rendered per page: thousands of table rows at once make a page slow to lay out and scroll."""

_MIN_BAR_PERCENT = 0.15
"""The narrowest bar, so a span of a few microseconds in a ten-minute call is still seen."""


@dataclass(frozen=True, slots=True)
class SpanRow:
    """One span as a waterfall row: bar position and width in percent of the call's extent."""

    span: Span
    depth: int
    offset_ms: float
    duration_ms: float | None
    left_pct: float
    width_pct: float
    step: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Waterfall:
    """One page of rows, how many spans there are in all, and where the next page starts (None: last)."""

    rows: list[SpanRow]
    total: int
    extent_ms: float
    trace_ids: list[str]
    next_offset: int | None


def _tree_order(spans: Sequence[Span]) -> list[tuple[Span, int]]:
    """Spans depth first, children by start; a span whose parent is not here is a root (nothing hidden)."""
    ordered = sorted(spans, key=lambda s: (s.start, s.span_id))
    present = {(s.trace_id, s.span_id) for s in ordered}
    children: dict[tuple[str, str], list[Span]] = {}
    roots: list[Span] = []
    for span in ordered:
        parent = (span.trace_id, span.parent_span_id) if span.parent_span_id else None
        if parent is not None and parent in present and parent != (span.trace_id, span.span_id):
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    result: list[tuple[Span, int]] = []
    seen: set[tuple[str, str]] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        key = (span.trace_id, span.span_id)
        if key in seen:  # a parent cycle in bad data: show each span once
            continue
        seen.add(key)
        result.append((span, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(key, [])))
    result.extend((s, 0) for s in ordered if (s.trace_id, s.span_id) not in seen)  # cycles' members
    return result


def waterfall(
    spans: Sequence[Span],
    origin: datetime,
    prices: PriceTable,
    *,
    offset: int = 0,
    limit: int = PAGE_SPANS,
) -> Waterfall:
    """Rows ``offset`` to ``offset + limit`` of the spans in tree order, timed from ``origin``."""
    order = _tree_order(spans)
    starts = [(s.start - origin).total_seconds() * 1000 for s, _ in order]
    ends = [
        (s.end - origin).total_seconds() * 1000 if s.end is not None else start
        for (s, _), start in zip(order, starts, strict=True)
    ]
    low = min([0.0, *starts])
    extent = max([*ends, *starts, low + 1.0]) - low
    rows: list[SpanRow] = []
    for position in range(max(offset, 0), min(offset + limit, len(order))):
        span, depth = order[position]
        step = step_of(span, prices)
        start = starts[position]
        duration = None if span.end is None else ends[position] - start
        left = round((start - low) / extent * 100, 3)
        rows.append(
            SpanRow(
                span=span,
                depth=depth,
                offset_ms=start,
                duration_ms=duration,
                left_pct=left,
                width_pct=round(min(max((duration or 0.0) / extent * 100, _MIN_BAR_PERCENT), 100 - left), 3),
                step=step.kind,
                input_tokens=step.input_tokens,
                output_tokens=step.output_tokens,
                cost_usd=step.cost_usd,
            )
        )
    end = offset + limit
    return Waterfall(
        rows=rows,
        total=len(order),
        extent_ms=extent,
        trace_ids=sorted({s.trace_id for s in spans}),
        next_offset=end if end < len(order) else None,
    )
