"""Loop detection: an agent stuck saying the same thing, or calling the same tool, over and over.

Asking again once is normal on a phone line (the caller was not heard, a digit was missed), so one
repeat is allowed by default; a loop is the same thing said more than ``max_repeats`` times without
progress. The failure shapes decide the design:

* The repeat is often one sentence inside a longer turn ("Sorry about the wait. What's your order
  number? Do you have it handy?"), so turns are compared sentence by sentence, never whole, and a short
  hint question after the real one is not what the turn asks.
* An agent stuck on one slot rewords the question ("Could you read out your policy number?", "What's the
  policy number?"), so two questions also count as the same when what they ask for (their content words,
  re-ask and request wording set aside) nearly coincides, and statements when their content words do.
* It also changes the nouns ("the address of the property", "the service address", "where should we
  send the technician?") or rewords a refusal or status ("I can't do that", "that's outside what I can
  do"), which share no words: a small table of slot concepts and statement acts
  (:mod:`.loop_concepts`, extensible through the parameters) says they are one prompt.
* It cycles (asks A, then B, then A, then B...): a prompt said in between that is itself said again
  later is part of the loop, not progress.

What a turn is *about* decides whether it repeats: its last question that names what it asks for (a
courtesy sentence before a new question is not a repeat), else its statements' main one (a shared
"Thanks for your patience." before a new status is progress). A turn that says something new is
progress, and by default restarts the count, so a slot asked again after other questions were answered
is not a loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._sentences import (
    OPEN_OFFER_WORDS,
    REASK_WORDS,
    Sentence,
    light_stem,
    overlap,
    sentence_similarity,
    split_sentences,
)
from ._text import quote, turns_of
from .loop_concepts import (
    SLOT_CONCEPTS,
    STATEMENT_ACTS,
    ConceptTable,
    clauses,
    contrasted,
    has_hangul,
    spoken_form,
)

__all__ = ["LoopDetection", "LoopParams", "focus_of", "sentences_of"]

_NEED_WORDS = frozenset(light_stem(w) for w in "need require without must".split())
"""A statement naming a slot with one of these ("Without the reg I can't look it up") asks for it."""

OFFER_CUES: tuple[tuple[str, ...], ...] = (
    ("would", "like"), ("do", "want"), ("shall", "i"), ("want", "me"), ("like", "me"), ("interested",),
    ("should", "i"), ("can", "i", "for", "you"),
)  # fmt: skip
"""Words of an offer ("Would you like me to add breakfast?", "Shall I include it?")."""

OFFER_WORDS = frozenset(
    light_stem(w)
    for w in (
        "like want add include put book sign set arrange interested shall should would me for you then "
        "room stay booking reservation order account appointment policy plan free go ahead"
    ).split()
)
"""The offering and what it is added to, set aside to compare what two offers offer."""

_LEADING = frozenset(
    "and or also then so okay ok now right great lovely perfect brilliant thanks thank sorry cheers "
    "yeah yes cool fine".split()
)
_SUBJECTS = frozenset("i you we they he she it is are was were be been will would can".split())
ELLIPTIC_WORDS = 8
"""An unpunctuated clause this short that is only a slot ("and the first line of your address") asks."""

ACT_SETTING = frozenset(
    light_stem(w)
    for w in (
        "phone line call over here today now there yeah one sir madam right really actually just myself "
        "personally something anything that this it for you on this"
    ).split()
)
"""Where or how an act is done ("over the phone", "on this line"), not what it is about: set aside from
its object."""

SLOT_FILLERS = frozenset(
    light_stem(w)
    for w in (
        "roughly rough talking think ballpark approximately about exactly after lovely perfect great "
        "brilliant"
    ).split()
)
"""Hedges around what a question asks for ("roughly what sort of budget are we talking"), set aside from
its slot."""

CHOICE_OPTIONS = 2
"""Two choice questions ("petrol, diesel or electric?") offering at least this many of the same options
ask the same thing."""

REPEATED_ACTS = frozenset({"checking", "pending", "system_down", "refusal"})
"""Statement acts whose short forms still count as said ("Still checking.", "Not yet.")."""

PREAMBLE_ACTS = frozenset({"checking"})
"""Acts that introduce what a turn says ("Let me check. Your claim was paid."), never its main statement
when another statement does an act or says more."""

VOLATILE_ARGUMENTS = frozenset(
    "attempt retry retries retry_count request_id idempotency_key timestamp nonce".split()
)
"""Tool-call arguments that change on each retry of one call, so they do not make it another call."""


_CONTRAST_BREAK = re.compile(r"(?<=\w),\s+(?=but\s+\w+\s+\w+)", re.IGNORECASE)
"""Where a sentence turns ("I can't see that, but engineers carry a spare"): two statements, the second
new content of its own."""


@lru_cache(maxsize=4096)
def sentences_of(text: str) -> tuple[Sentence, ...]:
    """The sentences of an agent turn, as said: speech-to-text run-ons split into clauses and read in
    their spoken form (:func:`.loop_concepts.spoken_form`), each kept with its words as said."""
    out: list[Sentence] = []
    for piece in (part for clause in clauses(text) for part in _CONTRAST_BREAK.split(clause)):
        found = split_sentences(spoken_form(piece))
        if len(found) == 1:
            out.append(replace(found[0], text=piece.strip()))
        else:
            out.extend(found)
    return tuple(out)


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
    """Questions whose slot has fewer content words ("What was that?") never match by slot words, and a
    question that short and naming no slot concept ("Do you have it handy?") is a hint, not what its turn
    asks."""
    reset_on_progress: bool = True
    """A turn that says something new restarts the count of every earlier sentence."""
    containment: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of a statement's content (courtesy set aside) found in one earlier turn that makes it a repeat
    of what that turn said ("As I said, your parcel is with the courier" after two sentences saying so)."""
    min_core_words: int = Field(default=3, ge=1)
    """Statements with fewer content words (courtesy set aside) never match by containment."""
    slot_concepts: dict[str, list[str]] = Field(default_factory=dict)
    """Slot concepts added to the built-in table (a built-in name adds phrasings to it): name to
    phrasings, each a few words in order ("where send", "number bill"; "!word" excludes sentences holding
    the word). Two questions naming one concept ask for the same thing, whatever their other words."""
    statement_acts: dict[str, list[str]] = Field(default_factory=dict)
    """Statement acts added to the built-in table (refusal, system_down, pending), in the same form: two
    statements doing one act are the same unless they name different objects."""
    act_object_overlap: float = Field(default=0.5, gt=0.0, le=1.0)
    """Share of the smaller object two statements of one act must share when both name one of at least
    ``min_object_words`` words ("I can't raise your limit" / "I can't waive the fee" are two answers)."""
    min_object_words: int = Field(default=2, ge=1)
    """An act's object shorter than this ("I can't do *that*") matches any object of the act."""
    cycles: bool = True
    """A prompt said between two sayings of another that is itself said again later (A, B, A, B, A) is
    part of a cycle, not progress; off, any new prompt in between restarts the count."""


def focus_of(
    sentences: list[Sentence],
    names_slot: Callable[[Sentence], bool] | None = None,
    acts: Callable[[Sentence], frozenset[str]] | None = None,
    names_concept: Callable[[Sentence], bool] | None = None,
) -> list[Sentence]:
    """What a turn is about: its last real question, else its main statement, else its open offers.

    A courtesy sentence before a new question, a hint after the question ("Do you have it handy?": a
    question that ``names_slot`` says asks for nothing in particular), or an offer of more help after a
    completed request is not what the turn says, so it is never what repeats. Among statements the main
    one is the one that says most (courtesy and filler set aside): an apology or a short add-on around a
    repeated refusal or status does not make the turn new. A statement doing an act (``acts``: a refusal,
    a status, something pending) is the main one over statements doing none ("so the results for Bella,
    they're still with the lab"): both are what the turn says, so it repeats only when both were said
    before; a hold ("let me check") is what it says only when nothing else is.
    """
    asks = [
        s
        for s in sentences
        if s.asks and (not _open_offer(s) or (names_concept is not None and names_concept(s)))
    ]
    if names_slot is not None:
        asks = [s for s in asks if names_slot(s)] or asks
    if asks:
        return asks[-1:]
    said = [s for s in sentences if not s.asks and not s.is_courtesy]
    acting = [s for s in sentences if not s.asks and acts is not None and acts(s) - PREAMBLE_ACTS]
    if said:
        main = max(said, key=lambda s: len(s.core))
        if not acting or main in acting:
            return [main]
        return [max(acting, key=lambda s: len(s.core)), main]
    holding = [s for s in sentences if not s.asks and acts is not None and acts(s)]
    if holding:
        return holding[-1:]
    statements = [s for s in sentences if not s.asks]
    return statements or sentences


_OPEN_OFFER_EXTRA = frozenset(light_stem(w) for w in "next".split())


def _open_offer(sentence: Sentence) -> bool:
    """An offer of more help ("Is there anything else?", "What can I do for you next?")."""
    return sentence.is_open_offer or (
        sentence.asks and bool(sentence.slot) and sentence.slot <= OPEN_OFFER_WORDS | _OPEN_OFFER_EXTRA
    )


def _frozen(extra: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((name, tuple(phrasings)) for name, phrasings in extra.items()))


@lru_cache(maxsize=64)
def _table(kind: str, extra: tuple[tuple[str, tuple[str, ...]], ...]) -> ConceptTable:
    """A compiled concept table, shared by every metric instance with the same extensions (a metric is
    built per call, and compiling the tables costs more than evaluating a call)."""
    return ConceptTable(SLOT_CONCEPTS if kind == "slots" else STATEMENT_ACTS, dict(extra))


@dataclass
class _Cluster:
    """One thing the agent said, with where it was said again."""

    members: list[tuple[int, Sentence, str]]
    """Turn index, sentence, and why it is the same as an earlier member ("first" for the first)."""
    positions: list[int] = field(default_factory=list)
    """Positions, among the agent's turns, where it was what the turn was about."""
    context: set[str] = field(default_factory=set)
    """Content (courtesy set aside) of every turn it was said in."""
    longest: int = 1
    """Longest run of sayings without progress."""
    run_start: int = 0
    """Index in ``positions`` where the longest run starts."""
    cycle_with: list[_Cluster] = field(default_factory=list)
    """Other prompts said in between within the longest run, themselves said again (a cycle)."""


@register
class LoopDetection(RuleMetric[LoopParams]):
    """Largest number of repeats of one agent sentence or tool call, without progress."""

    name = "loop_detection"
    version = "7"
    params_model = LoopParams
    description = (
        "Largest number of times, without progress, the agent repeated a sentence (alone or inside a "
        "longer turn), asked for the same slot or made the same refusal or status statement in other "
        "words, or cycled through the same prompts, or made an identical tool call, beyond the first; "
        "passes while within the tolerated repeats."
    )

    @cached_property
    def _slots(self) -> ConceptTable:
        return _table("slots", _frozen(self.params.slot_concepts))

    @cached_property
    def _acts(self) -> ConceptTable:
        return _table("acts", _frozen(self.params.statement_acts))

    def _counts(self, sentence: Sentence) -> bool:
        """Long enough to count, or a short question naming a slot ("What's your postcode?"); a Korean
        sentence counts by its syllables (its words carry their particles), two to a word."""
        if len(sentence.words) >= self.params.min_words:
            return True
        if has_hangul(sentence.text) and len(sentence.text.replace(" ", "")) >= 2 * self.params.min_words:
            return True
        if sentence.asks:
            return bool(self._slots.concepts(sentence.phrase))
        if self._choice(sentence, [w for w in sentence.words if w not in _LEADING][:1]):
            return True
        # a short hold, status or refusal ("Still checking.", "One moment please.") is the act all the same
        return len(sentence.words) >= 2 and bool(self._acts.concepts(sentence.phrase) & REPEATED_ACTS)

    def _read(self, sentence: Sentence) -> Sentence:
        """A statement that names a slot and a need ("Without the reg I can't look it up, so I need it"),
        or an unpunctuated bare slot ("and your date of birth", as speech-to-text writes "And your date
        of birth?"), asks for that slot."""
        if sentence.asks:
            return sentence
        head = [w for w in sentence.words if w not in _LEADING][:1]
        if self._choice(sentence, head):
            return replace(sentence, asks=True, slot=sentence.content - REASK_WORDS)
        if not self._slots.concepts(sentence.phrase):
            return sentence
        bare_slot = (
            sentence.text[-1:].isalnum()
            and head in (["your"], ["the"])
            and len(sentence.words) <= ELLIPTIC_WORDS
        )
        if not bare_slot and not _NEED_WORDS & sentence.content:
            return sentence
        return replace(sentence, asks=True, slot=sentence.content - REASK_WORDS)

    @staticmethod
    def _choice(sentence: Sentence, head: list[str]) -> bool:
        """An unpunctuated short clause of options ("and petrol diesel or electric"), as speech-to-text
        writes a choice question: no subject or verb, only what to choose between."""
        words = sentence.words
        return (
            sentence.text[-1:].isalnum()
            and "or" in words[1:-1]
            and len(words) <= ELLIPTIC_WORDS
            and not _SUBJECTS & set(words)
            and head not in (["or"], [])
        )

    @staticmethod
    def _offer(sentence: Sentence) -> frozenset[str] | None:
        """What an offer offers (offering words and what it is added to set aside), or None."""
        words = sentence.words
        for cue in OFFER_CUES:
            if all(w in words for w in cue):
                return sentence.slot - OFFER_WORDS
        return None

    def _act_of(self, sentence: Sentence) -> frozenset[str]:
        return self._acts.concepts(sentence.phrase)

    def _names_concept(self, sentence: Sentence) -> bool:
        return bool(self._slots.concepts(sentence.phrase))

    def _names_slot(self, sentence: Sentence) -> bool:
        return len(sentence.slot) >= self.params.min_slot_words or bool(self._slots.concepts(sentence.phrase))

    def _same(self, one: Sentence, other: Sentence) -> str | None:
        """Why ``one`` says what ``other`` said, or None."""
        if one.values and other.values and one.values != other.values:
            return None  # a read-back of another value ("... one two three" / "... one three two")
        minimum = self.params.min_slot_words
        if one.asks and other.asks:
            mine, theirs = self._slots.concepts(one.phrase), self._slots.concepts(other.phrase)
            if mine and theirs:
                # two questions naming a slot concept ask the same only for the same concept, and not
                # when they name two sides of it ("departure date" / "return date")
                shared = mine & theirs
                if (mine <= theirs or theirs <= mine) and not contrasted(
                    frozenset(one.phrase), frozenset(other.phrase)
                ):
                    return "slot: " + ", ".join(sorted(shared))
                return None
            mine_offer, their_offer = self._offer(one), self._offer(other)
            if mine_offer and their_offer:
                # one offer made again in other words ("add breakfast to your stay" / "include breakfast")
                return "same offer" if overlap(mine_offer, their_offer) >= self.params.slot_overlap else None
            mine_slot, their_slot = one.slot - SLOT_FILLERS, other.slot - SLOT_FILLERS
            apart = contrasted(frozenset(one.phrase), frozenset(other.phrase))
            if "or" in one.words and "or" in other.words and len(mine_slot & their_slot) >= CHOICE_OPTIONS:
                return None if apart else "same choice"  # "new or used?" / "are you after new or used?"
            if len(mine_slot) >= minimum and len(their_slot) >= minimum:
                # two questions that name what they ask for are the same only when that is the same: "spell
                # your last name" and "spell your first name" share most words but ask different things
                return "slot words" if overlap(mine_slot, their_slot) >= self.params.slot_overlap else None
            if not apart and (self._narrowed(mine_slot, their_slot) or self._narrowed(their_slot, mine_slot)):
                return "slot words"
        if not one.asks and not other.asks:
            act = self._same_act(one, other)
            if act is not None:
                return act
        if min(len(one.core), len(other.core)) >= self.params.min_core_words:
            # what the two say, with the apologies around it set aside ("I hear you. Our system is down")
            if sentence_similarity(one.core, other.core) >= self.params.similarity:
                return "same words"
            return None
        if sentence_similarity(one.content, other.content) >= self.params.similarity:
            return "same words"
        return None

    @staticmethod
    def _narrowed(short: frozenset[str], long: frozenset[str]) -> bool:
        """A one-word slot inside a two-word one ("what's the reading" / "what's the meter reading")."""
        return len(short) == 1 and len(long) <= 2 and short < long and len(next(iter(short))) >= 4

    def _same_act(self, one: Sentence, other: Sentence) -> str | None:
        """The act two statements both do (a refusal, a system down), unless they name other objects."""
        shared = self._acts.concepts(one.phrase) & self._acts.concepts(other.phrase)
        if not shared:
            return None
        mine = one.core - self._acts.vocabulary - ACT_SETTING
        theirs = other.core - self._acts.vocabulary - ACT_SETTING
        least = self.params.min_object_words
        if (
            len(mine) >= least
            and len(theirs) >= least
            and overlap(mine, theirs) < self.params.act_object_overlap
        ):
            return None
        return "act: " + ", ".join(sorted(shared))

    def _contained(self, sentence: Sentence, cluster: _Cluster) -> bool:
        """A statement that says nothing the turns of ``cluster`` did not say already."""
        core = sentence.core
        if sentence.asks or len(core) < self.params.min_core_words:
            return False
        if sentence.values and all(sentence.values != member.values for _, member, _ in cluster.members):
            return False  # a read-back of another value says something new
        return len(core & cluster.context) / len(core) >= self.params.containment

    def _match(self, sentence: Sentence, clusters: list[_Cluster]) -> tuple[_Cluster, str] | None:
        for cluster in clusters:
            if sentence.asks and any(
                member.asks and contrasted(frozenset(sentence.phrase), frozenset(member.phrase))
                for _, member, _ in cluster.members
            ):
                continue  # "the cat's name" is not the name asked for as "the dog's name", whatever else
            for _, member, _ in cluster.members:
                why = self._same(sentence, member)
                if why is not None:
                    return cluster, why
        for cluster in clusters:
            if self._contained(sentence, cluster):
                return cluster, "contained in an earlier turn"
        return None

    def _utterances(self, call: Call) -> list[_Cluster]:
        clusters: list[_Cluster] = []
        introduced: list[list[_Cluster]] = []
        """Per agent turn, the clusters it said first (a turn that says something new)."""
        for position, turn in enumerate(turns_of(call, [Role.AGENT])):
            introduced.append([])
            said = [self._read(s) for s in sentences_of(turn.text) if self._counts(s)]
            focus = focus_of(said, self._names_slot, self._act_of, self._names_concept)
            if not focus:
                continue
            context = {stem for s in said for stem in s.core}
            matched = [self._match(sentence, clusters) for sentence in focus]
            if all(found is not None for found in matched):  # nothing new: all the turn is about was said
                for found, sentence in zip(matched, focus, strict=True):
                    assert found is not None
                    cluster, why = found
                    if position in cluster.positions:
                        continue  # two sentences of one turn repeat the same thing: one repeat
                    cluster.members.append((turn.index, sentence, why))
                    cluster.context |= context
                    cluster.positions.append(position)
                continue
            for found, sentence in zip(matched, focus, strict=True):
                if found is None:
                    cluster = _Cluster(members=[(turn.index, sentence, "first")], context=set(context))
                    cluster.positions.append(position)
                    clusters.append(cluster)
                    introduced[position].append(cluster)
        for cluster in clusters:
            self._runs(cluster, introduced)
        return clusters

    def _runs(self, cluster: _Cluster, introduced: list[list[_Cluster]]) -> None:
        """The longest run of ``cluster``'s sayings with no progress between two of them.

        Progress is a turn that said something new, unless (with ``cycles``) each new thing it said is
        said again after the later saying: then it is a prompt the agent cycles through, not a step on.
        """
        run, start = 1, 0
        between: list[_Cluster] = []
        positions = cluster.positions
        for i in range(1, len(positions)):
            before, after = positions[i - 1], positions[i]
            new = [other for at in range(before + 1, after) for other in introduced[at]]
            cycling = [other for other in new if self.params.cycles and other.positions[-1] > after]
            if self.params.reset_on_progress and len(cycling) < len(new):
                run, start, between = 1, i, []
                continue
            run, between = run + 1, between + cycling
            if run > cluster.longest:
                cluster.longest, cluster.run_start, cluster.cycle_with = run, start, list(between)

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        clusters = self._utterances(call)
        repeated: list[JsonValue] = []
        for cluster in clusters:
            if len(cluster.members) < 2:
                continue
            run = cluster.members[cluster.run_start : cluster.run_start + cluster.longest]
            repeated.append(
                {
                    "turn_indices": [index for index, _, _ in cluster.members],
                    "repeats": cluster.longest - 1,
                    "run_turn_indices": [index for index, _, _ in run],
                    "quote": quote(cluster.members[0][1].text),
                    "sentences": [
                        {"turn_index": index, "sentence": quote(sentence.text), "why": why}
                        for index, sentence, why in cluster.members
                    ],
                    "cycle_with": [quote(other.members[0][1].text) for other in cluster.cycle_with],
                }
            )
        tool_counts: dict[str, list[str]] = {}
        for tc in call.tool_calls:
            arguments = tc.arguments
            if isinstance(arguments, dict):
                arguments = {k: v for k, v in arguments.items() if k.lower() not in VOLATILE_ARGUMENTS}
            key = f"{tc.name}({json.dumps(arguments, sort_keys=True)})"
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
