"""Text helpers shared by the rule metrics: normalising, tokenising and near-verbatim matching.

Transcripts come from speech-to-text, so punctuation, case and small word changes are noise. Matching is
done on normalised tokens, and "near-verbatim" means most of a phrase's content words appear close
together in one turn, in any inflection.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ...model.call import Call, Turn
from ...model.enums import Role

__all__ = [
    "QUOTE_CHARS",
    "STOPWORDS",
    "PhraseHit",
    "content_tokens",
    "find_phrase",
    "normalize",
    "quote",
    "stem",
    "tokens",
    "turns_of",
    "valid_regex",
]

QUOTE_CHARS = 160
"""Evidence quotes are cut to this many characters, enough to read the context of a hit."""

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOPWORDS = frozenset(
    "a an the and or but if of to in on at for by with from as am is are was were be been being it its "
    "this that these those i you we they he she me my your our their us them do does did so just "
    "very can will would shall should may might must have has had".split()
)
"""Words too common to decide whether a phrase was said; matching weighs only the others."""

_SUFFIXES = ("ing", "ed", "es", "s", "ly")


TEXT_CACHE = 8192
"""Turn texts whose normalised form and words are kept: several metrics read the same turns."""


@lru_cache(maxsize=TEXT_CACHE)
def normalize(text: str) -> str:
    """Lower case, compatibility forms folded, curly apostrophes straightened."""
    return unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()


@lru_cache(maxsize=TEXT_CACHE)
def tokens(text: str) -> tuple[str, ...]:
    """The words of ``text``, normalised, punctuation dropped."""
    return tuple(_WORD.findall(normalize(text)))


@lru_cache(maxsize=TEXT_CACHE)
def _stems(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in tokens(text))


def stem(token: str) -> str:
    """A crude English stem, so "recorded", "records" and "recording" match "record"."""
    token = token.split("'")[0]
    for suffix in _SUFFIXES:
        if len(token) > len(suffix) + 2 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token


def content_tokens(words: Iterable[str]) -> list[str]:
    """Stems of the words that carry meaning (stopwords dropped)."""
    return [stem(w) for w in words if w not in STOPWORDS]


def turns_of(call: Call, roles: Sequence[Role]) -> Iterator[Turn]:
    """The call's turns spoken by any of ``roles``, in order."""
    wanted = set(roles)
    return (turn for turn in call.turns if turn.role in wanted)


def quote(text: str, start: int = 0, end: int | None = None, *, limit: int = QUOTE_CHARS) -> str:
    """A short excerpt of ``text`` around ``[start, end)`` for evidence."""
    end = len(text) if end is None else end
    if len(text) <= limit:
        return text
    middle = (start + end) // 2
    lo = max(0, min(middle - limit // 2, len(text) - limit))
    return ("…" if lo > 0 else "") + text[lo : lo + limit] + ("…" if lo + limit < len(text) else "")


@dataclass(frozen=True)
class PhraseHit:
    """Where a phrase was found in a text, and how closely."""

    similarity: float
    """Share of the phrase's content words found in the window (1.0 for a verbatim match)."""
    verbatim: bool
    window: str
    """The matched words, joined, for evidence."""


def find_phrase(phrase: str, text: str, *, min_similarity: float, slack: float = 0.5) -> PhraseHit | None:
    """Find ``phrase`` in ``text`` verbatim (after normalising) or near-verbatim.

    Near-verbatim: in some window of the text at most ``(1 + slack)`` times the phrase's length, at
    least ``min_similarity`` of the phrase's content-word stems occur. Returns the best hit or None.
    """
    phrase_words = tokens(phrase)
    text_words = tokens(text)
    if not phrase_words or not text_words:
        return None
    joined_phrase = " ".join(phrase_words)
    joined_text = " ".join(text_words)
    if f" {joined_phrase} " in f" {joined_text} ":
        return PhraseHit(1.0, True, joined_phrase)
    if min_similarity >= 1.0:
        return None
    wanted = set(content_tokens(phrase_words) or [stem(w) for w in phrase_words])
    stems = _stems(text)
    if len(wanted & set(stems)) < min_similarity * len(wanted):
        return None  # not enough of the words anywhere in the turn, so in no window either
    size = max(len(phrase_words), int(len(phrase_words) * (1.0 + slack) + 0.5))
    counts: dict[str, int] = {}
    best_score, best_start = -1.0, 0
    for end, word in enumerate(stems):  # slide a window of ``size`` words, counting the wanted ones
        if word in wanted:
            counts[word] = counts.get(word, 0) + 1
        start = end - size + 1
        if start > 0 and stems[start - 1] in wanted:
            gone = stems[start - 1]
            counts[gone] -= 1
            if not counts[gone]:
                del counts[gone]
        score = len(counts) / len(wanted)
        if score > best_score:
            best_score, best_start = score, max(0, start)
    if best_score < min_similarity:
        return None
    return PhraseHit(round(best_score, 3), False, " ".join(text_words[best_start : best_start + size]))


def valid_regex(pattern: str) -> str:
    """``pattern`` when it compiles; else a ValueError naming it, which a parameter model reports as
    an invalid setting rather than failing later on the first call it meets."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    return pattern
