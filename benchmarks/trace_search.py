"""Trace and session search at 10 million spans: ``search_traces`` / ``search_sessions`` latency.

The store is filled in time order (a month of traffic, 10 spans a trace, inserted in batches the way
the OTLP worker writes them, so parts hold consecutive stretches of time as they do in a live store).
Rows are generated inside the engine (``INSERT ... SELECT FROM numbers()``): a Python loop would spend
the benchmark's time building 10 million dictionaries. Each span carries what LLM-app spans carry: a
service, a model, OpenInference kinds, a session on every span of one trace in three, 1% errors and a
few hundred characters of input and output text.

Then every query kind runs in rounds, one of each per round in a fixed order (slow moments of the shared
box spread over all kinds): the newest page, each filter on its own (service, model, errors, attribute,
text, a one-day range, a conversation), the next page and page 21 through the cursor, the sessions
list, and a text that matches nothing (with and without a one-day ``since``: the one search that reads
every span in its range). The reference, measured in the same rounds, is a full scan of one column
(``SELECT count() FROM spans WHERE name != ''``): what reading the table once costs here, so every
figure is also a ratio to it.

Run: ``uv run python benchmarks/trace_search.py`` (10M spans: a few minutes to build);
``--spans 1000000 --runs 10`` for a quick run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, percentile, print_environment, print_table, write_json
from convoscope.store.clickhouse import ClickHouseStore, open_clickhouse_store
from convoscope.store.schema import SPANS
from convoscope.store.trace_queries import TraceFilter

PROJECT = "bench"
SPANS_PER_TRACE = 10
DAYS = 30
END = datetime(2026, 11, 30, tzinfo=UTC)
GOAL_MS = 150.0
REFERENCE = "reference: full scan of one column"

_KINDS = "['CHAIN','CHAIN','EMBEDDING','RETRIEVER','RERANKER','CHAIN','PROMPT','LLM','CHAIN','CHAIN']"
_NAMES = (
    "['RunnableSequence','RunnableParallel','OpenAIEmbeddings','VectorStoreRetriever','CohereRerank',"
    "'format_docs','ChatPromptTemplate','ChatOpenAI','StrOutputParser','RunnableLambda']"
)
_MODELS = "['gpt-4o-mini','gpt-4o','claude-3-5-haiku','llama-3.1-8b']"
_SERVICES = "['support-rag','billing-bot','clinic-chat','sales-assistant','faq-search']"
_WORDS = "['refund','parking','invoice','appointment','schedule','password','delivery','warranty']"


def _insert_sql(table: str, first: int, count: int, start: datetime, step_us: int) -> str:
    """Spans ``first`` .. ``first + count`` (span ``n`` is span ``n % 10`` of trace ``n // 10``)."""
    start_us = int(start.timestamp() * 1_000_000)
    return f"""
INSERT INTO {table}
SELECT
    '{PROJECT}' AS project_id,
    lower(concat(hex(cityHash64(intDiv(number, {SPANS_PER_TRACE}), 1)),
                 hex(cityHash64(intDiv(number, {SPANS_PER_TRACE}), 2)))) AS trace_id,
    lower(hex(cityHash64(number, 3))) AS span_id,
    1 AS version,
    NULL AS call_id,
    if(number % {SPANS_PER_TRACE} = 0, NULL,
       lower(hex(cityHash64(number - number % {SPANS_PER_TRACE}, 3)))) AS parent_span_id,
    {_NAMES}[number % {SPANS_PER_TRACE} + 1] AS name,
    'internal' AS kind,
    fromUnixTimestamp64Micro(toInt64({start_us} + intDiv(number - {first}, {SPANS_PER_TRACE}) * {step_us}
        + (number % {SPANS_PER_TRACE}) * 20000), 'UTC') AS start_at,
    fromUnixTimestamp64Micro(toInt64({start_us} + intDiv(number - {first}, {SPANS_PER_TRACE}) * {step_us}
        + (number % {SPANS_PER_TRACE}) * 20000 + 15000), 'UTC') AS end_at,
    if(cityHash64(number, 4) % 100 = 0, 'error', 'unset') AS status_code,
    if(cityHash64(number, 4) % 100 = 0, 'upstream timeout', '') AS status_message,
    concat('{{"openinference.span.kind":"', {_KINDS}[number % {SPANS_PER_TRACE} + 1], '"',
        if(number % {SPANS_PER_TRACE} = 7,
           concat(',"llm.model_name":"', {_MODELS}[cityHash64(intDiv(number, 10), 5) % 4 + 1], '"'), ''),
        if(intDiv(number, {SPANS_PER_TRACE}) % 3 = 0,
           concat(',"session.id":"s-', toString(intDiv(number, {SPANS_PER_TRACE} * 4)), '"'), ''),
        ',"input.value":"how do I change my ', {_WORDS}[cityHash64(number, 6) % 8 + 1],
        ' for order ', toString(number), '?","output.value":"',
        repeat('the answer cites the policy and the steps to take. ', 4), '"}}') AS attributes,
    concat('{{"service.name":"', {_SERVICES}[cityHash64(intDiv(number, 10), 7) % 5 + 1], '"}}')
        AS resource_attributes,
    'openinference.instrumentation.langchain' AS scope_name,
    if(intDiv(number, {SPANS_PER_TRACE}) % 3 = 0,
       concat('genai:s-', toString(intDiv(number, {SPANS_PER_TRACE} * 4))), NULL) AS conversation_id,
    '' AS events,
    '' AS links,
    '' AS documents
FROM numbers({first}, {count})
"""


def build(store: ClickHouseStore, spans: int, batch: int) -> float:
    """Fill the store in time order; returns the seconds it took."""
    table = store._table(SPANS)
    traces = spans // SPANS_PER_TRACE
    first_start = END - timedelta(days=DAYS)
    step_us = int(DAYS * 86_400 * 1_000_000 / traces)
    began = time.perf_counter()
    for first in range(0, spans, batch):
        count = min(batch, spans - first)
        start = first_start + timedelta(microseconds=(first // SPANS_PER_TRACE) * step_us)
        store.command(_insert_sql(table, first, count, start, step_us))
    return time.perf_counter() - began


def _queries(store: ClickHouseStore) -> dict[str, Callable[[], list[dict[str, Any]]]]:
    newest = store.search_traces(PROJECT, TraceFilter(limit=50))
    cursor = (newest[-1]["started"], newest[-1]["trace_id"]) if newest else None
    conversation = next((t["conversation_id"] for t in newest if t["conversation_id"]), None)
    day = END - timedelta(days=12)

    def started(row: dict[str, Any]) -> datetime:
        value = row["started"]
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromtimestamp(value / 1e6, UTC)

    page_two = TraceFilter(limit=50, before=(started(newest[-1]), cursor[1])) if cursor else TraceFilter()
    page = newest
    for _ in range(20):  # walk to page 21 once, as a reader paging back would
        page = store.search_traces(
            PROJECT, TraceFilter(limit=50, before=(started(page[-1]), page[-1]["trace_id"]))
        )
    page_21 = TraceFilter(limit=50, before=(started(page[-1]), page[-1]["trace_id"]))
    return {
        "traces: newest 50": lambda: store.search_traces(PROJECT, TraceFilter(limit=50)),
        "traces: page 2 (cursor)": lambda: store.search_traces(PROJECT, page_two),
        "traces: service": lambda: store.search_traces(PROJECT, TraceFilter(service="billing-bot")),
        "traces: model": lambda: store.search_traces(PROJECT, TraceFilter(model="claude-3-5-haiku")),
        "traces: errors only": lambda: store.search_traces(PROJECT, TraceFilter(errors_only=True)),
        "traces: attribute": lambda: store.search_traces(
            PROJECT, TraceFilter(attribute=("openinference.span.kind", "RERANKER"))
        ),
        "traces: text": lambda: store.search_traces(PROJECT, TraceFilter(text="WARRANTY for order 99")),
        "traces: one-day range": lambda: store.search_traces(
            PROJECT, TraceFilter(since=day, until=day + timedelta(days=1))
        ),
        "traces: text, no match anywhere": lambda: store.search_traces(
            PROJECT, TraceFilter(text="no such words in any span")
        ),
        "traces: text, no match, since 1 day": lambda: store.search_traces(
            PROJECT, TraceFilter(text="no such words in any span", since=END - timedelta(days=1))
        ),
        "traces: page 21 (cursor)": lambda: store.search_traces(PROJECT, page_21),
        "traces: conversation": lambda: store.search_traces(
            PROJECT, TraceFilter(conversation_id=conversation)
        ),
        "sessions: newest 50": lambda: store.search_sessions(PROJECT, TraceFilter(limit=50)),
    }


def _reference(store: ClickHouseStore) -> Callable[[], object]:
    sql = f"SELECT count() FROM {store._table(SPANS)} WHERE name != ''"
    return lambda: store.query(sql)


def measure(store: ClickHouseStore, runs: int) -> dict[str, dict[str, float]]:
    kinds: dict[str, Callable[[], object]] = {REFERENCE: _reference(store), **_queries(store)}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    rows: dict[str, int] = {}
    for name, run in kinds.items():  # warm-up, and the row counts
        result = run()
        rows[name] = len(result) if isinstance(result, list) else -1
    for _ in range(runs):
        for name, run in kinds.items():
            began = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - began) * 1000)
    reference = percentile(times[REFERENCE], 0.5)
    return {
        name: {
            "p50_ms": percentile(values, 0.5),
            "p95_ms": percentile(values, 0.95),
            "ratio_p95_to_reference": percentile(values, 0.95) / reference,
            "rows": rows[name],
        }
        for name, values in times.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=500_000, help="spans per insert")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    print_environment(environment())
    workdir = Path(tempfile.mkdtemp(prefix="cvs-trace-search-"))
    store = open_clickhouse_store(path=workdir / "store")
    try:
        built_s = build(store, args.spans, args.batch)
        print(f"built {args.spans:,} spans in {built_s:.1f} s ({args.spans / built_s:,.0f} spans/s)")
        results = measure(store, args.runs)
        table = [
            [
                name,
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['ratio_p95_to_reference']:.2f}",
                str(r["rows"]),
            ]
            + (
                [
                    ""
                    if name == REFERENCE or "anywhere" in name
                    else ("met" if r["p95_ms"] <= GOAL_MS else "NOT met")
                ]
            )
            for name, r in results.items()
        ]
        print_table(["query", "p50 ms", "p95 ms", "p95 / ref p50", "rows", f"p95 <= {GOAL_MS:.0f} ms"], table)
        if args.json is not None:
            write_json(args.json, {"environment": environment(), "spans": args.spans, "results": results})
    finally:
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
