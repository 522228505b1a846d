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
    "light_stem",
    "phrase_words",
    "overlap",
    "sentence_similarity",
    "split_sentences",
]

_BOUNDARY = re.compile(r"(?<=[.!?;:])\s+|\n+")
"""A sentence ends at terminal punctuation followed by space (so "4.5" and "e.g." mid-word stay whole)."""

_TACKED_QUESTION = re.compile(
    r",\s+(?:(?:so|and|but|now)\s+)?"
    r"(?=(?:is|are|could|can|would|will|what|what's|which|how|where|when|who|do|does|did)\b)",
    re.IGNORECASE,
)
"""A comma (and a joining "so", "and", "but") before a question word, inside a sentence that ends in a
question mark: "We've some great deals, so which model would you like?" asks what the bare question asks."""

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

SYNONYMS: dict[str, tuple[str, ...]] = {
    "born": ("date", "birth"), "birthday": ("date", "birth"), "dob": ("date", "birth"),
    "birthdate": ("date", "birth"), "surname": ("last", "name"), "forename": ("first", "name"),
    "zip": ("postcode",), "zipcode": ("postcode",), "postal": ("postcode",), "car": ("vehicle",),
    "van": ("vehicle",), "reg": ("registration",), "plate": ("registration",), "wrong": ("problem",),
    "issue": ("problem",), "fault": ("problem",), "trouble": ("problem",), "mobile": ("phone",),
    "telephone": ("phone",), "cell": ("phone",), "e-mail": ("email",), "ref": ("reference",),
    "going": ("problem",), "matter": ("problem",), "charge": ("fee",), "charges": ("fee",),
    "fees": ("fee",), "reboot": ("restart",), "rebooting": ("restart",),
}  # fmt: skip
"""Words folded into the words a slot is usually asked with, so "when were you born" and "your date of
birth" ask for the same thing: a small paraphrase table of the slots agents ask for, not of sentences."""

STEM_CHARS = 6
"""Stems are cut to this many characters, so "delivery" and "delivering", "confirm" and "confirmation"
compare equal (a light lemmatiser: the suffix stemmer misses derivations)."""

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

LOOP_STOPWORDS = STOPWORDS | frozenset(
    "i'm you're it's that's there's let's okay ok yes no oh um uh seem seems any now still up also even "
    "currently actually about having isn aren wasn weren don doesn won haven hasn".split()
)
"""Words that carry no content in a sentence comparison, beyond the shared stopwords."""


def light_stem(word: str) -> str:
    """The suffix stem, with the common irregular past forms folded first, cut to ``STEM_CHARS``."""
    return stem(IRREGULAR.get(word, word))[:STEM_CHARS]


_CONTRACTIONS = {"can't": ("can", "not"), "cannot": ("can", "not"), "won't": ("will", "not")}


def phrase_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """Light stems of ``words`` with negative contractions opened ("can't" is "can not", "isn't" is "is
    not"), so a refusal keeps its "not" (the suffix stemmer cuts "can't" to "can")."""
    out: list[str] = []
    for word in words:
        if word in _CONTRACTIONS:
            out.extend(_CONTRACTIONS[word])
        elif word.endswith("n't"):
            out.extend((light_stem(word[:-3]), "not"))
        else:
            out.append(light_stem(word))
    return tuple(out)


NUMBER_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand double triple".split()
)
"""Spoken digits and numbers: a read-back of another value is another sentence, even in the same words."""


def values_of(words: tuple[str, ...]) -> tuple[str, ...]:
    """The numbers a sentence says, digits and number words, in order."""
    return tuple(w for w in words if w.isdigit() or w in NUMBER_WORDS)


def _expanded(words: tuple[str, ...]) -> tuple[str, ...]:
    """Possessives and contractions cut to their word ("car's" is "car", "i've" is "i"), then synonyms
    folded."""
    bare = (word.split("'")[0] or word for word in words)
    return tuple(part for word in bare for part in SYNONYMS.get(word, (word,)))


COURTESY = frozenset(
    light_stem(word)
    for word in (
        "sorry apologise apologize apologies apology understand understood frustrating frustration "
        "appreciate patience patient confusion hear know pain thank thanks wait waiting hold holding said "
        "say mentioned mention explained explain again really help here want sort sorted today problem worry "
        "inconvenience concern afraid unfortunately mean totally completely absolutely sure glad happy right "
        "course certainly agree see point annoying get let check checking look looking moment second minute "
        "bear note alright great perfect lovely wonderful fine good bit definitely honestly sincerely "
        "assure promise best try trying doing everything like"
    ).split()
)
"""Stems of courtesy and filler ("Sorry for the confusion.", "I know it's a pain.", "Let me check that
for you."): a statement made only of these says nothing, so it is neither progress nor a repeat."""

_REQUEST = re.compile(
    r"\b(?:i|we)(?:'ll| will| still| just| really| do|'d| would| first)* need (?:your|the|a|an|you to|to "
    r"(?:get|have|take|confirm|know|see|grab))\b|\bplease (?:tell|give|provide|confirm|read|spell|say|enter|"
    r"share|describe|let)\b"
)
_IMPERATIVES = frozenset("tell give say spell read confirm provide enter type share describe".split())
_LEADING = frozenset("sorry okay ok so and now right great thanks alright then just".split())


@dataclass(frozen=True)
class Sentence:
    """One sentence of a turn, with what is compared."""

    text: str
    words: tuple[str, ...]
    content: frozenset[str]
    """Light stems of its content words."""
    core: frozenset[str]
    """Its content stems less courtesy and filler: what it says."""
    asks: bool
    """A question or request: a question mark, or a first word such as "could" or "what"."""
    slot: frozenset[str]
    """What it asks for: its content stems, re-ask and request wording set aside (empty if it asks not)."""
    phrase: tuple[str, ...] = ()
    """Its words as concept phrasings are matched against (:func:`phrase_words`)."""
    values: tuple[str, ...] = ()
    """The numbers it says, in order (:func:`values_of`)."""

    @property
    def is_courtesy(self) -> bool:
        """A statement made only of courtesy and filler words."""
        return not self.asks and not self.core

    @property
    def is_open_offer(self) -> bool:
        """A question that asks for nothing in particular (an offer of more help)."""
        return self.asks and bool(self.slot) and self.slot <= OPEN_OFFER_WORDS


def _asks(text: str, words: tuple[str, ...]) -> bool:
    """A question, or a request worded as a statement ("I'll need your birth date", "Tell me what's
    wrong with it"): both ask for something, and a stuck agent rewords one into the other."""
    if not words:
        return False
    if "?" in text or words[0] in ASK_OPENERS:
        return True
    first = next((w for w in words if w not in _LEADING), "")
    return (
        first in _IMPERATIVES
        or (first == "let" and "know" in words[:4])
        or bool(_REQUEST.search(" ".join(words)))
    )


def _slot(words: tuple[str, ...]) -> frozenset[str]:
    kept = ["name"] if {"who", "whose", "whom"} & set(words) else []
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


PARAPHRASES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\b(?:turn|switch|power)(?:ing|ed)? (?:\w+ ){0,2}off and (?:back )?on(?: again)?\b", "restart"),
        (r"\bpower[- ]cycl(?:e|ing|ed)\b", "restart"),
    )
)
"""Multi-word paraphrases read as one word before comparing ("turn the router off and on again" is
"restart the router"); the sentence's text is kept as said."""


def _paraphrased(piece: str) -> str:
    for pattern, replacement in PARAPHRASES:
        piece = pattern.sub(replacement, piece)
    return piece


@lru_cache(maxsize=TEXT_CACHE)
def split_sentences(text: str) -> tuple[Sentence, ...]:
    """The sentences of ``text`` in order, each with its content stems and (for a question) its slot."""
    out = []
    for piece in _pieces(text):
        said = tokens(_paraphrased(piece))
        if not said:
            continue
        words = _expanded(said)
        content = frozenset(light_stem(w) for w in words if w not in LOOP_STOPWORDS)
        asks = _asks(piece, said)
        slot = _slot(words) if asks else frozenset()
        out.append(
            Sentence(
                piece.strip(),
                words,
                content,
                content - COURTESY,
                asks,
                slot,
                phrase_words(said),
                values_of(said),
            )
        )
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
