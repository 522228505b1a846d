"""Numbers and email addresses read out in Spanish, Portuguese, French, German, Italian and Dutch,
rewritten into the English spoken forms the PII rules read.

A Madrid agent reads a mobile as "seis uno dos, tres cuatro cinco..." and an inbox as "maria punto lopez
arroba gmail punto com"; the digits and the address are the same leak as in English. Rewriting the words
(digits, teens and tens, French compounds such as "soixante-dix-huit"; "arroba", "arobase", "chez" for
"at", "punto", "ponto", "point", "punkt" for "dot") lets one set of rules classify them. The rewrite runs
only when a turn holds one of these words, so English turns pay a set lookup.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ._text import TEXT_CACHE

__all__ = ["FOREIGN_WORDS", "english_forms"]

_DIGITS = {
    "cero": "zero", "uno": "one", "una": "one", "dos": "two", "tres": "three", "três": "three",
    "cuatro": "four", "quatro": "four", "cinco": "five", "seis": "six", "siete": "seven", "sete": "seven",
    "ocho": "eight", "oito": "eight", "nueve": "nine", "nove": "nine", "um": "one", "dois": "two",
    "duas": "two", "zéro": "zero", "deux": "two", "trois": "three", "quatre": "four", "cinq": "five",
    "sept": "seven", "huit": "eight", "neuf": "nine", "null": "zero", "eins": "one", "zwei": "two",
    "zwo": "two", "drei": "three", "vier": "four", "fünf": "five", "sechs": "six", "sieben": "seven",
    "acht": "eight", "neun": "nine", "quattro": "four", "cinque": "five", "sei": "six", "sette": "seven",
    "otto": "eight", "tre": "three", "nul": "zero", "een": "one", "twee": "two", "drie": "three",
    "vijf": "five", "zes": "six", "zeven": "seven", "negen": "nine",
}  # fmt: skip
"""Digit words; ambiguous ones with an English meaning ("due", "un", "six" is shared) are left out."""
_TEENS_TENS = {
    "diez": "ten", "once": "eleven", "doce": "twelve", "trece": "thirteen", "catorce": "fourteen",
    "quince": "fifteen", "veinte": "twenty", "treinta": "thirty", "cuarenta": "forty",
    "cincuenta": "fifty", "sesenta": "sixty", "setenta": "seventy", "ochenta": "eighty", "noventa": "ninety",
    "dix": "ten", "onze": "eleven", "douze": "twelve", "treize": "thirteen", "quatorze": "fourteen",
    "quinze": "fifteen", "seize": "sixteen", "vingt": "twenty", "trente": "thirty", "quarante": "forty",
    "cinquante": "fifty", "soixante": "sixty", "zehn": "ten", "zwölf": "twelve", "zwanzig": "twenty",
    "dreißig": "thirty", "vierzig": "forty", "fünfzig": "fifty", "sechzig": "sixty", "siebzig": "seventy",
    "achtzig": "eighty", "neunzig": "ninety", "dieci": "ten", "venti": "twenty", "trenta": "thirty",
    "quaranta": "forty", "cinquanta": "fifty", "sessanta": "sixty", "settanta": "seventy",
    "ottanta": "eighty", "novanta": "ninety", "dez": "ten", "vinte": "twenty", "trinta": "thirty",
    "quarenta": "forty", "cinquenta": "fifty", "sessenta": "sixty", "tien": "ten", "twaalf": "twelve",
    "twintig": "twenty", "dertig": "thirty", "veertig": "forty", "vijftig": "fifty", "zestig": "sixty",
    "zeventig": "seventy", "tachtig": "eighty", "negentig": "ninety",
}  # fmt: skip
_FRENCH_COMPOUND = re.compile(
    r"\b(soixante|quatre-vingts?)-(dix-sept|dix-huit|dix-neuf|dix|onze|douze|treize|quatorze|quinze|seize|"
    r"et-un|un|deux|trois|quatre|cinq|six|sept|huit|neuf)\b"
)
_FRENCH_TEENS = {"dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16}
_FRENCH_UNITS = {"un": 1, "et-un": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
                 "huit": 8, "neuf": 9}  # fmt: skip
_EMAIL_WORDS = {
    "arroba": "at", "arobase": "at", "chez": "at", "klammeraffe": "at", "chiocciola": "at",
    "punto": "dot", "ponto": "dot", "point": "dot", "punkt": "dot",
    "guion": "dash", "guión": "dash", "tiret": "dash", "traço": "dash", "bindestrich": "dash",
}  # fmt: skip
_SHARED = {"six": "six", "un": "one"}
"""Digit words shared with English or too short to rewrite alone, read only inside a compound."""
FOREIGN_WORDS = frozenset(
    {*_DIGITS, *_TEENS_TENS, *_EMAIL_WORDS, "soixante", "vingt", "vingts", "due", "une"}
)
"""Words whose presence makes a turn worth rewriting."""
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_ENGLISH_TENS = ("", "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ENGLISH_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split()
)


def _english(n: int) -> str:
    return (
        _ENGLISH_SMALL[n]
        if n < 20
        else f"{_ENGLISH_TENS[n // 10]} {_ENGLISH_SMALL[n % 10]}".replace(" zero", "")
    )


def _french(match: re.Match[str]) -> str:
    base = 60 if match.group(1) == "soixante" else 80
    rest = match.group(2)
    if rest.startswith("dix-"):
        value = base + 10 + _FRENCH_UNITS[rest[4:]]
    else:
        value = base + _FRENCH_TEENS.get(rest, _FRENCH_UNITS.get(rest, 0))
    return _english(value)


def _word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word in _EMAIL_WORDS:
        return _EMAIL_WORDS[word]
    parts = word.split("-")
    if len(parts) > 1 and parts[0] in _TEENS_TENS:
        # "trente-quatre", "cinquante-six", "vingt-et-un": tens and a unit
        units = [_DIGITS.get(p) or _SHARED.get(p) for p in parts[1:] if p != "et"]
        if all(units):
            return " ".join([_TEENS_TENS[parts[0]], *(u for u in units if u)])
        return word
    if word in _DIGITS:
        return _DIGITS[word]
    return _TEENS_TENS.get(word, word)


@lru_cache(maxsize=TEXT_CACHE)
def english_forms(lowered: str) -> str:
    """``lowered`` with number and email words of the six languages written as their English spoken
    forms (``lowered`` itself when it holds none). Kept per text: the detectors and the masking that
    places their findings both read it."""
    if not FOREIGN_WORDS.intersection(re.findall(r"[^\W\d_]+", lowered)):
        return lowered
    text = _FRENCH_COMPOUND.sub(_french, lowered)
    text = re.sub(r"\bquatre-vingts?\b", "eighty", text)
    text = re.sub(r"\bdix-(sept|huit|neuf)\b", lambda m: _english(10 + _FRENCH_UNITS[m.group(1)]), text)
    return _AMBIGUOUS_DIGIT.sub(_among_digits, _WORD.sub(_word, text))


_AMBIGUOUS = {"due": "two", "un": "one", "une": "one"}
"""Digit words that are also ordinary words ("due", "un"), read as digits only between other digits."""
_AMBIGUOUS_DIGIT = re.compile(r"\b(?:due|une?)\b")
_ENGLISH_DIGIT = re.compile(r"(?:zero|one|two|three|four|five|six|seven|eight|nine|oh|\d)")


def _among_digits(match: re.Match[str]) -> str:
    text = match.string
    before = re.search(r"(\w+)[\s,]*$", text[: match.start()])
    after = re.match(r"[\s,]*(\w+)", text[match.end() :])
    neighbours = [m.group(1) for m in (before, after) if m is not None]
    if any(_ENGLISH_DIGIT.fullmatch(word) for word in neighbours):
        return _AMBIGUOUS[match.group(0)]
    return match.group(0)
