"""Hand-built calls for the rule metric tests: a transcript from (role, text) pairs, with timing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from convoscope.evals.base import EvalContext, Metric
from convoscope.model.call import Call, ToolCall
from convoscope.model.metric import MetricResult

STARTED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def make_call(
    *turns: tuple[str, str],
    tool_calls: list[dict[str, Any]] | None = None,
    turn_s: float = 2.0,
    gap_s: float = 0.5,
    **fields: Any,
) -> Call:
    """A call whose turns last ``turn_s`` each, ``gap_s`` apart, in the order given."""
    built = []
    clock = 0.0
    for role, text in turns:
        built.append({"role": role, "text": text, "start_s": clock, "end_s": clock + turn_s})
        clock += turn_s + gap_s
    return Call.model_validate(
        {
            "id": "c1",
            "source": "generic",
            "external_id": "ext-1",
            "started_at": STARTED,
            "turns": built,
            "tool_calls": [
                ToolCall.model_validate({"id": f"t{i}", **tc}) for i, tc in enumerate(tool_calls or [])
            ],
            **fields,
        }
    )


def run(metric: Metric[Any], call: Call, context: EvalContext | None = None) -> MetricResult:
    """The metric's result on the call, with an empty context unless one is given."""
    return metric.evaluate(call, context or EvalContext())
