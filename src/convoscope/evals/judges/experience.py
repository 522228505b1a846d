"""The caller's experience: sentiment over the call and an estimated satisfaction score (CSAT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...model.call import Call
from ...model.enums import Role
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
    score_schema,
    tagged,
)

__all__ = ["Csat", "CsatParams", "SENTIMENTS", "UserSentiment", "UserSentimentParams"]

SENTIMENTS = ("negative", "neutral", "positive")


def _user_transcript(metric: JudgeMetric[Any], call: Call) -> str:
    if not any(turn.role is Role.USER and turn.text.strip() for turn in call.turns):
        raise NotScorable("the caller never spoke")
    return tagged(transcript=metric.transcript(call))


class UserSentimentParams(JudgeParams):
    """Which sentiments fail the metric."""

    fail_on: list[str] = Field(
        default_factory=lambda: ["negative"], description="Overall sentiments that count as a failure."
    )


@register
class UserSentiment(JudgeMetric[UserSentimentParams]):
    """The caller's sentiment overall, at the start and at the end, with quotes."""

    name = "user_sentiment"
    version = "1"
    params_model = UserSentimentParams
    description = (
        "The caller's sentiment (negative, neutral, positive) overall, at the start and at the end of the "
        "call, with quotes of the caller's words; fails on the sentiments listed in fail_on."
    )
    instructions = """
You read a recorded phone conversation between a voice agent and a caller and judge the CALLER's
sentiment: how the caller felt, from their words (frustration, repeating themselves, thanks, relief),
not the agent's politeness.

Give the caller's sentiment at the start of the call, at the end, and overall ("negative", "neutral" or
"positive"), a short reasoning, and quotes of the caller's words that show it, each with the number of
its turn (in square brackets).
"""
    reply_schema = object_schema(
        overall=enum_of(*SENTIMENTS),
        start=enum_of(*SENTIMENTS),
        end=enum_of(*SENTIMENTS),
        reasoning=STRING,
        quotes=QUOTES,
    )

    def data(self, call: Call, context: EvalContext) -> str:
        return _user_transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        overall = str(reply["overall"])
        evidence = cited_evidence(
            call,
            reply,
            "quotes",
            roles={Role.USER},
            start=reply["start"],
            end=reply["end"],
            reasoning=reply["reasoning"],
        )
        return Outcome(value=overall, passed=overall not in self.params.fail_on, evidence=evidence)


class CsatParams(JudgeParams):
    """Threshold of the CSAT estimate."""

    min_score: int = Field(default=3, ge=1, le=5, description="Lowest estimated 1–5 CSAT that passes.")


@register
class Csat(JudgeMetric[CsatParams]):
    """The satisfaction score (1–5) the caller would most likely give, with the reasons."""

    name = "csat"
    version = "1"
    params_model = CsatParams
    description = (
        "Estimated customer satisfaction, 1–5: the score the caller would most likely give after this "
        "call, judged from whether their need was met and how the conversation went."
    )
    instructions = """
You estimate the satisfaction score a caller would give after a recorded phone conversation with a
voice agent, on a 1–5 scale, as a customer-satisfaction survey asks it:
5 = need fully met, smooth conversation; 4 = need met with minor friction; 3 = partly met or tiresome;
2 = not met, or met only after real frustration; 1 = not met and the caller was badly served.

Judge from the caller's point of view: was the request handled, how often did they have to repeat
themselves, were they interrupted or misunderstood, how did the call end. Give a short reasoning and
quotes that support the score, each with the number of its turn (in square brackets).
"""
    reply_schema = object_schema(score=score_schema(1, 5), reasoning=STRING, quotes=QUOTES)

    def data(self, call: Call, context: EvalContext) -> str:
        return _user_transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        score = int(reply["score"])
        evidence = cited_evidence(call, reply, "quotes", reasoning=reply["reasoning"])
        return Outcome(value=score, passed=score >= self.params.min_score, evidence=evidence)
