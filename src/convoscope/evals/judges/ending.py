"""How the call ended: whether the ending was appropriate, and whether a voicemail was reached."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...model.call import Call
from ..base import EvalContext
from ..registry import register
from .base import (
    BOOLEAN,
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

__all__ = ["ENDINGS", "AppropriateTermination", "VoicemailDetection", "VoicemailParams", "VOICEMAIL_HANDLING"]

ENDINGS = (
    "goal_completed",
    "caller_ended",
    "transferred",
    "voicemail",
    "agent_cut_off",
    "caller_abandoned",
    "stuck",
    "other",
)
VOICEMAIL_HANDLING = ("not_voicemail", "left_message", "hung_up", "kept_talking")


def _transcript(metric: JudgeMetric[Any], call: Call) -> str:
    if not call.turns:
        raise NotScorable("the call has no turns")
    return tagged(transcript=metric.transcript(call))


def _evidence(reply: Mapping[str, Any], call: Call, **extra: Any) -> dict[str, Any]:
    return cited_evidence(call, reply, "quotes", **extra, reasoning=reply["reasoning"])


@register
class AppropriateTermination(JudgeMetric[JudgeParams]):
    """Whether the call ended at the right moment and in the right way."""

    name = "appropriate_termination"
    version = "1"
    description = (
        "Whether the call ended appropriately: after the caller's need was handled, by a transfer when "
        "needed, or by the caller; not cut off by the agent, abandoned in frustration or stuck in a loop."
    )
    instructions = """
You judge how a recorded phone conversation between a voice agent and a caller ended.

An ending is appropriate when the caller's need was handled (or properly transferred) and the call was
closed politely, or when the caller chose to end it, or when a voicemail was handled correctly. It is
not appropriate when the agent hung up or said goodbye while the caller still needed something, when
the caller gave up in frustration, when the conversation was stuck in a loop at the end, or when the
agent kept the call going after it was clearly over.

Classify the ending, say whether it was appropriate, give a short reasoning and quote the final
exchange, each quote with the number of its turn (in square brackets).
"""
    reply_schema = object_schema(
        appropriate=BOOLEAN, ending=enum_of(*ENDINGS), reasoning=STRING, quotes=QUOTES
    )

    def data(self, call: Call, context: EvalContext) -> str:
        return _transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        appropriate = bool(reply["appropriate"])
        return Outcome(
            value=appropriate, passed=appropriate, evidence=_evidence(reply, call, ending=reply["ending"])
        )


class VoicemailParams(JudgeParams):
    """Which ways of handling a voicemail fail the metric."""

    bad_handling: list[str] = Field(
        default_factory=lambda: ["kept_talking"],
        description="Handlings of a reached voicemail that fail (left_message, hung_up, kept_talking).",
    )


@register
class VoicemailDetection(JudgeMetric[VoicemailParams]):
    """Whether the call reached a voicemail or answering machine, and how the agent handled it."""

    name = "voicemail_detection"
    version = "1"
    params_model = VoicemailParams
    description = (
        "True when the call reached a voicemail or answering machine instead of a person, with how the "
        "agent handled it; fails on the handlings in bad_handling, no pass/fail when a person answered."
    )
    instructions = """
You decide whether a recorded phone call reached a voicemail box or an answering machine instead of a
live person, and how the agent handled it.

Signs of a voicemail: a greeting that names a mailbox or asks to leave a message, a beep, a carrier's
recorded message, a one-sided greeting that never responds to the agent. A person who answers briefly
is not a voicemail.

If it was a voicemail, say whether the agent left a message, hung up, or kept talking as if a person
were there; if not, the handling is "not_voicemail". Give a short reasoning and quotes, each with the
number of its turn (in square brackets).
"""
    reply_schema = object_schema(
        voicemail=BOOLEAN, handling=enum_of(*VOICEMAIL_HANDLING), reasoning=STRING, quotes=QUOTES
    )

    def data(self, call: Call, context: EvalContext) -> str:
        return _transcript(self, call)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        voicemail = bool(reply["voicemail"])
        handling = str(reply["handling"])
        passed = handling not in self.params.bad_handling if voicemail else None
        return Outcome(value=voicemail, passed=passed, evidence=_evidence(reply, call, handling=handling))
