"""Expected outcome: did the call end where the scenario or the agent says it should?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...model.call import Call
from ..base import EvalContext
from ..registry import register
from .base import (
    QUOTES,
    STRING,
    JudgeMetric,
    JudgeParams,
    NotScorable,
    Outcome,
    cited_evidence,
    enum_of,
    object_schema,
    tagged,
)

__all__ = ["ExpectedOutcome"]

_VERDICT_PASSED = {"pass": True, "fail": False}


@register
class ExpectedOutcome(JudgeMetric[JudgeParams]):
    """pass / review / fail against the expected outcome, with the quotes that decide it."""

    name = "expected_outcome"
    version = "1"
    description = (
        "Whether the conversation reached the expected outcome (the simulated scenario's, else the "
        "agent's): pass, fail, or review when the transcript cannot settle it; with quotes."
    )
    instructions = """
You review a recorded phone conversation between a voice agent and a caller, and decide whether it
reached a stated expected outcome.

Decide from what actually happened in the conversation, including the tool calls the agent made and
whether they succeeded. An agent saying it did something is not proof that it was done when a tool
call shows otherwise.

- "pass": the outcome was clearly reached.
- "fail": the outcome was clearly not reached, or the conversation went against it.
- "review": the transcript does not let you decide (cut off, ambiguous, partly reached).

Give short reasoning, and quote the exact words that decide the verdict, each with the number of the
turn it comes from (the number in square brackets).
"""
    reply_schema = object_schema(verdict=enum_of("pass", "review", "fail"), reasoning=STRING, quotes=QUOTES)

    def data(self, call: Call, context: EvalContext) -> str:
        expected = context.scenario.get("expected_outcome") if context.scenario else None
        if not isinstance(expected, str) or not expected.strip():
            expected = context.profile.expected_outcome
        if not expected or not expected.strip():
            raise NotScorable("no expected outcome: set one on the agent profile or the scenario")
        return tagged(expected_outcome=expected, transcript=self.transcript(call))

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        evidence = cited_evidence(call, reply, "quotes", reasoning=reply["reasoning"])
        verdict = str(reply["verdict"])
        return Outcome(value=verdict, passed=_VERDICT_PASSED.get(verdict), evidence=evidence)
