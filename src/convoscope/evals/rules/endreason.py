"""End-reason classification: how the call ended, in a handful of classes an operator acts on.

The source's normalised end reason decides when it is known; when it is not, the transcript and tool
calls are read for the tell-tale signs of a transfer or a voicemail greeting.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...model.call import Call, Turn
from ...model.enums import EndReason, Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._text import quote, turns_of
from .tools import tool_call_failed

__all__ = ["EndClass", "EndReasonClassification", "EndReasonParams", "classify_end"]


class EndClass(StrEnum):
    """The classes an end reason is reported in."""

    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"
    ERROR = "error"
    TIMEOUT = "timeout"
    NOT_CONNECTED = "not_connected"
    OTHER = "other"
    UNKNOWN = "unknown"


_FROM_SOURCE: dict[EndReason, EndClass] = {
    EndReason.TRANSFER: EndClass.TRANSFER,
    EndReason.VOICEMAIL: EndClass.VOICEMAIL,
    EndReason.USER_HANGUP: EndClass.HANGUP,
    EndReason.AGENT_HANGUP: EndClass.HANGUP,
    EndReason.ERROR: EndClass.ERROR,
    EndReason.DIAL_FAILED: EndClass.ERROR,
    EndReason.SILENCE_TIMEOUT: EndClass.TIMEOUT,
    EndReason.MAX_DURATION: EndClass.TIMEOUT,
    EndReason.NO_ANSWER: EndClass.NOT_CONNECTED,
    EndReason.BUSY: EndClass.NOT_CONNECTED,
    EndReason.IVR: EndClass.OTHER,
    EndReason.OTHER: EndClass.OTHER,
}

VOICEMAIL_CUES = re.compile(
    r"\b(?:leave (?:a|your) (?:message|name and number)|after the (?:tone|beep)|not available to take "
    r"your call|voice ?mail(?:box)?|record your message|mailbox is full)\b",
    re.IGNORECASE,
)
TRANSFER_CUES = re.compile(
    r"\b(?:transferring you|connecting you (?:to|with)|putting you through|let me transfer you)\b",
    re.IGNORECASE,
)


class EndReasonParams(BaseModel):
    """Which classes fail the call."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    fail_on: list[EndClass] = Field(default_factory=lambda: [EndClass.ERROR])
    """End classes that fail the call."""
    infer_from_transcript: bool = True
    """When the source gave no end reason, read the transcript and tool calls for one."""


def _from_turn(turn: Turn) -> dict[str, JsonValue]:
    return {"from": "transcript", "turn_index": turn.index, "quote": quote(turn.text)}


def classify_end(call: Call, *, infer: bool = True) -> tuple[EndClass, dict[str, JsonValue]]:
    """The call's end class and what decided it."""
    if call.end_reason in _FROM_SOURCE:
        return _FROM_SOURCE[call.end_reason], {"from": "end_reason", "end_reason": call.end_reason.value}
    if not infer:
        return EndClass.UNKNOWN, {"from": "end_reason", "end_reason": call.end_reason.value}
    for turn in turns_of(call, [Role.USER]):
        if VOICEMAIL_CUES.search(turn.text):
            return EndClass.VOICEMAIL, _from_turn(turn)
    transfers = [tc for tc in call.tool_calls if "transfer" in tc.name.lower() and not tool_call_failed(tc)]
    if transfers:
        return EndClass.TRANSFER, {"from": "tool_calls", "tool_call": transfers[-1].id}
    agent_turns = list(turns_of(call, [Role.AGENT]))
    if agent_turns and TRANSFER_CUES.search(agent_turns[-1].text):
        return EndClass.TRANSFER, _from_turn(agent_turns[-1])
    if call.turns:
        return EndClass.HANGUP, {"from": "transcript", "reason": "the conversation ran and ended"}
    return EndClass.UNKNOWN, {"from": "end_reason", "end_reason": call.end_reason.value}


@register
class EndReasonClassification(RuleMetric[EndReasonParams]):
    """How the call ended: transfer, voicemail, hang-up, error, timeout, not connected, other."""

    name = "end_reason"
    version = "1"
    params_model = EndReasonParams
    description = (
        "The call's end class (transfer, voicemail, hangup, error, timeout, not_connected, other, "
        "unknown) from the source's end reason, else inferred from the transcript; fails on fail_on."
    )

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        label, evidence = classify_end(call, infer=self.params.infer_from_transcript)
        if call.end_reason_raw is not None:
            evidence["end_reason_raw"] = call.end_reason_raw
        passed = label not in self.params.fail_on
        return self.result(call, value=label.value, passed=passed, evidence=evidence)
