"""Canonical spans built by hand for the mapper tests: small integer ids, times in seconds from ``T``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from convoscope.model import Span

T = datetime(2026, 9, 1, 12, tzinfo=UTC)
TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(
    span_id: int, name: str, start: float, end: float, parent: int | None = None, **attributes: object
) -> Span:
    """Span ``span_id`` of ``TRACE`` from ``start`` to ``end`` seconds after ``T``, under ``parent``."""
    return Span.model_validate(
        {
            "trace_id": TRACE,
            "span_id": f"{span_id:016x}",
            "parent_span_id": None if parent is None else f"{parent:016x}",
            "name": name,
            "start": T + timedelta(seconds=start),
            "end": T + timedelta(seconds=end),
            "attributes": attributes,
        }
    )
