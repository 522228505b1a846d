"""Speech-to-text number forms turned back into digits.

A transcript says "five five five, oh one two, double three" or "nineteen eighty five" where a written
text has 555-012-33 or 1985. PII rules must see the digits, so this module rewrites number words into
digit groups and merges adjacent groups into runs, keeping each run's position for its context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["NUMBER_WORDS", "DigitRun", "Token", "digit_runs", "may_hold_value", "spoken_tokens"]

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_ZEROS = frozenset({"oh", "o"})
_REPEATS = {"double": 2, "triple": 3}
_RUN_JOINERS = frozenset({"-", ",", ".", "(", ")", "+", "–"})
"""Punctuation allowed between the digit groups of one run (phone and card formatting, STT commas)."""

NUMBER_WORDS = frozenset({*_UNITS, *_TEENS, *_TENS, *_ZEROS, *_REPEATS, "hundred", "thousand"})
"""Words that stand for digits in a transcript."""
_READ_AS_NUMBER = NUMBER_WORDS | frozenset(_ORDINALS)
"""Words :func:`spoken_tokens` may turn into digits; any other word is kept as it is."""

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[^\sa-z\d]")


class Token(NamedTuple):
    """A word, a digit group (``digits``) or a punctuation mark, with its offset in the text.

    A tuple rather than a dataclass: every word of every turn with numbers becomes one.
    """

    text: str
    start: int
    digits: str | None = None


@dataclass(frozen=True)
class DigitRun:
    """Adjacent digit groups read as one number, with where it starts and its grouping."""

    digits: str
    start: int
    end: int
    groups: tuple[int, ...]
    plus: bool
    """Written with a leading "+" (an international phone number)."""
    pauses: tuple[int, ...] = ()
    """Digits between the punctuation inside the run: "five oh eight, double four, triple seven one" is
    (3, 2, 4), the shape of an SSN, where ``groups`` counts one group per word."""


def _suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TEENS or word in _TENS or word.isdigit()


def spoken_tokens(text: str) -> list[Token]:
    """Tokens of lower-cased ``text`` with number words replaced by digit groups.

    "oh"/"o" is a zero only next to another digit; "double"/"triple" repeat the next digit; tens take a
    following unit ("forty five" = 45); "hundred"/"thousand" compose ("eight hundred" = 800); ordinals
    become "3rd"-style words so dates keep their day. A hyphen joins tens to a unit ("twenty-two" = 22).
    """
    raw = [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]
    out: list[Token] = []
    i = 0
    while i < len(raw):
        word, start = raw[i]
        if word not in _READ_AS_NUMBER and not word.isdigit():
            out.append(Token(word, start))  # most words: no branch below applies
            i += 1
            continue
        nxt = raw[i + 1][0] if i + 1 < len(raw) else ""
        if word.isdigit():
            out.append(Token(word, start, word))
        elif word in _UNITS:
            value = _UNITS[word]
            if nxt in ("hundred", "thousand"):
                value, i = _compose(raw, i, value)
            out.append(Token(word, start, str(value)))
        elif word in _TEENS:
            value = _TEENS[word]
            if nxt == "hundred":
                value, i = _compose(raw, i, value)
            out.append(Token(word, start, str(value)))
        elif word in _TENS:
            value = _TENS[word]
            if (
                nxt == "-"
                and i + 2 < len(raw)
                and raw[i + 2][0] != "zero"
                and (raw[i + 2][0] in _UNITS or raw[i + 2][0] in _ORDINALS)
            ):
                i += 1  # "twenty-two", "twenty-third": the hyphen joins the tens to the unit
                nxt = raw[i + 1][0]
            if nxt in _UNITS and nxt != "zero":
                value += _UNITS[nxt]
                i += 1
                out.append(Token(word, start, str(value)))
            elif nxt in _ORDINALS and _ORDINALS[nxt] < 10:
                value += _ORDINALS[nxt]
                i += 1
                out.append(Token(f"{value}{_suffix(value)}", start))
            else:
                out.append(Token(word, start, str(value)))
        elif word in _ORDINALS:
            value = _ORDINALS[word]
            out.append(Token(f"{value}{_suffix(value)}", start))
        elif word in _ZEROS and (
            (out and out[-1].digits is not None) or _is_number_word(nxt) or nxt in _ZEROS or nxt in _REPEATS
        ):
            out.append(Token(word, start, "0"))
        elif word in _REPEATS and (nxt in _UNITS or nxt in _ZEROS or nxt.isdigit() and len(nxt) == 1):
            digit = "0" if nxt in _ZEROS else str(_UNITS[nxt]) if nxt in _UNITS else nxt
            out.append(Token(word, start, digit * _REPEATS[word]))
            i += 1
        else:
            out.append(Token(word, start))
        i += 1
    return out


def _compose(raw: list[tuple[str, int]], i: int, value: int) -> tuple[int, int]:
    """Read "<value> hundred [and] <tens> <unit>" or "<value> thousand ..." starting at ``raw[i]``."""
    scale = 100 if raw[i + 1][0] == "hundred" else 1000
    total = value * scale
    j = i + 2
    joined = j < len(raw) and raw[j][0] == "and"
    if joined:
        j += 1
    rest = 0
    if scale == 1000 and j + 1 < len(raw) and raw[j][0] in _UNITS and raw[j + 1][0] == "hundred":
        rest += _UNITS[raw[j][0]] * 100
        j += 2
        if j < len(raw) and raw[j][0] == "and":
            j += 1
    if j < len(raw) and raw[j][0] in _TENS:
        rest += _TENS[raw[j][0]]
        j += 1
        if j < len(raw) and raw[j][0] in _UNITS and raw[j][0] != "zero":
            rest += _UNITS[raw[j][0]]
            j += 1
    elif j < len(raw) and raw[j][0] in _TEENS:
        rest += _TEENS[raw[j][0]]
        j += 1
    elif joined and j < len(raw) and raw[j][0] in _UNITS and raw[j][0] != "zero":
        # "one hundred and five"; a bare unit after "hundred" is the next digit ("eight hundred five five")
        rest += _UNITS[raw[j][0]]
        j += 1
    elif joined:
        j -= 1
    return total + rest, j - 1


def digit_runs(tokens: list[Token]) -> list[DigitRun]:
    """Maximal runs of digit groups joined by spaces or formatting punctuation."""
    runs: list[DigitRun] = []
    i = 0
    while i < len(tokens):
        if tokens[i].digits is None:
            i += 1
            continue
        plus = i > 0 and tokens[i - 1].text in ("+", "plus")
        groups = [tokens[i].digits or ""]
        pauses = [len(groups[0])]
        start = tokens[i].start
        end = start + len(tokens[i].text)
        j = i + 1
        while j < len(tokens):
            k = j
            while k < len(tokens) and tokens[k].text in _RUN_JOINERS:
                k += 1
            if k < len(tokens) and tokens[k].digits is not None and k - j <= 2:
                groups.append(tokens[k].digits or "")
                if k > j:
                    pauses.append(0)
                pauses[-1] += len(groups[-1])
                end = tokens[k].start + len(tokens[k].text)
                j = k + 1
            else:
                break
        runs.append(DigitRun("".join(groups), start, end, tuple(len(g) for g in groups), plus, tuple(pauses)))
        i = j
    return runs


def _most_digits(word: str) -> int:
    """The most digits a number word can stand for (tens and teens two, "hundred" adds two zeros...)."""
    if word in _UNITS or word in _ZEROS:
        return 1
    return {"hundred": 3, "thousand": 4, "double": 2, "triple": 3}.get(word, 2)


def may_hold_value(words: Sequence[str], *, min_digits: int = 6) -> bool:
    """Whether a turn's words could spell a value worth classifying: a run of digit groups and number
    words that can stand for ``min_digits`` digits or more (the shortest value classified has 6, a
    7-digit number needs a phone word). Counting generously keeps this a safe test: a turn failing it
    is skipped without being parsed."""
    streak = 0
    for word in words:
        if word.isdigit():
            streak += len(word)
        elif word in NUMBER_WORDS:
            streak += _most_digits(word)
        else:
            streak = 0
            continue
        if streak >= min_digits:
            return True
    return False
