"""Identifiers spelled out character by character, turned back into the value they spell.

Callers and agents read postcodes, National Insurance numbers, passports and email addresses letter by
letter: "A B as in bravo, one two, three four, five six, D for delta", "k, o, f, i, underscore...". A
written-text pattern sees words, not the value, so a spelled run is collapsed into one compact value
first: single letters, NATO words, "X as in <word>" and "X for <word>", digits in words ("oh" for zero,
"double five"), with dashes, dots, commas, "dash", "space" or "and then" between the characters. The
raw span is kept beside the value, so evidence can show both what was said and what it spells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._spoken import NUMBER_WORDS, Token, spoken_tokens

__all__ = ["NATO", "SpelledRun", "collapse_spelled", "spelled_runs"]

NATO = frozenset(
    "alpha alfa bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey whisky xray yankee zulu".split()
)
"""Spelling-alphabet words: each stands for its first letter inside a spelled run."""

_SEPARATORS = frozenset(
    {",", "-", ".", "/", ";", ":", "–", "dash", "hyphen", "space", "and", "then", "letter", "letra", "lettre"}
)
"""What may sit between the characters of one spelled run without ending it ("... two six, letra K")."""
_EXAMPLE_CUES = (("as", "in"), ("for",), ("like",))
""""B as in bravo", "D for delta", "S like sugar": the word after names the letter, not another one."""
_REPEATS = {"double": 2, "triple": 3}


@dataclass(frozen=True)
class SpelledRun:
    """Characters spelled one by one: the compact value, its span in the text, and how many were said."""

    value: str
    start: int
    end: int
    units: int

    @property
    def mixed(self) -> bool:
        """Letters and digits both: the shape of most identifiers (postcodes, NI, passports)."""
        return any(ch.isalpha() for ch in self.value) and any(ch.isdigit() for ch in self.value)


def _end(text: str, tokens: list[Token], i: int) -> int:
    """Where token ``i`` ends: a spoken number may span several words ("forty five")."""
    stop = tokens[i + 1].start if i + 1 < len(tokens) else len(text)
    return len(text[:stop].rstrip(" ,;:.-–"))


def _example_length(tokens: list[Token], i: int, letter: str) -> int:
    """How many tokens after a letter name it again ("as in bravo"): 0 when none do."""
    for cue in _EXAMPLE_CUES:
        j = i + 1
        if [t.text for t in tokens[j : j + len(cue)]] != list(cue):
            continue
        word = tokens[j + len(cue)].text if j + len(cue) < len(tokens) else ""
        if word.isalpha() and len(word) > 1 and word[0] == letter:
            return len(cue) + 1
    return 0


def _unit(tokens: list[Token], i: int) -> tuple[str, int] | None:
    """The characters token ``i`` spells and how many tokens it takes, or None if it spells none."""
    token = tokens[i]
    if token.digits is not None:
        plain = token.text in NUMBER_WORDS or (token.text.isdigit() and len(token.text) <= 4)
        return (token.digits, 1) if plain else None
    word = token.text
    if len(word) == 1 and word.isascii() and word.isalpha():
        # accented one-letter words ("é", "à") are words of their language, never a spelled character
        return word, 1 + _example_length(tokens, i, word)
    if word in NATO:
        return word[0], 1
    if word == "oh":  # a zero between spelled commas, which the digit reader leaves alone
        return "0", 1
    nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
    if word in _REPEATS and len(nxt) == 1 and nxt.isalpha():
        return nxt * _REPEATS[word], 2 + _example_length(tokens, i + 1, nxt)
    return None


def spelled_runs(text: str, *, min_units: int = 2) -> list[SpelledRun]:
    """Runs of at least ``min_units`` spelled characters with a letter among them, in lower-cased ``text``.

    Runs of digits only are left to the digit rules (:func:`._spoken.digit_runs`), which already read them.
    A lone NATO word ("Delta flight") is not a run: a run needs ``min_units`` spelled pieces.
    """
    tokens = spoken_tokens(text)
    runs: list[SpelledRun] = []
    i = 0
    while i < len(tokens):
        first = _unit(tokens, i)
        if first is None:
            i += 1
            continue
        chars, taken = first
        start, units, last = tokens[i].start, 1, i + taken - 1
        j = i + taken
        while j < len(tokens):
            k = j
            while k < len(tokens) and tokens[k].text in _SEPARATORS:
                k += 1
            nxt = _unit(tokens, k) if k < len(tokens) else None
            if nxt is None:
                break
            chars += nxt[0]
            units += 1
            last = k + nxt[1] - 1
            j = k + nxt[1]
        if units >= min_units and any(ch.isalpha() for ch in chars):
            runs.append(SpelledRun(chars, start, _end(text, tokens, last), units))
        i = j
    return runs


def collapse_spelled(text: str, runs: list[SpelledRun]) -> str:
    """``text`` with each spelled run replaced by its value and commas dropped, for the email rules:
    "m, a, r, t, a, dot, k, o, w, a, l, at gmail dot com" reads "marta dot kowal at gmail dot com"."""
    out: list[str] = []
    cursor = 0
    for run in runs:
        out.append(text[cursor : run.start])
        out.append(run.value)
        cursor = run.end
    out.append(text[cursor:])
    return re.sub(r"\s*,\s*", " ", "".join(out))
