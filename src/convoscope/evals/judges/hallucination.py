"""Hallucination: the agent's factual claims, each checked against the agent's knowledge base.

Two questions, as claim-based faithfulness metrics do: first the factual claims the agent made are
extracted with the turn each came from, then every claim is verified against the knowledge base alone.
Splitting them keeps each question small and makes every verdict traceable to one sentence of the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, JsonValue

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext
from ..llm import JudgeReplyError, JudgeUsage
from ..registry import register
from .base import (
    DATA_PREAMBLE,
    STRING,
    TURN_INDEX,
    JudgeMetric,
    JudgeParams,
    NotScorable,
    Outcome,
    array_of,
    enum_of,
    object_schema,
    quote_items,
    read_knowledge_base,
    tagged,
)

__all__ = ["Hallucination", "HallucinationParams"]

_EXTRACT = f"""
You read a recorded phone conversation between a voice agent and a caller and list every factual claim
the AGENT made: statements about the world, the business, its products, prices, policies, opening
hours, availability, the caller's account or order, or what will happen next.

Leave out greetings, questions, apologies, opinions, and anything only the caller said. Write each claim
as one short self-contained sentence (no pronouns that need the conversation to be understood), and give
the number of the agent turn it comes from (the number in square brackets).

{DATA_PREAMBLE}
"""

_VERIFY = f"""
You check claims a voice agent made against the agent's knowledge base, and nothing else: not your own
knowledge, not what sounds plausible.

For each numbered claim answer:
- "supported": the knowledge base states it or it follows directly from it.
- "contradicted": the knowledge base says otherwise.
- "unverifiable": the knowledge base does not say.

Give one verdict for every claim, with its number and a short reason.

{DATA_PREAMBLE}
"""

_CLAIMS_SCHEMA = object_schema(claims=array_of(object_schema(turn_index=TURN_INDEX, claim=STRING)))
_VERDICTS_SCHEMA = object_schema(
    verdicts=array_of(
        object_schema(
            claim=TURN_INDEX,
            verdict=enum_of("supported", "contradicted", "unverifiable"),
            reason=STRING,
        )
    )
)


_CLAIMS = "_claims"
_INVALID = "_invalid"


class HallucinationParams(JudgeParams):
    """Thresholds of the hallucination metric."""

    max_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Highest share of unsupported claims that still passes."
    )
    count_unverifiable: bool = Field(
        default=True, description="Whether a claim the knowledge base does not cover counts as hallucinated."
    )
    max_claims: int = Field(default=40, ge=1, description="Most claims verified per call (the first ones).")


@register
class Hallucination(JudgeMetric[HallucinationParams]):
    """Share of the agent's factual claims that its knowledge base does not support."""

    name = "hallucination"
    version = "1"
    params_model = HallucinationParams
    turn_level = True
    description = (
        "Share of the agent's factual claims not supported by its knowledge base (contradicted, and by "
        "default unverifiable); each claim is listed with its turn and verdict."
    )
    instructions = _VERIFY
    reply_schema = _VERDICTS_SCHEMA

    def data(self, call: Call, context: EvalContext) -> str:
        if not context.profile.knowledge_base:
            raise NotScorable("the agent has no knowledge base to check claims against")
        return read_knowledge_base(context.profile.knowledge_base)

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        try:
            knowledge = self.data(call, context)
        except NotScorable as reason:
            return self.result(call, value=None, evidence={"not_scorable": str(reason)})
        client = self.client(context)
        extracted = self.ask(
            client,
            tagged(transcript=self.transcript(call)),
            sample=0,
            step=(_EXTRACT, _CLAIMS_SCHEMA, "claims"),
        )
        usages: list[JudgeUsage] = [extracted.usage]
        claims, invalid = quote_items(call, extracted.data["claims"], roles={Role.AGENT})
        claims = claims[: self.params.max_claims]
        if not claims:
            evidence: dict[str, JsonValue] = {"claims": [], "invalid_citations": list(invalid)}
            outcome = Outcome(value=0.0, passed=True, evidence=evidence)
            return self.fold(call, [outcome], usages)
        numbered = "\n".join(f"{number}. {item['claim']}" for number, item in enumerate(claims, 1))
        data = tagged(knowledge_base=knowledge, claims=numbered)
        outcomes: list[Outcome] = []
        for sample in range(self.params.k):
            reply = self.ask(client, data, sample=sample)
            usages.append(reply.usage)
            # The claims travel with the reply so the metric instance holds no per-call state.
            outcomes.append(self.interpret({**reply.data, _CLAIMS: claims, _INVALID: invalid}, call))
        return self.fold(call, outcomes, usages)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        claims: list[dict[str, Any]] = reply[_CLAIMS]
        verdicts = {int(item["claim"]): item for item in reply["verdicts"]}
        missing = [number for number in range(1, len(claims) + 1) if number not in verdicts]
        if missing:
            raise JudgeReplyError(f"judge gave no verdict for claims {missing} of {len(claims)}")
        bad = {"contradicted", "unverifiable"} if self.params.count_unverifiable else {"contradicted"}
        listed = [
            {
                **claims[number - 1],
                "verdict": verdicts[number]["verdict"],
                "reason": verdicts[number]["reason"],
            }
            for number in range(1, len(claims) + 1)
        ]
        hallucinated = sum(1 for item in listed if item["verdict"] in bad)
        rate = round(hallucinated / len(listed), 6)
        evidence: dict[str, Any] = {"claims": listed, "hallucinated": hallucinated}
        if reply[_INVALID]:
            evidence["invalid_citations"] = reply[_INVALID]
        return Outcome(value=rate, passed=rate <= self.params.max_rate, evidence=evidence)
