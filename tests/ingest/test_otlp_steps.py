"""A span read as a pipeline step, whichever convention wrote it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import JsonValue

from convoscope.ingest.otlp import PriceTable
from convoscope.ingest.otlp.steps import step_of
from convoscope.model import Span

T = datetime(2026, 5, 1, tzinfo=UTC)
PRICES = PriceTable(llm={"gpt-4o-mini": (0.15, 0.60), "text-embedding-3-small": (0.02, 0.0)})


def _span(attributes: dict[str, JsonValue]) -> Span:
    return Span.model_validate(
        {"trace_id": "1" * 32, "span_id": "2" * 16, "name": "step", "start": T, "attributes": attributes}
    )


@pytest.mark.parametrize(
    ("attributes", "kind", "given", "gave"),
    [
        ({"openinference.span.kind": "RETRIEVER", "input.value": "q?"}, "retriever", "q?", None),
        ({"openinference.span.kind": "RERANKER"}, "reranker", None, None),
        ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "book"}, "tool", None, None),
        (
            {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query.text": "q?"},
            "retriever",
            "q?",
            None,
        ),
        ({"gen_ai.operation.name": "invoke_agent"}, "agent", None, None),
        ({"llm.request.type": "chat"}, "llm", None, None),
        (
            {"traceloop.span.kind": "task", "traceloop.entity.input": "{}", "traceloop.entity.output": "[]"},
            "task",
            "{}",
            "[]",
        ),
        ({"http.method": "GET"}, None, None, None),
    ],
)
def test_each_convention_names_its_step(
    attributes: dict[str, JsonValue], kind: str | None, given: JsonValue, gave: JsonValue
) -> None:
    step = step_of(_span(attributes), PRICES)
    assert (step.kind, step.input, step.output) == (kind, given, gave)
    assert step.input_tokens is None and step.cost_usd is None


def test_tokens_and_cost_per_step_embeddings_included() -> None:
    chat = step_of(
        _span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
            }
        ),
        PRICES,
    )
    assert (chat.kind, chat.input_tokens, chat.output_tokens) == ("llm", 1000, 200)
    assert chat.cost_usd == pytest.approx((1000 * 0.15 + 200 * 0.60) / 1e6)
    embedding = step_of(
        _span(
            {
                "openinference.span.kind": "EMBEDDING",
                "embedding.model_name": "text-embedding-3-small",
                "llm.token_count.prompt": 5000,
            }
        ),
        PRICES,
    )
    assert (embedding.kind, embedding.input_tokens) == ("embedding", 5000)
    assert embedding.cost_usd == pytest.approx(5000 * 0.02 / 1e6)
