"""How the agent conversed: relevancy, instruction following and response consistency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...model.call import Call
from ...model.enums import Role
from ..base import EvalContext
from ..llm import JudgeReplyError
from ..registry import register
from .base import (
    BOOLEAN,
    STRING,
    TURN_INDEX,
    JudgeMetric,
    JudgeParams,
    NotScorable,
    Outcome,
    array_of,
    cited_evidence,
    enum_of,
    object_schema,
    quote_items,
    score_schema,
    tagged,
)

__all__ = [
    "InstructionFollowing",
    "InstructionFollowingParams",
    "Relevancy",
    "RelevancyParams",
    "ResponseConsistency",
    "ResponseConsistencyParams",
]


def _agent_turns(call: Call) -> list[int]:
    return [turn.index for turn in call.turns if turn.role is Role.AGENT and turn.text.strip()]


def _agent_transcript(metric: JudgeMetric[Any], call: Call) -> str:
    if not _agent_turns(call):
        raise NotScorable("the call has no agent turn with text")
    return tagged(transcript=metric.transcript(call))


class RelevancyParams(JudgeParams):
    """Threshold of the relevancy metric."""

    min_share: float = Field(
        default=0.8, ge=0.0, le=1.0, description="Lowest share of relevant agent turns that passes."
    )


@register
class Relevancy(JudgeMetric[RelevancyParams]):
    """Share of agent turns that answer what the caller just said."""

    name = "relevancy"
    version = "1"
    params_model = RelevancyParams
    turn_level = True
    description = (
        "Share of agent turns that respond to what the caller said or asked just before (turn-level: each "
        "agent turn judged, cited by its index)."
    )
    instructions = """
You review a recorded phone conversation between a voice agent and a caller, one agent turn at a time.

For EVERY turn spoken by the agent, decide whether it is relevant: it responds to what the caller said
or asked just before, or moves the caller's request forward in a sensible way. A short
acknowledgement, a clarifying question, or a greeting at the start counts as relevant. An answer to a
different question, an unrelated topic, or ignoring what the caller just said is not relevant.

Give one entry per agent turn, with the turn's number (in square brackets), your decision and a short
reason.
"""
    reply_schema = object_schema(
        turns=array_of(object_schema(turn_index=TURN_INDEX, relevant=BOOLEAN, reason=STRING))
    )

    def data(self, call: Call, context: EvalContext) -> str:
        return _agent_transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        judged, invalid = quote_items(call, reply["turns"], roles={Role.AGENT})
        by_turn = {int(item["turn_index"]): item for item in judged}
        if not by_turn:
            raise JudgeReplyError("judge judged none of the agent turns")
        unjudged = [index for index in _agent_turns(call) if index not in by_turn]
        irrelevant = [item for item in by_turn.values() if not item["relevant"]]
        share = round(1 - len(irrelevant) / len(by_turn), 6)
        evidence: dict[str, Any] = {
            "judged_turns": len(by_turn),
            "irrelevant": irrelevant,
            "unjudged_turns": unjudged,
        }
        if invalid:
            evidence["invalid_citations"] = invalid
        return Outcome(value=share, passed=share >= self.params.min_share, evidence=evidence)


class InstructionFollowingParams(JudgeParams):
    """Threshold of the instruction-following metric."""

    min_score: int = Field(default=4, ge=1, le=5, description="Lowest 1–5 score that passes.")


@register
class InstructionFollowing(JudgeMetric[InstructionFollowingParams]):
    """1–5: how well the agent kept to its own prompt, with each violation cited."""

    name = "instruction_following"
    version = "1"
    params_model = InstructionFollowingParams
    description = (
        "1–5 score of how well the agent followed its system prompt, with every violated instruction "
        "quoted and cited by turn."
    )
    instructions = """
You check whether a voice agent followed the instructions of its own system prompt during a recorded
phone conversation.

Read the agent's instructions, then the conversation. List every instruction the agent broke, with the
instruction, the number of the turn (in square brackets) where it broke it and the agent's exact words.
Then score the whole conversation:
5 = followed every instruction; 4 = a minor slip with no effect on the caller; 3 = a clear violation;
2 = several violations or one that harmed the caller; 1 = ignored its instructions.
An instruction that never became relevant in this conversation is not a violation.
"""
    reply_schema = object_schema(
        score=score_schema(1, 5),
        violations=array_of(object_schema(turn_index=TURN_INDEX, instruction=STRING, quote=STRING)),
        reasoning=STRING,
    )

    def data(self, call: Call, context: EvalContext) -> str:
        prompt = context.profile.system_prompt
        if not prompt or not prompt.strip():
            raise NotScorable("the agent profile has no system prompt to check against")
        return tagged(agent_instructions=prompt, transcript=self.transcript(call))

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        score = int(reply["score"])
        evidence = cited_evidence(call, reply, "violations", roles={Role.AGENT}, reasoning=reply["reasoning"])
        return Outcome(value=score, passed=score >= self.params.min_score, evidence=evidence)


class ResponseConsistencyParams(JudgeParams):
    """Threshold of the response-consistency metric."""

    max_issues: int = Field(default=0, ge=0, description="Most inconsistencies that still pass.")


@register
class ResponseConsistency(JudgeMetric[ResponseConsistencyParams]):
    """Count of mis-echoed caller details and self-contradictions by the agent."""

    name = "response_consistency"
    version = "1"
    params_model = ResponseConsistencyParams
    turn_level = True
    description = (
        "Number of agent inconsistencies: caller details repeated back wrongly (a name, number, date or "
        "address) and the agent contradicting itself; each cited by turn and quoted."
    )
    instructions = """
You check a voice agent's consistency in a recorded phone conversation. Look for two kinds of issue in
the AGENT's turns:

- "mis_echo": the agent repeats back a detail the caller gave (a name, a spelling, a number, a date, a
  time, an address, an amount) differently from how the caller said it. Speech-to-text spelling of the
  same value ("four five two" and "452") is not an issue.
- "self_contradiction": the agent states something that contradicts what it said earlier in the call.

List every issue with the number of the agent turn (in square brackets) where it happens, the agent's
exact words and what it conflicts with. List nothing when the agent was consistent.
"""
    reply_schema = object_schema(
        issues=array_of(
            object_schema(
                turn_index=TURN_INDEX,
                kind=enum_of("mis_echo", "self_contradiction"),
                quote=STRING,
                detail=STRING,
            )
        ),
        reasoning=STRING,
    )

    def data(self, call: Call, context: EvalContext) -> str:
        return _agent_transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        evidence = cited_evidence(call, reply, "issues", roles={Role.AGENT}, reasoning=reply["reasoning"])
        count = len(evidence["issues"])
        return Outcome(value=count, passed=count <= self.params.max_issues, evidence=evidence)
