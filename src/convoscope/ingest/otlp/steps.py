"""What one span of an LLM or RAG app did, in any convention: its step kind, its input and output, and
its tokens and cost.

Debugging a RAG answer means walking its steps (embed, retrieve, re-rank, build the prompt, call the
model) and seeing what each took in and gave back. Each convention says so under its own names, so a
trace tree shows the same three facts whichever library wrote the span; the raw attributes stay beside
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

from ...model import Span
from .common import PriceTable, attr_str, usage_from

__all__ = ["Step", "step_of"]

_GENAI_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "retrieval": "retriever",
    "invoke_agent": "agent",
    "create_agent": "agent",
}
_INPUTS = ("input.value", "traceloop.entity.input", "gen_ai.input.messages", "gen_ai.retrieval.query.text")
_OUTPUTS = ("output.value", "traceloop.entity.output", "gen_ai.output.messages")


@dataclass(frozen=True, slots=True)
class Step:
    """A span read as a pipeline step; every field is None where the span does not say."""

    kind: str | None
    input: JsonValue
    output: JsonValue
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


def _kind(span: Span) -> str | None:
    """OpenInference's span kind, else the GenAI operation, else OpenLLMetry's span kind (lower case)."""
    openinference = attr_str(span, "openinference.span.kind")
    if openinference:
        return openinference.lower()
    operation = attr_str(span, "gen_ai.operation.name")
    if operation:
        return _GENAI_OPERATIONS.get(operation, operation)
    if attr_str(span, "llm.request.type"):
        return "llm"
    traceloop = attr_str(span, "traceloop.span.kind")
    return traceloop.lower() if traceloop else None


def _first(span: Span, names: tuple[str, ...]) -> JsonValue:
    for name in names:
        value = span.attributes.get(name)
        if value is not None:
            return value
    return None


def step_of(span: Span, prices: PriceTable) -> Step:
    """The span as a step; tokens and cost from the same meter the call's totals use."""
    usage, lines = usage_from([span], [], [], prices)
    return Step(
        kind=_kind(span),
        input=_first(span, _INPUTS),
        output=_first(span, _OUTPUTS),
        # The meter reads 0 for a span that names no tokens: a step without tokens says none.
        input_tokens=usage.llm_prompt_tokens or None,
        output_tokens=usage.llm_completion_tokens or None,
        cost_usd=round(sum(line.amount for line in lines), 9) if lines else None,
    )
