"""Speech rate and talk ratio bounds.

Both are read from the audio results when the recording was analysed (what the caller heard) and
estimated from transcript timing otherwise; the evidence says which.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from ...audio.metrics import AGENT_TALK_RATIO, AGENT_WORDS_PER_MIN
from ...model.call import Call
from ...model.enums import Modality, Role
from ...model.metric import MetricResult
from ..base import EvalContext, Metric, RuleMetric
from ..registry import register
from ._stats import stored_number
from ._text import tokens, turns_of

__all__ = ["SpeechRate", "SpeechRateParams", "TalkRatio", "TalkRatioParams"]

_DIGITS = 3


class _Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    minimum: float | None
    maximum: float | None

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) is above maximum ({self.maximum})")
        return self


def _check(
    metric: Metric[Any], call: Call, value: float, bounds: _Bounds, evidence: dict[str, JsonValue]
) -> MetricResult:
    low = bounds.minimum is None or value >= bounds.minimum
    high = bounds.maximum is None or value <= bounds.maximum
    evidence["within"] = "below" if not low else "above" if not high else "yes"
    return metric.result(call, value=round(value, _DIGITS), passed=low and high, evidence=evidence)


B = TypeVar("B", bound=_Bounds)


class _BoundedSpeech(RuleMetric[B]):
    """A bounded agent-speech figure: the audio result named ``audio_score`` when the recording was
    analysed, else the estimate :meth:`from_transcript` makes from transcript timing."""

    audio_score: ClassVar[str]

    @abstractmethod
    def from_transcript(self, call: Call) -> tuple[float, dict[str, JsonValue]] | None:
        """The estimate and the figures behind it; None when the call has no timed agent speech."""

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        stored = stored_number(context.scores, self.audio_score)
        if stored is not None:
            return _check(self, call, stored, self.params, {"source": "audio"})
        estimate = self.from_transcript(call)
        if estimate is None:
            return self.result(call, value=None, evidence={"not_scorable": "no timed agent speech"})
        value, figures = estimate
        return _check(self, call, value, self.params, {"source": "transcript", **figures})


class SpeechRateParams(_Bounds):
    """Words per minute the agent should speak within."""

    minimum: float | None = Field(default=100.0, ge=0.0)
    """Lowest passing words per minute."""
    maximum: float | None = Field(default=200.0, ge=0.0)
    """Highest passing words per minute."""


@register
class SpeechRate(_BoundedSpeech[SpeechRateParams]):
    """The agent's words per minute of its own speaking time."""

    name = "speech_rate"
    modalities = frozenset({Modality.VOICE})
    version = "1"
    params_model = SpeechRateParams
    description = (
        "Agent words per minute of agent speaking time (audio when analysed, else transcript timing); "
        "passes within [minimum, maximum]."
    )

    audio_score = AGENT_WORDS_PER_MIN

    def from_transcript(self, call: Call) -> tuple[float, dict[str, JsonValue]] | None:
        words = 0
        speaking_s = 0.0
        for turn in turns_of(call, [Role.AGENT]):
            if turn.words:
                words += len(turn.words)
                speaking_s += max(0.0, turn.words[-1].end_s - turn.words[0].start_s)
            elif turn.end_s > turn.start_s:
                words += len(tokens(turn.text))
                speaking_s += turn.end_s - turn.start_s
        if words == 0 or speaking_s <= 0.0:
            return None
        return words / (speaking_s / 60.0), {"words": words, "speaking_s": round(speaking_s, _DIGITS)}


class TalkRatioParams(_Bounds):
    """Share of the call the agent should be speaking."""

    minimum: float | None = Field(default=0.2, ge=0.0, le=1.0)
    """Lowest passing share of the call spoken by the agent."""
    maximum: float | None = Field(default=0.8, ge=0.0, le=1.0)
    """Highest passing share of the call spoken by the agent."""


@register
class TalkRatio(_BoundedSpeech[TalkRatioParams]):
    """The agent's speaking time over the call's duration."""

    name = "talk_ratio"
    modalities = frozenset({Modality.VOICE})
    version = "1"
    params_model = TalkRatioParams
    description = (
        "Agent speaking time over call duration (audio when analysed, else transcript timing); "
        "passes within [minimum, maximum]."
    )

    audio_score = AGENT_TALK_RATIO

    def from_transcript(self, call: Call) -> tuple[float, dict[str, JsonValue]] | None:
        duration_s = call.effective_duration_s
        agent_s = sum(max(0.0, t.end_s - t.start_s) for t in turns_of(call, [Role.AGENT]))
        if duration_s <= 0.0 or agent_s <= 0.0:
            return None
        figures: dict[str, JsonValue] = {
            "agent_speech_s": round(agent_s, _DIGITS),
            "call_duration_s": round(duration_s, _DIGITS),
        }
        return min(1.0, agent_s / duration_s), figures
