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
]

QUOTE_CHARS = 160
"""Evidence quotes are cut to this many characters, enough to read the context of a hit."""

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

STOPWORDS = frozenset(
    "a an the and or but if of to in on at for by with from as is are was were be been being it its "
    "this that these those i you we they he she me my your our their us them do does did so just "
    "very can will would shall should may might must have has had".split()
)
"""Words too common to decide whether a phrase was said; matching weighs only the others."""

_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def normalize(text: str) -> str:
    """Lower case, compatibility forms folded, curly apostrophes straightened."""
    return unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()


def tokens(text: str) -> list[str]:
    """The words of ``text``, normalised, punctuation dropped."""
    return _WORD.findall(normalize(text))


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
    wanted = content_tokens(phrase_words) or [stem(w) for w in phrase_words]
    stems = [stem(w) for w in text_words]
    size = max(len(phrase_words), int(len(phrase_words) * (1.0 + slack) + 0.5))
    best: tuple[float, int] | None = None
    for start in range(max(1, len(stems) - size + 1)):
        window = set(stems[start : start + size])
        found = sum(1 for w in wanted if w in window)
        score = found / len(wanted)
        if best is None or score > best[0]:
            best = (score, start)
    if best is None or best[0] < min_similarity:
        return None
    score, start = best
    return PhraseHit(round(score, 3), False, " ".join(text_words[start : start + size]))
