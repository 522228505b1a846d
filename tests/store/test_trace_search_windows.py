"""Trace and session search read time windows backwards from the newest span; the pages must be the
ones a search over everything gives.

Traces are spread over months (so a page spans several windows), some run for hours (so they have spans
in a window they did not begin in), and filters match rarely. The expected pages are computed here in
Python from the spans inserted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.model import Span
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.trace_queries import TraceFilter

NEWEST = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Trace:
    trace_id: str
    start: datetime
    spans: list[Span]
    service: str
    failed: bool
    conversation: str | None


def _traces(count: int, seed: int) -> list[Trace]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        # Dense in the last hours, sparse over the months before: every window size is crossed.
        back_s = rng.choice(
            [rng.uniform(0, 3 * 3600), rng.uniform(0, 5 * 86400), rng.uniform(0, 200 * 86400)]
        )
        start = NEWEST - timedelta(seconds=back_s)
        long_running = n % 7 == 0
        trace_id = f"{rng.getrandbits(128):032x}"
        service = rng.choice(["support", "billing", "sales"])
        failed = n % 11 == 0
        conversation = f"genai:c-{n % 13}" if n % 2 == 0 else None
        spans = []
        for s in range(4):
            offset = timedelta(hours=5 * s) if long_running else timedelta(seconds=s)
            spans.append(
                Span.model_validate(
                    {
                        "trace_id": trace_id,
                        "span_id": f"{n:08x}{s:08x}",
                        "parent_span_id": None if s == 0 else f"{n:08x}{0:08x}",
                        "name": "root" if s == 0 else f"step {s}",
                        "start": start + offset,
                        "end": start + offset + timedelta(milliseconds=500),
                        "status_code": "error" if failed and s == 3 else "unset",
                        "attributes": {"step": s, "note": f"ticket {n} step {s}"},
                        "resource_attributes": {"service.name": service},
                        "conversation_id": conversation,
                    }
                )
            )
        out.append(Trace(trace_id, start, spans, service, failed, conversation))
    return out


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return _traces(400, seed=7)


@pytest.fixture
def filled(store: ClickHouseStore, traces: list[Trace]) -> ClickHouseStore:
    spans = [span for trace in traces for span in trace.spans]
    random.Random(3).shuffle(spans)
    for i in range(0, len(spans), 300):  # several parts, as exports arrive
        batch = spans[i : i + 300]
        store.insert_spans("proj", batch, conversation_ids=[s.conversation_id for s in batch])
    return store


def _expected(traces: list[Trace], keep: object, limit: int) -> list[str]:
    chosen = [t for t in traces if keep(t)]  # type: ignore[operator]
    chosen.sort(key=lambda t: (t.start, t.trace_id), reverse=True)
    return [t.trace_id for t in chosen[:limit]]


@pytest.mark.parametrize(
    ("name", "query", "keep"),
    [
        ("newest", TraceFilter(limit=25), lambda t: True),
        ("service", TraceFilter(service="billing", limit=25), lambda t: t.service == "billing"),
        ("errors", TraceFilter(errors_only=True, limit=25), lambda t: t.failed),
        ("text", TraceFilter(text="TICKET 14 step", limit=25), lambda t: "ticket 14 step" in _notes(t)),
        (
            "range",
            TraceFilter(since=NEWEST - timedelta(days=30), until=NEWEST - timedelta(days=2), limit=25),
            lambda t: NEWEST - timedelta(days=30) <= t.start < NEWEST - timedelta(days=2),
        ),
        (
            "conversation",
            TraceFilter(conversation_id="genai:c-4", limit=25),
            lambda t: t.conversation == "genai:c-4",
        ),
    ],
)
def test_trace_pages_are_those_of_a_search_over_everything(
    filled: ClickHouseStore, traces: list[Trace], name: str, query: TraceFilter, keep: object
) -> None:
    found = filled.search_traces("proj", query)
    assert [row["trace_id"] for row in found] == _expected(traces, keep, query.limit), name
    by_id = {t.trace_id: t for t in traces}
    for row in found:
        trace = by_id[row["trace_id"]]
        assert row["started"] == trace.start and row["span_count"] == 4
        assert row["root_name"] == "root" and row["service"] == trace.service


def _notes(trace: Trace) -> str:
    return " ".join(str(span.attributes["note"]) for span in trace.spans)


def test_paging_through_every_trace_gives_each_once_in_order(
    filled: ClickHouseStore, traces: list[Trace]
) -> None:
    seen: list[str] = []
    query = TraceFilter(limit=37)
    while True:
        page = filled.search_traces("proj", query)
        seen += [row["trace_id"] for row in page]
        if len(page) < query.limit:
            break
        query = TraceFilter(limit=37, before=(page[-1]["started"], page[-1]["trace_id"]))
    assert seen == _expected(traces, lambda t: True, len(traces))


def test_sessions_come_latest_activity_first_with_counts_over_all_their_spans(
    filled: ClickHouseStore, traces: list[Trace]
) -> None:
    found = filled.search_sessions("proj", TraceFilter(limit=5))
    activity: dict[str, list[Trace]] = {}
    for trace in traces:
        if trace.conversation is not None:
            activity.setdefault(trace.conversation, []).append(trace)
    last = {key: max(s.end for t in ts for s in t.spans if s.end) for key, ts in activity.items()}
    expected = sorted(activity, key=lambda key: (last[key], key), reverse=True)[:5]
    assert [row["conversation_id"] for row in found] == expected
    for row in found:
        assert row["trace_count"] == len(activity[row["conversation_id"]])
        assert row["span_count"] == 4 * len(activity[row["conversation_id"]])
        assert row["ended"] == last[row["conversation_id"]]


def test_an_empty_project_has_no_traces(filled: ClickHouseStore) -> None:
    assert filled.search_traces("nobody", TraceFilter()) == []
    assert filled.search_sessions("nobody", TraceFilter()) == []
