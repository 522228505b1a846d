"""Loop detection: an agent stuck saying the same thing, or calling the same tool, over and over.

Asking again once is normal on a phone line (the caller was not heard, a digit was missed), so one
repeat is allowed by default; a loop is a near-identical agent utterance, or an identical tool call,
occurring more than ``max_repeats`` times.
"""

from __future__ import annotations

import json
from difflib import SequenceMatcher

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, Metric, MetricKind
from ..registry import register
from ._text import quote, tokens, turns_of

__all__ = ["LoopDetection", "LoopParams"]


class LoopParams(BaseModel):
    """What counts as the same utterance, and how many repeats are tolerated."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    similarity: float = Field(default=0.85, gt=0.0, le=1.0)
    """Word-sequence similarity (difflib ratio) at which two agent turns count as the same."""
    min_words: int = Field(default=4, ge=1)
    """Shorter turns ("Okay.", "Sure.") are never counted as repeats."""
    max_repeats: int = Field(default=1, ge=0)
    """Repeats of one utterance tolerated (1: saying it twice is a normal re-ask; three times is a loop)."""
    max_tool_repeats: int = Field(default=2, ge=0)
    """Identical tool calls (name and arguments) tolerated beyond the first."""


@register
class LoopDetection(Metric[LoopParams]):
    """Largest number of repeats of one agent utterance or tool call."""

    name = "loop_detection"
    version = "1"
    kind = MetricKind.DETERMINISTIC
    params_model = LoopParams
    description = (
        "Largest number of times the agent repeated a near-identical utterance (or an identical tool "
        "call) beyond the first; passes while within the tolerated repeats."
    )

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        # (words of the cluster's first turn, its turn indices, the first turn's text)
        clusters: list[tuple[tuple[str, ...], list[int], str]] = []
        for turn in turns_of(call, [Role.AGENT]):
            words = tokens(turn.text)
            if len(words) < self.params.min_words:
                continue
            matcher: SequenceMatcher[str] | None = None
            for first, indices, _ in clusters:
                # 2·min/(sum) bounds the ratio from the lengths alone: most pairs stop here, before the
                # matcher (which indexes this turn's words) is even built
                if 2 * min(len(first), len(words)) < self.params.similarity * (len(first) + len(words)):
                    continue
                if matcher is None:
                    matcher = SequenceMatcher(None, [], words, autojunk=False)
                matcher.set_seq1(first)
                if (
                    matcher.quick_ratio() >= self.params.similarity
                    and matcher.ratio() >= self.params.similarity
                ):
                    indices.append(turn.index)
                    break
            else:
                clusters.append((words, [turn.index], turn.text))
        repeated: list[JsonValue] = [
            {"turn_indices": list(indices), "repeats": len(indices) - 1, "quote": quote(text)}
            for _, indices, text in clusters
            if len(indices) > 1
        ]
        tool_counts: dict[str, list[str]] = {}
        for tc in call.tool_calls:
            key = f"{tc.name}({json.dumps(tc.arguments, sort_keys=True)})"
            tool_counts.setdefault(key, []).append(tc.id)
        tool_repeats: list[JsonValue] = [
            {"tool_call": key, "ids": list(ids), "repeats": len(ids) - 1}
            for key, ids in tool_counts.items()
            if len(ids) > 1
        ]
        utterance_max = max((len(indices) - 1 for _, indices, _ in clusters), default=0)
        tool_max = max((len(ids) - 1 for ids in tool_counts.values()), default=0)
        passed = utterance_max <= self.params.max_repeats and tool_max <= self.params.max_tool_repeats
        evidence: dict[str, JsonValue] = {
            "repeated_utterances": repeated,
            "repeated_tool_calls": tool_repeats,
            "max_utterance_repeats": utterance_max,
            "max_tool_repeats": tool_max,
        }
        return self.result(call, value=max(utterance_max, tool_max), passed=passed, evidence=evidence)
