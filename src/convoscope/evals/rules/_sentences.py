"""Sentences of a turn and how alike two of them are, for metrics that compare what was said.

An agent stuck on one thing often wraps it in new words each time ("Sorry about the wait. What's your
order number? It should be on your receipt."), so whole turns differ while one sentence recurs: the
comparison unit is the sentence. Two sentences are compared as sets of light stems of their content
words, so word order, inflection and filler do not matter; questions are also compared by what they ask
for (their slot), with the re-ask and request wording set aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ._text import STOPWORDS, TEXT_CACHE, stem, tokens

__all__ = [
    "ASK_OPENERS",
    "OPEN_OFFER_WORDS",
    "REASK_WORDS",
    "Sentence",
    "overlap",
    "sentence_similarity",
    "split_sentences",
]

_BOUNDARY = re.compile(r"(?<=[.!?;:])\s+|\n+")
"""A sentence ends at terminal punctuation followed by space (so "4.5" and "e.g." mid-word stay whole)."""

_TACKED_QUESTION = re.compile(
    r",\s+(?=(?:is|are|could|can|would|will|what|what's|which|how|where|when|who|do|does|did)\b)",
    re.IGNORECASE,
)
"""A comma before a question word, inside a sentence that ends in a question mark."""

IRREGULAR = {
    "sent": "send",
    "gave": "give",
    "given": "give",
    "told": "tell",
    "said": "say",
    "got": "get",
    "took": "take",
    "taken": "take",
    "made": "make",
    "bought": "buy",
    "paid": "pay",
}
"""Past forms the suffix stemmer cannot reach, so "sent to" and "send to" ask the same thing."""

REASK_WORDS = frozenset(
    stem(word)
    for word in (
        "sorry again repeat say said tell give please what what's which how could once more one "
        "pardon missed catch get got hear heard understand didn't couldn't there that out now "
        "me for still need"
    ).split()
)
"""How a question is re-asked rather than what it asks for; set aside when comparing what two asks want."""

ASK_OPENERS = frozenset(
    "could can would will may please what what's which how where when who whose is are do does did".split()
)
"""First words of a question or request when speech-to-text left out the question mark."""

REQUEST_LEADS = frozenset("can could would will please".split())
"""Words after which the next verb is the request itself ("could you *read out* ..."), not the slot."""

_BEFORE_REQUEST_VERB = frozenset("you please just kindly also".split())

OPEN_OFFER_WORDS = frozenset(
    stem(word) for word in "anything else something other further help assist today more".split()
)
"""Words of an open offer ("Is there anything else I can help with?"): a question made only of these
asks for no slot, so repeating it after each completed request is courtesy, not a loop."""

LOOP_STOPWORDS = STOPWORDS | frozenset("i'm you're it's that's there's let's okay ok yes no oh um uh".split())
"""Words that carry no content in a sentence comparison, beyond the shared stopwords."""


def light_stem(word: str) -> str:
    """The suffix stem, with the common irregular past forms folded first."""
    return stem(IRREGULAR.get(word, word))


@dataclass(frozen=True)
class Sentence:
    """One sentence of a turn, with what is compared."""

    text: str
    words: tuple[str, ...]
    content: frozenset[str]
    """Light stems of its content words."""
    asks: bool
    """A question or request: a question mark, or a first word such as "could" or "what"."""
    slot: frozenset[str]
    """What it asks for: its content stems, re-ask and request wording set aside (empty if it asks not)."""

    @property
    def is_open_offer(self) -> bool:
        """A question that asks for nothing in particular (an offer of more help)."""
        return self.asks and bool(self.slot) and self.slot <= OPEN_OFFER_WORDS


def _asks(text: str, words: tuple[str, ...]) -> bool:
    return bool(words) and ("?" in text or words[0] in ASK_OPENERS)


def _slot(words: tuple[str, ...]) -> frozenset[str]:
    kept = []
    skip_next = False
    for i, word in enumerate(words):
        if skip_next and word not in _BEFORE_REQUEST_VERB:
            skip_next = False
            continue  # the request verb after "could you": "read out", "give me", "name"
        if word == "please" or (word in REQUEST_LEADS and words[i + 1 : i + 2] == ("you",)):
            skip_next = True
        if word not in LOOP_STOPWORDS:
            kept.append(light_stem(word))
    return frozenset(kept) - REASK_WORDS


def _pieces(text: str) -> list[str]:
    """Sentences, with a question that names something tacked on after a comma ("I can't do that, is
    there anything else?") split from the statement before it."""
    out: list[str] = []
    for sentence in _BOUNDARY.split(text.strip()):
        head, *tail = (
            _TACKED_QUESTION.split(sentence, maxsplit=1) if sentence.rstrip().endswith("?") else [sentence]
        )
        if tail and _slot(tokens(tail[0])):
            out.extend((head, tail[0]))
        else:  # "..., what is it?" asks for what the statement named: one sentence
            out.append(sentence)
    return out


@lru_cache(maxsize=TEXT_CACHE)
def split_sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of ``text`` in order, each with its content stems and (for a question) its slot."""
    out = []
    for piece in _pieces(text):
        words = tokens(piece)
        if not words:
            continue
        content = frozenset(light_stem(w) for w in words if w not in LOOP_STOPWORDS)
        asks = _asks(piece, words)
        out.append(Sentence(piece.strip(), words, content, asks, _slot(words) if asks else frozenset()))
    return tuple(out)


def overlap(one: frozenset[str], other: frozenset[str]) -> float:
    """Share of the smaller set found in the larger (1.0 when one contains the other)."""
    if not one or not other:
        return 0.0
    return len(one & other) / min(len(one), len(other))


def sentence_similarity(one: frozenset[str], other: frozenset[str]) -> float:
    """Shared content stems over the larger sentence's: high only when neither adds much to the other."""
    if not one or not other:
        return 0.0
    return len(one & other) / max(len(one), len(other))
