"""Loop detection: an agent stuck saying the same thing, or calling the same tool, over and over.

Asking again once is normal on a phone line (the caller was not heard, a digit was missed), so one
repeat is allowed by default; a loop is a near-identical agent utterance, or an identical tool call,
occurring more than ``max_repeats`` times. An agent stuck on one slot often rewords the question each
time ("Could you repeat the account number?", "Sorry, what was the account number again?"), which a
word-sequence match misses; two questions also count as the same when they ask for the same thing: their
content words, once the re-ask wording (sorry, again, repeat, what was...) is set aside, nearly coincide.
"""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._text import TEXT_CACHE, content_tokens, quote, stem, tokens, turns_of

__all__ = ["LoopDetection", "LoopParams", "asked_slot"]

REASK_WORDS = frozenset(
    stem(word)
    for word in (
        "sorry again repeat say said tell give please what what's which how could once more one "
        "pardon missed catch get got hear heard understand didn't couldn't there that"
    ).split()
)
"""How a question is re-asked rather than what it asks for; set aside when comparing what two asks want."""

ASK_OPENERS = frozenset(
    "could can would will may please what what's which how where when who whose is are do does did".split()
)
"""First words of a question or request when speech-to-text left out the question mark."""


@lru_cache(maxsize=TEXT_CACHE)
def asked_slot(text: str) -> frozenset[str]:
    """What an agent question asks for: the stems of its content words, re-ask wording set aside.

    Empty when the turn is not a question or request (no question mark, no asking first word), so
    statements that share words ("Your account number is...") are never taken for a re-ask.
    """
    words = tokens(text)
    if not words or ("?" not in text and words[0] not in ASK_OPENERS):
        return frozenset()
    return frozenset(content_tokens(words)) - REASK_WORDS


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
    slot_overlap: float = Field(default=0.75, gt=0.0, le=1.0)
    """Share of content words (Jaccard) two questions must have in common to ask for the same slot."""
    min_slot_words: int = Field(default=2, ge=1)
    """Questions whose slot has fewer content words ("What was that?") never match by slot."""


@register
class LoopDetection(RuleMetric[LoopParams]):
    """Largest number of repeats of one agent utterance or tool call."""

    name = "loop_detection"
    version = "2"
    params_model = LoopParams
    description = (
        "Largest number of times the agent repeated a near-identical utterance, or asked for the same "
        "thing in other words (or made an identical tool call), beyond the first; passes while within "
        "the tolerated repeats."
    )

    def _same_slot(self, one: frozenset[str], other: frozenset[str]) -> bool:
        shared = len(one & other)
        return shared >= self.params.slot_overlap * (len(one) + len(other) - shared)

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        # (words of the cluster's first turn, what it asks for, its turn indices, the first turn's text)
        clusters: list[tuple[tuple[str, ...], frozenset[str], list[int], str]] = []
        for turn in turns_of(call, [Role.AGENT]):
            words = tokens(turn.text)
            if len(words) < self.params.min_words:
                continue
            slot = asked_slot(turn.text)
            if len(slot) < self.params.min_slot_words:
                slot = frozenset()
            matcher: SequenceMatcher[str] | None = None
            for first, first_slot, indices, _ in clusters:
                if slot and first_slot and self._same_slot(slot, first_slot):
                    indices.append(turn.index)
                    break
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
                clusters.append((words, slot, [turn.index], turn.text))
        repeated: list[JsonValue] = [
            {"turn_indices": list(indices), "repeats": len(indices) - 1, "quote": quote(text)}
            for _, _, indices, text in clusters
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
        utterance_max = max((len(indices) - 1 for _, _, indices, _ in clusters), default=0)
        tool_max = max((len(ids) - 1 for ids in tool_counts.values()), default=0)
        passed = utterance_max <= self.params.max_repeats and tool_max <= self.params.max_tool_repeats
        evidence: dict[str, JsonValue] = {
            "repeated_utterances": repeated,
            "repeated_tool_calls": tool_repeats,
            "max_utterance_repeats": utterance_max,
            "max_tool_repeats": tool_max,
        }
        return self.result(call, value=max(utterance_max, tool_max), passed=passed, evidence=evidence)
