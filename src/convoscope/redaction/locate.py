"""Where personal values lie in a text, as character spans of that text, and the text with them masked.

The PII detectors (``evals.rules.pii``) read a normalised copy of a text (lower case, compatibility
forms folded, numbers said in another language rewritten into English words) and report each value with
its position there. Masking must cut the original text, so each finding is mapped back: directly when
the copy lines up with the original character for character (the usual case), else by searching the
original for the value in any written or spoken spelling. A value that cannot be found again is not
left in place on a guess: the whole text is masked instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..evals.rules._spoken import NUMBER_WORDS
from ..evals.rules._text import normalize
from ..evals.rules.pii import Finding, PiiKind, PiiParams, locate_pii
from ..evals.rules.pii_languages import FOREIGN_WORDS, english_forms
from ..evals.rules.pii_spelled import NATO

__all__ = ["Hit", "Masker", "find_hits", "mask_text"]

_ISSUED = "business-issued identifier"
"""Findings allowed for this reason are an order, ticket or tracking number: not a person's data."""

_SPOKEN_CHARS = {
    "@": r"(?:@|\s+at\s+)",
    ".": r"(?:\.|\s+dot\s+)",
    "_": r"(?:_|\s+underscore\s+)",
    "-": r"(?:-|\s+(?:dash|hyphen)\s+)",
}
_BETWEEN = r"[\s,.()+\-–/]*"
"""What may separate the characters of one value in a text: spaces, STT commas, phone formatting."""


_TRIGGERS = NUMBER_WORDS | FOREIGN_WORDS | NATO | {"dot"}
"""Words without which a text holds no value in a spoken form: number words (in the languages the
detectors read), the spelling alphabet, and the "dot" of an email address said aloud."""
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGIT_OR_AT = re.compile(r"[\d@]")


def may_hold_value(text: str) -> bool:
    """Whether ``text`` can hold a value of any kind the detectors find, written or spoken.

    Every such value has a digit, an ``@``, a number or spelling word, a spoken "dot", or letters
    spelled one by one; most sentences have none of them, and skip the detectors, which cost tens of
    microseconds a sentence, for a scan that costs a few.
    """
    if _DIGIT_OR_AT.search(text) is not None:
        return True
    words = _LETTERS.findall(text.lower())
    single = False
    for word in words:
        if word in _TRIGGERS:
            return True
        if len(word) == 1:
            if single:
                return True  # two letters in a row: something spelled out
            single = True
        else:
            single = False
    return False


@dataclass(frozen=True, slots=True)
class Hit:
    """One masked stretch ``text[start:end]`` and the kind of value it holds."""

    start: int
    end: int
    kind: PiiKind


def _value_pattern(value: str) -> re.Pattern[str] | None:
    """The value in any formatting: its characters in order, with separators or spoken joiners."""
    parts: list[str] = []
    for char in value.lower():
        if char in _SPOKEN_CHARS:
            parts.append(_SPOKEN_CHARS[char])
        elif char.isalnum():
            parts.append(re.escape(char))
    if len(parts) < 3:
        return None
    return re.compile(_BETWEEN.join(parts), re.IGNORECASE)


def _search(text: str, finding: Finding) -> list[tuple[int, int]]:
    for candidate in (finding.raw, finding.value):
        if not candidate:
            continue
        pattern = _value_pattern(candidate)
        if pattern is None:
            continue
        found = [(m.start(), m.end()) for m in pattern.finditer(text)]
        if found:
            return found
    return []


def find_hits(text: str, params: PiiParams) -> list[Hit]:
    """Every stretch of ``text`` holding a value of the kinds in ``params``, in order, not overlapping.

    A value the detectors allow only as the business's own contact is still masked (it may well be the
    caller's); a business-issued identifier (an order or tracking number) is kept.
    """
    if not text or not may_hold_value(text):
        return []
    findings = [
        f
        for f in locate_pii(text, params)
        if f.kind in params.kinds and not (f.allowed or "").startswith(_ISSUED)
    ]
    if not findings:
        return []
    lowered = english_forms(normalize(text))
    aligned = len(lowered) == len(text)
    spans: list[Hit] = []
    for finding in findings:
        if finding.detector == "presidio":
            spans.append(Hit(finding.start, finding.start + len(finding.value), finding.kind))
            continue
        raw = finding.raw
        end = finding.start + len(raw)
        if aligned and raw and lowered[finding.start : end] == raw:
            spans.append(Hit(finding.start, end, finding.kind))
            continue
        located = _search(text, finding)
        if not located:
            return [Hit(0, len(text), finding.kind)]  # cannot be placed: mask everything
        spans.extend(Hit(start, stop, finding.kind) for start, stop in located)
    return _merged([_with_prefix(text, hit) for hit in spans])


def _with_prefix(text: str, hit: Hit) -> Hit:
    """A phone number's ``+`` or opening bracket belongs to it ("+1 (555)..." leaves no "+" behind)."""
    start = hit.start
    while hit.kind is PiiKind.PHONE and start > 0 and text[start - 1] in "+(":
        start -= 1
    return hit if start == hit.start else Hit(start, hit.end, hit.kind)


def _merged(hits: Sequence[Hit]) -> list[Hit]:
    merged: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if merged and hit.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Hit(last.start, max(last.end, hit.end), last.kind)
        else:
            merged.append(hit)
    return merged


def mask_text(text: str, hits: Sequence[Hit], render: Callable[[PiiKind], str]) -> str:
    """``text`` with each hit replaced by its rendered marker."""
    if not hits:
        return text
    pieces: list[str] = []
    at = 0
    for hit in hits:
        pieces.append(text[at : hit.start])
        pieces.append(render(hit.kind))
        at = hit.end
    pieces.append(text[at:])
    return "".join(pieces)


class Masker:
    """One project's detectors and marker, applied to texts: the unit every redaction step shares."""

    def __init__(self, params: PiiParams, render: Callable[[PiiKind], str]) -> None:
        self.params = params
        self.render = render

    def hits(self, text: str, *, context: str = "") -> list[Hit]:
        """The hits of ``text``; ``context`` (a field name as words) is read before it as its label,
        so "phone: 8675309" is classified like "my phone is 8675309", but is never masked itself."""
        if not context:
            return find_hits(text, self.params)
        prefix = f"{context}: "
        shifted = find_hits(prefix + text, self.params)
        offset = len(prefix)
        hits = []
        for hit in shifted:
            if hit.end <= offset:
                continue
            if hit.start < offset and hit.end >= len(prefix) + len(text):
                return [Hit(0, len(text), hit.kind)]
            hits.append(Hit(max(hit.start - offset, 0), hit.end - offset, hit.kind))
        return hits

    def text(self, text: str, *, context: str = "") -> str:
        """``text`` with its personal values masked."""
        return mask_text(text, self.hits(text, context=context), self.render)
