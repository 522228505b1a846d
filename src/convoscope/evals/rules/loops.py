"""Loop detection: an agent stuck saying the same thing, or calling the same tool, over and over.

Asking again once is normal on a phone line (the caller was not heard, a digit was missed), so one
repeat is allowed by default; a loop is the same thing said more than ``max_repeats`` times without
progress. Two failure shapes decide the design:

* The repeat is often one sentence inside a longer turn ("Sorry about the wait. What's your order
  number? It's on the receipt."), so turns are compared sentence by sentence, never whole.
* An agent stuck on one slot rewords the question ("Could you read out your policy number?", "What's the
  policy number?"), so two questions also count as the same when what they ask for (their content words,
  re-ask and request wording set aside) nearly coincides, and statements when their content words do.

What a turn is *about* decides whether it repeats: its last question when it asks something (a courtesy
sentence before a new question is not a repeat), else its statements, all of which must have been said
before (a shared "Thanks for your patience." before a new status is progress). A turn that says
something new is progress, and by default restarts the count, so a slot asked again after other
questions were answered is not a loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._sentences import Sentence, overlap, sentence_similarity, split_sentences
from ._text import quote, turns_of

__all__ = ["LoopDetection", "LoopParams", "focus_of"]


class LoopParams(BaseModel):
    """What counts as the same sentence, and how many repeats are tolerated."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    similarity: float = Field(default=0.7, gt=0.0, le=1.0)
    """Share of content-word stems (of the longer sentence) two agent sentences must share to be the same."""
    min_words: int = Field(default=4, ge=1)
    """Shorter sentences ("Okay.", "Got it.") are never counted as repeats."""
    max_repeats: int = Field(default=1, ge=0)
    """Repeats of one sentence tolerated (1: saying it twice is a normal re-ask; three times is a loop)."""
    max_tool_repeats: int = Field(default=2, ge=0)
    """Identical tool calls (name and arguments) tolerated beyond the first."""
    slot_overlap: float = Field(default=0.75, gt=0.0, le=1.0)
    """Share of the smaller slot's content words two questions must share to ask for the same thing."""
    min_slot_words: int = Field(default=2, ge=1)
    """Questions whose slot has fewer content words ("What was that?") never match by slot."""
    reset_on_progress: bool = True
    """A turn that says something new restarts the count of every earlier sentence."""
    containment: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of a statement's content (courtesy set aside) found in one earlier turn that makes it a repeat
    of what that turn said ("As I said, your parcel is with the courier" after two sentences saying so)."""
    min_core_words: int = Field(default=3, ge=1)
    """Statements with fewer content words (courtesy set aside) never match by containment."""


def focus_of(sentences: list[Sentence]) -> list[Sentence]:
    """What a turn is about: its last real question, else its main statement, else its open offers.

    A courtesy sentence before a new question, a hint after the question, or an offer of more help after
    a completed request is not what the turn says, so it is never what repeats. Among statements the main
    one is the one that says most (courtesy and filler set aside): an apology or a short add-on around a
    repeated refusal or status does not make the turn new.
    """
    asks = [s for s in sentences if s.asks and not s.is_open_offer]
    if asks:
        return asks[-1:]
    said = [s for s in sentences if not s.asks and not s.is_courtesy]
    if said:
        return [max(said, key=lambda s: len(s.core))]
    statements = [s for s in sentences if not s.asks]
    return statements or sentences


@dataclass
class _Cluster:
    """One thing the agent said, with where it was said again."""

    members: list[tuple[int, Sentence]]
    context: set[str] = field(default_factory=set)
    """Content (courtesy set aside) of every turn it was said in."""
    run: int = 1
    """Times said since the last progress."""
    longest: int = 1
    """Longest such run."""
    repeats_at: list[int] = field(default_factory=list)


@register
class LoopDetection(RuleMetric[LoopParams]):
    """Largest number of repeats of one agent sentence or tool call, without progress."""

    name = "loop_detection"
    version = "4"
    params_model = LoopParams
    description = (
        "Largest number of times, without progress, the agent repeated a sentence (alone or inside a "
        "longer turn) or asked for the same thing in other words, or made an identical tool call, beyond "
        "the first; passes while within the tolerated repeats."
    )

    def _same(self, one: Sentence, other: Sentence) -> bool:
        minimum = self.params.min_slot_words
        if one.asks and other.asks and len(one.slot) >= minimum and len(other.slot) >= minimum:
            # two questions that name what they ask for are the same only when that is the same: "spell
            # your last name" and "spell your first name" share most words but ask different things
            return overlap(one.slot, other.slot) >= self.params.slot_overlap
        if min(len(one.core), len(other.core)) >= self.params.min_core_words:
            # what the two say, with the apologies around it set aside ("I hear you. Our system is down")
            return sentence_similarity(one.core, other.core) >= self.params.similarity
        return sentence_similarity(one.content, other.content) >= self.params.similarity

    def _contained(self, sentence: Sentence, cluster: _Cluster) -> bool:
        """A statement that says nothing the turns of ``cluster`` did not say already."""
        core = sentence.core
        if sentence.asks or len(core) < self.params.min_core_words:
            return False
        return len(core & cluster.context) / len(core) >= self.params.containment

    def _match(self, sentence: Sentence, clusters: list[_Cluster]) -> _Cluster | None:
        for cluster in clusters:
            if any(self._same(sentence, member) for _, member in cluster.members):
                return cluster
        for cluster in clusters:
            if self._contained(sentence, cluster):
                return cluster
        return None

    def _utterances(self, call: Call) -> list[_Cluster]:
        clusters: list[_Cluster] = []
        for turn in turns_of(call, [Role.AGENT]):
            said = [s for s in split_sentences(turn.text) if len(s.words) >= self.params.min_words]
            focus = focus_of(said)
            if not focus:
                continue
            context = {stem for s in said for stem in s.core}
            matched = [self._match(sentence, clusters) for sentence in focus]
            known = [(cluster, s) for cluster, s in zip(matched, focus, strict=True) if cluster is not None]
            if len(known) == len(focus):  # nothing new: every sentence the turn is about was said before
                for cluster, sentence in known:
                    if turn.index in cluster.repeats_at:
                        continue  # two sentences of one turn repeat the same thing: one repeat
                    cluster.members.append((turn.index, sentence))
                    cluster.context |= context
                    cluster.repeats_at.append(turn.index)
                    cluster.run += 1
                    cluster.longest = max(cluster.longest, cluster.run)
                continue
            if self.params.reset_on_progress:
                for cluster in clusters:
                    cluster.run = 0
            for match, sentence in zip(matched, focus, strict=True):
                if match is None:
                    clusters.append(_Cluster(members=[(turn.index, sentence)], context=set(context)))
        return clusters

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        clusters = self._utterances(call)
        repeated: list[JsonValue] = [
            {
                "turn_indices": [index for index, _ in cluster.members],
                "repeats": cluster.longest - 1,
                "quote": quote(cluster.members[0][1].text),
                "sentences": [
                    {"turn_index": index, "sentence": quote(sentence.text)}
                    for index, sentence in cluster.members
                ],
            }
            for cluster in clusters
            if len(cluster.members) > 1
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
        utterance_max = max((cluster.longest - 1 for cluster in clusters), default=0)
        tool_max = max((len(ids) - 1 for ids in tool_counts.values()), default=0)
        passed = utterance_max <= self.params.max_repeats and tool_max <= self.params.max_tool_repeats
        evidence: dict[str, JsonValue] = {
            "repeated_utterances": repeated,
            "repeated_tool_calls": tool_repeats,
            "max_utterance_repeats": utterance_max,
            "max_tool_repeats": tool_max,
        }
        return self.result(call, value=max(utterance_max, tool_max), passed=passed, evidence=evidence)
