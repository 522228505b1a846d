"""Details a say-do claim names, compared with the arguments and result of the tool call that backs it.

"I've booked you for 7 pm" backed by a booking made for 20:00 is still a false statement. The claim's
times, dates, weekdays, months, parts of the day, amounts, seats and rooms, quantities, items and email
addresses are read (spoken numbers first turned into digits: "three thirty pm" is 15:30, "two hundred
dollars" is 200) and compared with the same kind of value in the tool call. A kind the tool call does not
carry is not compared: silence is not a contradiction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import JsonValue

from ._spoken import spoken_tokens
from ._text import STOPWORDS

__all__ = ["DETAIL_KINDS", "Mismatch", "detail_mismatches", "spoken_digits"]

DETAIL_KINDS = (
    "weekday",
    "date",
    "month",
    "time",
    "part_of_day",
    "amount",
    "code",
    "quantity",
    "item",
    "email",
    "address",
    "channel",
)
"""Every kind of detail compared; the ``details`` parameter picks among them."""

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_PARTS = {
    "morning": (5, 12),
    "afternoon": (12, 18),
    "evening": (17, 23),
    "tonight": (17, 24),
    "night": (19, 24),
}
_CURRENCY = {
    "£": 1.0, "$": 1.0, "€": 1.0, "pound": 1.0, "pounds": 1.0, "quid": 1.0, "dollar": 1.0, "dollars": 1.0,
    "bucks": 1.0, "euro": 1.0, "euros": 1.0, "rupees": 1.0, "pence": 0.01, "p": 0.01, "cents": 0.01,
    "percent": 1.0, "%": 1.0,
}  # fmt: skip
_AMOUNT_KEYS = frozenset(
    "amount total price cost value sum fee charge credit refund balance discount percent percentage pct rate "
    "payment deposit limit adjustment".split()
)
_MINOR_KEYS = frozenset("cents pence minor".split())
_CODE_LABELS = frozenset(
    "seat room row gate table bay cabin berth pitch platform locker suite bed carriage coach desk".split()
)
_PARTY_KEYS = frozenset("party party_size partysize guests people covers pax group_size".split())
_CLOSED_VOCAB: dict[str, frozenset[str]] = {
    "size": frozenset("small medium regular large".split()),
    "class": frozenset("economy premium business first".split()),
    "cabin": frozenset("economy premium business first".split()),
    "colour": frozenset("black white red blue green silver grey gray gold pink purple".split()),
    "color": frozenset("black white red blue green silver grey gray gold pink purple".split()),
    "diet": frozenset("vegetarian vegan halal kosher".split()),
}
_CODES = {
    "s": "small", "sm": "small", "m": "medium", "med": "medium", "l": "large", "lg": "large", "lrg": "large",
    "r": "regular", "reg": "regular", "xl": "large", "y": "economy", "j": "business", "f": "first",
}  # fmt: skip
"""Codes a tool writes for a closed-vocabulary value ("size": "M" is the medium the agent said)."""
_FREE_ITEM_KEYS = frozenset(
    "item items product products dish dishes meal plan tariff package bundle addon topping drink side "
    "service treatment procedure course extra extras option options variant tier level grade site location "
    "branch venue destination depot".split()
)
_OBJECT_GENERIC = frozenset(
    "order basket cart account item items one ones it that this them those new old replacement booking "
    "reservation request all everything something anything there here today tomorrow now right away "
    "you your me us for with on off in to from car vehicle appointment engineer technician visit slot "
    "session consultation call callback date time".split()
)
_NAMED_ACTIONS = frozenset("add remove order return dispatch book activate upgrade renew".split())
"""Actions whose object names the product or service acted on ("booked a beard trim", "added the sports
pack"): a specific word of it that the tool's item or service field lacks is a mismatch."""
_PERSON = re.compile(r"\b(?:with|dr|doctor|mr|mrs|ms|miss|nurse)\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Mismatch:
    """One detail the claim named that the tool call contradicts."""

    kind: str
    said: str
    tool: str

    def describe(self) -> str:
        return f"said {self.said}, tool got {self.tool}"


def spoken_digits(text: str) -> str:
    """``text`` lower-cased with number words rewritten as digits ("forty five" → "45", "fourteenth" →
    "14th"), everything else kept in place."""
    low = text.lower().replace("\u2019", "'").replace("a.m.", "am").replace("p.m.", "pm")
    toks = spoken_tokens(low)
    out: list[str] = []
    cursor = 0
    for i, tok in enumerate(toks):
        original = low[tok.start : tok.start + 1]
        if tok.digits is not None and not tok.text.isdigit():
            new = tok.digits
        elif tok.digits is None and tok.text[:1].isdigit() and not original.isdigit():
            new = tok.text  # an ordinal word, now "14th"
        else:
            continue
        end = toks[i + 1].start if i + 1 < len(toks) else len(low)
        span = low[tok.start : end]
        out.append(low[cursor : tok.start])
        out.append(new + span[len(span.rstrip()) :])
        cursor = end
    out.append(low[cursor:])
    return "".join(out)


# --- the tool side -------------------------------------------------------------------------------------


def _flatten(value: JsonValue, key: str = "") -> Iterator[tuple[str, JsonValue]]:
    """(key, scalar) pairs of a JSON value; a list's items keep their parent's key."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, str(k).lower())
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(v, key)
    elif value is not None:
        yield key, value


def _key_words(key: str) -> set[str]:
    return {w for w in re.split(r"[^a-z]+", re.sub(r"(?<=[a-z])(?=[A-Z])", "_", key).lower()) if w}


@dataclass(frozen=True)
class _ToolSide:
    pairs: tuple[tuple[str, JsonValue], ...]
    text: str
    item_groups: tuple[dict[str, JsonValue], ...]


def _tool_side(arguments: JsonValue, result: JsonValue) -> _ToolSide:
    pairs = tuple(_flatten(arguments)) + tuple(_flatten(result))
    text = " ".join(str(v) for _, v in pairs).lower()
    groups: list[dict[str, JsonValue]] = []

    def collect(value: JsonValue) -> None:
        if isinstance(value, dict):
            scalars: dict[str, JsonValue] = {
                str(k).lower(): v for k, v in value.items() if not isinstance(v, dict | list)
            }
            if scalars:
                groups.append(scalars)
            for v in value.values():
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    collect(arguments)
    collect(result)
    return _ToolSide(pairs, text, tuple(groups))


# --- times -----------------------------------------------------------------------------------------------

_CLOCK = re.compile(
    r"\b(\d{1,2})(?:[:.](\d{2})|\s+(\d{2}))?\s*(am|pm)\b"
    r"|\b(\d{1,2}):(\d{2})\b"
    r"|\b(\d{1,2})\s*o'clock\b"
    r"|\bhalf (?:past )?(\d{1,2})\b"
    r"|\bquarter (past|to) (\d{1,2})\b"
    r"|\b(noon|midday|midnight)\b"
    r"|\bat (\d{1,2})(?:\s+(\d{2}))?\b(?!\s*(?:st|nd|rd|th|%|percent|pounds|dollars|euros|of|past|to)\b)"
    r"(?![:.]?\d)(?!\s+[a-z]+\s+(?:road|rd|street|st|avenue|ave|lane|drive|close|way|court|place|crescent|"
    r"terrace|gardens|grove|hill|park|square|row|walk|mews)\b)"
    r"|\b(5|10|20|25) (past|to) (\d{1,2})\b"
    r"|\b(?:for|from|on|by) (\d{1,2})\s+([0-5]\d)\b"
    r"(?!\s*(?:am|pm|minutes?|mins?|people|guests|pounds|dollars|euros|%))"
)
_EVENING_AFTER = re.compile(r"^\s*(?:in the (evening|afternoon|morning)|at night|tonight)")


@dataclass(frozen=True)
class _Time:
    hour: int
    minute: int
    exact: bool
    """Known to be am or pm (or 24-hour); otherwise the hour matches either half of the day."""

    def show(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}" if self.exact else f"{self.hour}:{self.minute:02d}"


def _said_times(text: str) -> list[_Time]:
    out: list[_Time] = []
    for m in _CLOCK.finditer(text):
        g = m.groups()
        if g[0] is not None:
            minute = int(g[1] or g[2] or 0)
            out.append(_Time(int(g[0]) % 12 + (12 if g[3] == "pm" else 0), minute, True))
        elif g[4] is not None:
            hour = int(g[4])
            out.append(_Time(hour, int(g[5]), hour > 12 or hour == 0 or g[4].startswith("0")))
        elif g[6] is not None:
            out.append(_Time(int(g[6]), 0, False))
        elif g[7] is not None:
            out.append(_Time(int(g[7]), 30, False))
        elif g[9] is not None:
            hour = int(g[9]) - (1 if g[8] == "to" else 0)
            out.append(_Time(hour, 45 if g[8] == "to" else 15, False))
        elif g[10] is not None:
            out.append(_Time(0 if g[10] == "midnight" else 12, 0, True))
        elif g[11] is not None:
            out.append(_Time(int(g[11]), int(g[12] or 0), False))
        elif g[13] is not None:  # "ten past nine", "twenty to six"
            minutes, hour = int(g[13]), int(g[15])
            out.append(
                _Time(hour, minutes, False) if g[14] == "past" else _Time(hour - 1, 60 - minutes, False)
            )
        elif g[16] is not None:  # "booked for four thirty"
            out.append(_Time(int(g[16]), int(g[17]), False))
        else:
            continue
        last = out[-1]
        after = _EVENING_AFTER.match(text[m.end() :])
        if not last.exact and after is not None and last.hour <= 12:
            pm = after.group(1) != "morning"
            out[-1] = _Time(last.hour % 12 + (12 if pm else 0), last.minute, True)
    return [t for t in out if 0 <= t.hour <= 24 and 0 <= t.minute < 60]


_SAID_WINDOW = re.compile(
    r"\b(?:between|from) (\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?(?: o'clock)? (?:and|to|till|until|-) "
    r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?\b"
)
"""A time window said by its ends: "between 8 and 12", "from one to three pm", "between 9.30 and 11 am"."""


def _said_windows(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, exact) of each window in minutes; an end without am/pm lends its half to the start,
    and a window without either is read in the half of the day where it makes sense (8 to 12 is morning,
    1 to 3 afternoon: an end before its start is pm)."""
    out: list[tuple[int, int, bool]] = []
    for m in _SAID_WINDOW.finditer(text):
        h1, m1, half1, h2, m2, half2 = m.groups()
        a, b = int(h1), int(h2)
        if a > 24 or b > 24:
            continue
        exact = bool(half1 or half2)
        half_a = half1 or half2
        if half_a:
            a = a % 12 + (12 if half_a == "pm" else 0)
        if half2:
            b = b % 12 + (12 if half2 == "pm" else 0)
        if not exact and a <= 12 and b <= 12:
            if a < 7:  # "between one and three" on a working day is afternoon
                a, b = a + 12, b + 12
            elif b < a or b == 12:
                b = b if b == 12 else b + 12
        elif b < a and b < 12:
            b += 12
        out.append((a * 60 + int(m1 or 0), b * 60 + int(m2 or 0), exact))
    return out


_TOOL_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*(?:-|–|to|until)\s*(\d{1,2}):(\d{2})")
_TOOL_CLOCK = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::\d{2})?\s*(am|pm)?|(?<!\d)(\d{1,2})\s*(am|pm)\b")


def _tool_times(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(times as minutes from midnight, ranges) in the tool's values."""
    ranges = [(int(a) * 60 + int(b), int(c) * 60 + int(d)) for a, b, c, d in _TOOL_RANGE.findall(text)]
    text = _TOOL_RANGE.sub(" ", text)  # a range's ends are not times of their own
    times: list[int] = []
    for m in _TOOL_CLOCK.finditer(text):
        if m.group(1) is not None:
            hour, minute, half = int(m.group(1)), int(m.group(2)), m.group(3)
        else:
            hour, minute, half = int(m.group(4)), 0, m.group(5)
        if half:
            hour = hour % 12 + (12 if half == "pm" else 0)
        times.append(hour * 60 + minute)
    return [(t, t) for t in times], ranges


def _time_matches(said: _Time, at: int, tolerance: int) -> bool:
    hours = [said.hour] if said.exact else [said.hour % 12, said.hour % 12 + 12]
    return any(abs(h * 60 + said.minute - at) <= tolerance for h in hours)


# --- dates -----------------------------------------------------------------------------------------------

_MONTH_RE = "|".join(MONTHS)
_SAID_DATE = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?: of)? ({_MONTH_RE})\b"
    rf"|\b({_MONTH_RE}) (?:the )?(\d{{1,2}})(?:st|nd|rd|th)?\b"
    r"|\b(?:on|for|from|until|till|by|to|of|monday|tuesday|wednesday|thursday|friday|saturday|sunday) "
    r"the (\d{1,2})(?:st|nd|rd|th)\b"
)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")
_TOOL_DATE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? ({_MONTH_RE})\b|\b({_MONTH_RE}) (\d{{1,2}})\b")


def _said_dates(text: str) -> set[tuple[int | None, int]]:
    out: set[tuple[int | None, int]] = set()
    for m in _SAID_DATE.finditer(text):
        if m.group(1):
            out.add((MONTHS.index(m.group(2)) + 1, int(m.group(1))))
        elif m.group(3):
            out.add((MONTHS.index(m.group(3)) + 1, int(m.group(4))))
        else:
            out.add((None, int(m.group(5))))
    return {d for d in out if 1 <= d[1] <= 31}


def _tool_days(side: _ToolSide) -> set[tuple[int, int]]:
    """Days of the month a tool names without a month ({"day_of_month": 25}), as (0, day)."""
    return {
        (0, value)
        for key, value in side.pairs
        if isinstance(value, int)
        and not isinstance(value, bool)
        and 1 <= value <= 31
        and "day" in _key_words(key)
    }


def _tool_dates(text: str) -> set[tuple[int, int]]:
    out = {(int(mo), int(d)) for _, mo, d in _ISO.findall(text)}
    for m in _TOOL_DATE.finditer(text):
        if m.group(1):
            out.add((MONTHS.index(m.group(2)) + 1, int(m.group(1))))
        else:
            out.add((MONTHS.index(m.group(3)) + 1, int(m.group(4))))
    return out


def _iso_weekdays(text: str) -> set[str]:
    out: set[str] = set()
    for year, month, day in _ISO.findall(text):
        try:
            out.add(WEEKDAYS[date(int(year), int(month), int(day)).weekday()])
        except ValueError:
            continue
    return out


# --- amounts, codes, quantities -----------------------------------------------------------------------------

_SAID_AMOUNT = re.compile(
    r"([£$€])\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(%|percent|per cent|pounds?|quid|dollars?|bucks|"
    r"euros?|rupees|pence|cents|p\b)"
)


_MAJOR_MINOR = re.compile(
    r"\b(\d{1,6}) (?:pounds?|quid|dollars?|bucks|euros?)(?: and)? (\d{1,2})\b(?: (?:pence|cents|p)\b)?"
)
"""An amount said in two parts: "twelve pounds fifty", "twelve dollars and fifty cents"."""
_BARE_PAIR = re.compile(
    r"\b(?:of|refunded|credited|charged|paid|transferred|taken|deposited|debited|totalling|totaling|total|"
    r"amount|balance|back) (?:is |was |of )?(\d{1,4}) (\d{2})\b(?! ?(?:am|pm|o'clock|minutes?|hours?|days?|"
    r"nights?|months?|years?|[:.]\d))"
)
"""An amount said as two numbers after a money word: "a payment of forty-two fifty" is 42.50."""


def _said_amounts(text: str) -> set[float]:
    out: set[float] = set()
    for pattern in (_MAJOR_MINOR, _BARE_PAIR):
        for m in pattern.finditer(text):
            out.add(round(int(m.group(1)) + int(m.group(2)) / 100, 2))
    text = _MAJOR_MINOR.sub(" ", text)
    for m in _SAID_AMOUNT.finditer(text):
        number = m.group(2) or m.group(3)
        unit = (m.group(1) or m.group(4) or "").replace("per cent", "percent")
        try:
            value = float(number.replace(",", ""))
        except ValueError:
            continue
        out.add(round(value * _CURRENCY.get(unit, 1.0), 2))
    return out


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*[£$€]?\s?(\d[\d,]*(?:\.\d+)?)\s*(?:[a-z]{3})?\s*", value.lower())
        if m:
            return float(m.group(1).replace(",", ""))
    return None


def _tool_amounts(side: _ToolSide) -> set[float]:
    out: set[float] = set()
    for key, value in side.pairs:
        words = _key_words(key)
        if not words & (_AMOUNT_KEYS | _MINOR_KEYS):
            continue
        number = _number(value)
        if number is None:
            continue
        out.add(round(number, 2))
        if words & _MINOR_KEYS:
            out.add(round(number / 100, 2))
    return out


_SAID_CODE = re.compile(
    rf"\b({'|'.join(sorted(_CODE_LABELS))})s?(?: number)? ([a-z]?\d{{1,4}}(?: ?[a-k](?![a-z']))?)\b"
    r"|\b(\d{1,3}[a-k])\b"
    r"|\b(row|coach|carriage|gate|bay|deck|block|zone|section|terminal) ([a-z])\b(?!')"
)
"""A seat or room code after its label ("seat 22C", "seat twenty-two C" read as "22 c", "room 1104"), a bare
seat code ("14C"), or a one-letter row, coach or gate ("row F", "coach B")."""


def _said_codes(text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in _SAID_CODE.finditer(text):
        label = m.group(1) or m.group(4) or "seat"
        code = m.group(2) or m.group(3) or m.group(5)
        out.setdefault(label, set()).add(code.upper().replace(" ", ""))
    return out


def _tool_codes(side: _ToolSide, label: str) -> set[str]:
    """The tool's values for a code label; a seat given with its row ("F10") also counts as "10"."""
    out: set[str] = set()
    for key, value in side.pairs:
        if (
            label in {_singular(w) for w in _key_words(key)}
            and not isinstance(value, bool)
            and str(value).strip()
        ):
            code = str(value).upper().replace(" ", "")
            out.add(code)
            if re.fullmatch(r"[A-Z]\d{1,3}", code):
                out.add(code[1:])
    return out


_SAID_COUNT = re.compile(r"\b(\d{1,3}) ([a-z]+)")
_SAID_PARTY = re.compile(
    r"\b(?:table|booking|reservation) for (\d{1,2})\b(?![:.]\d|\s*(?:am|pm|o'clock)\b)"
    r"|\bfor (\d{1,2}) (?:people|guests|adults)\b"
)
"""A party size ("a table for 4"), not a time ("a table for 7:30 pm")."""
_QUANTITY_KEYS = frozenset("qty quantity count units number".split())


def _singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + repl
    return word


_NOT_COUNTED = frozenset("am pm percent pound dollar euro minute hour st nd rd th".split())


_COUNT_WORDS = (
    (re.compile(r"\bhalf a dozen\b"), "6"),
    (re.compile(r"\ba dozen\b"), "12"),
    (re.compile(r"\ba (?:pair|couple) of\b"), "2"),
    (re.compile(r"\b(?:a single|just one|one single)\b"), "1"),
)
"""Counts said without a number word: "a pair of tickets" is 2 tickets, "half a dozen boxes" 6."""


def _quantity_mismatches(text: str, side: _ToolSide) -> list[Mismatch]:
    out: list[Mismatch] = []
    for pattern, digits in _COUNT_WORDS:
        text = pattern.sub(digits, text)
    for m in _SAID_PARTY.finditer(text):
        said = int(m.group(1) or m.group(2))
        party = {
            n
            for k, v in side.pairs
            if (k in _PARTY_KEYS or _key_words(k) & {"party", "guests", "people"})
            and (n := _number(v)) is not None
        }
        if party and float(said) not in party:
            out.append(Mismatch("quantity", f"party of {said}", "/".join(f"{g:g}" for g in sorted(party))))
    for m in _SAID_COUNT.finditer(text):
        said, noun = int(m.group(1)), _singular(m.group(2))
        if noun in _NOT_COUNTED:
            continue
        got: set[float] = set()
        for group in side.item_groups:
            named = any(isinstance(v, str) and _singular(v.lower()) == noun for v in group.values())
            for key, value in group.items():
                words = {_singular(w) for w in _key_words(key)}
                number = _number(value)
                if number is None:
                    continue
                if noun in words or (named and words & {"qty", "quantity", "count"}):
                    got.add(number)
        if not got:
            # one quantity in the call and one count said: "three packs of batteries", {"quantity": 2}
            got = {
                n for k, v in side.pairs if _key_words(k) & _QUANTITY_KEYS and (n := _number(v)) is not None
            }
            counts = [c for c in _SAID_COUNT.findall(text) if _singular(c[1]) not in _NOT_COUNTED]
            if len(got) != 1 or len(counts) != 1:
                continue
        if float(said) not in got and said not in _pack_sizes(side):
            out.append(Mismatch("quantity", f"{said} {m.group(2)}", "/".join(f"{g:g}" for g in sorted(got))))
    return out


def _pack_sizes(side: _ToolSide) -> set[int]:
    """Numbers inside the call's item names and codes ("ROSE-RED-12", "box of 6"): a count said of a
    pack ("a dozen roses", {"sku": "ROSE-RED-12", "qty": 1}) names the pack, not how many were ordered."""
    return {
        int(number)
        for _, value in side.pairs
        if isinstance(value, str) and any(ch.isalpha() for ch in value)
        for number in re.findall(r"(?<![\d.])\d{1,4}(?![\d.])", value)
    }


_STREET_TYPES = {
    **{
        short: short
        for short in "st rd ln ave dr cl way ct pl blvd cres ter row sq gdns gr hill park mews".split()
    },
    **dict(
        pair.split("=")
        for pair in (
            "street=st road=rd lane=ln avenue=ave drive=dr close=cl court=ct place=pl boulevard=blvd "
            "crescent=cres terrace=ter square=sq gardens=gdns grove=gr parkway=pkwy highway=hwy walk=walk"
        ).split()
    ),
}
"""Street types, spelled out or abbreviated, each to one abbreviation ("Mill Lane" is "mill ln")."""
_ADDRESS = re.compile(rf"\b(\d{{1,5}}[a-z]?),? ((?:[a-z]+ ){{1,3}}?)({'|'.join(_STREET_TYPES)})\b\.?")
"""A street address: house number, one to three name words and a street type ("44 Mill Lane", "12 Oak St")."""


def _addresses(text: str) -> set[tuple[str, str]]:
    """(house number, street name with its type abbreviated) of every street address in ``text``."""
    return {
        (m.group(1), f"{m.group(2).strip()} {_STREET_TYPES[m.group(3)]}") for m in _ADDRESS.finditer(text)
    }


_HOUSE_KEYS = frozenset("number house building no num".split())
_STREET_KEYS = frozenset("street road line1 line thoroughfare".split())


def _tool_addresses(side: _ToolSide) -> set[tuple[str, str]]:
    """Street addresses in the tool's values, also when given in parts ({"number": "21", "street": ...})."""
    found = _addresses(side.text)
    for group in side.item_groups:
        house = [
            str(v)
            for k, v in group.items()
            if _key_words(k) & _HOUSE_KEYS and re.fullmatch(r"\d{1,5}[a-z]?", str(v).lower())
        ]
        street = [str(v) for k, v in group.items() if _key_words(k) & _STREET_KEYS and isinstance(v, str)]
        for h in house:
            for st in street:
                found |= _addresses(f"{h} {st}".lower())
    return found


_CHANNELS = {
    "email": "email", "e-mail": "email", "emailed": "email", "emails": "email", "inbox": "email",
    "text": "sms", "texted": "sms", "texts": "sms", "sms": "sms", "whatsapp": "whatsapp", "letter": "post",
    "post": "post", "posted": "post",
}  # fmt: skip
"""Words naming how something was sent; a claim sent by one channel is not backed by a call on another."""


def _channels(words: Sequence[str]) -> set[str]:
    return {_CHANNELS[w] for w in words if w in _CHANNELS}


def _numbered_names(text: str, side: _ToolSide) -> list[Mismatch]:
    """A product or plan named with a number that the tool names with another ("the Green Fixed 24 tariff"
    against "Green Fixed 12"): the same words, a different number."""
    out: list[Mismatch] = []
    for key, value in side.pairs:
        if not isinstance(value, str) or not _key_words(key) & (_FREE_ITEM_KEYS | {"name", "tariff", "plan"}):
            continue
        found = re.fullmatch(r"\s*([a-z][a-z ]*?)\s+(\d{1,4})\s*", value.lower())
        if found is None or len(found.group(1).split()) > 4:
            continue
        for said in re.finditer(rf"\b{re.escape(found.group(1))}\s+(\d{{1,4}})\b", text):
            if said.group(1) != found.group(2):
                out.append(Mismatch("item", said.group(0), value))
                break
    return out


def _modifier_conflicts(text: str, said_words: set[str], free: list[tuple[str, str]]) -> list[Mismatch]:
    """Items that share their head word but not the word before it: "the oven clean" against an extra of
    "fridge clean". Each modifier must be missing from the other side, so "the deluxe room" still matches
    "deluxe double room" and "a medium sourdough" matches "sourdough"."""
    said = [_singular(w) for w in _WORD.findall(text)]
    out: list[Mismatch] = []
    for _, value in free:
        got = [_singular(w) for w in _WORD.findall(value)]
        got_set = set(got)
        for k, head in enumerate(got):
            if k == 0 or head not in said:
                continue
            theirs = got[k - 1]
            ours = [said[i - 1] for i, w in enumerate(said) if w == head and i > 0]
            if any(
                o != theirs
                and o not in got_set
                and theirs not in said_words
                and o not in STOPWORDS
                and theirs not in STOPWORDS
                and o.isalpha()
                and len(o) > 2
                for o in ours
            ):
                out.append(
                    Mismatch("item", " ".join(w for w in ours if w not in STOPWORDS) + f" {head}", value)
                )
                break
    return out


def _item_mismatches(text: str, object_words: Sequence[str], action: str, side: _ToolSide) -> list[Mismatch]:
    out: list[Mismatch] = _numbered_names(text, side)
    said_words = {_singular(w) for w in _WORD.findall(text)}
    for key, value in side.pairs:
        if not isinstance(value, str):
            continue
        words = _key_words(key)
        for family, vocab in _CLOSED_VOCAB.items():
            if family not in words:
                continue
            got = value.lower().replace("-", " ")
            got_words = {_CODES.get(w, w) for w in got.split()}
            said = sorted(vocab & said_words)
            if said and not any(w in got_words for w in said):
                out.append(Mismatch("item", "/".join(said), got))
    free = [
        (key, value.lower())
        for key, value in side.pairs
        if isinstance(value, str)
        and _key_words(key) & (_FREE_ITEM_KEYS | {"name"})
        and not re.search(r"\d", value)
        and len(value.split()) <= 4
    ]
    if not free:
        return out
    value_words = {_singular(w) for _, v in free for w in _WORD.findall(v)}
    if value_words & said_words:
        out.extend(_modifier_conflicts(text, said_words, free))
        return out
    keyed = [k for k, _ in free if _key_words(k) & said_words - {"item", "items", "name"}]
    cut = next((k for k, w in enumerate(object_words) if _PERSON.fullmatch(w)), len(object_words))
    specific = [
        w
        for w in object_words[:cut]  # words after "with"/"Dr" name a person, not the item
        if w not in STOPWORDS
        and w not in _OBJECT_GENERIC
        and w.isalpha()
        and len(w) > 2
        and w not in WEEKDAYS
        and w not in MONTHS
        and w not in _PARTS
    ]
    if keyed or (action in _NAMED_ACTIONS and specific):
        named = " ".join(specific) or "/".join(keyed)
        out.append(Mismatch("item", named, "/".join(sorted({v for _, v in free}))))
    return out


# --- all together ---------------------------------------------------------------------------------------


def detail_mismatches(
    claim: str,
    arguments: JsonValue,
    result: JsonValue,
    *,
    object_words: Sequence[str] = (),
    action: str = "",
    tool_name: str = "",
    kinds: Sequence[str] = DETAIL_KINDS,
    time_tolerance_min: int = 0,
    amount_tolerance: float = 0.01,
) -> list[Mismatch]:
    """Details named in ``claim`` that the tool call's arguments and result contradict.

    A detail is compared only when the tool call carries the same kind of value; it is a mismatch when
    none of the tool's values of that kind equals what was said (within the tolerances).
    """
    text = spoken_digits(claim)
    side = _tool_side(arguments, result)
    wanted = set(kinds)
    out: list[Mismatch] = []
    if "weekday" in wanted:
        said_days = [w for w in WEEKDAYS if re.search(rf"\b{w}\b", text)]
        got_days = {w for w in WEEKDAYS if w in side.text} | _iso_weekdays(side.text)
        if said_days and got_days and not set(said_days) & got_days:
            out.append(Mismatch("weekday", "/".join(said_days), "/".join(sorted(got_days))))
    said_dates = _said_dates(text)
    got_dates = _tool_dates(side.text) | _tool_days(side)
    if "date" in wanted and said_dates and got_dates:
        if not any(
            d == gd and (m is None or gm == 0 or m == gm) for m, d in said_dates for gm, gd in got_dates
        ):
            said = "/".join(f"{MONTHS[m - 1] + ' ' if m else ''}{d}" for m, d in sorted(said_dates, key=str))
            out.append(Mismatch("date", said, "/".join(f"{MONTHS[m - 1]} {d}" for m, d in sorted(got_dates))))
    if "month" in wanted and not (said_dates and got_dates):
        said_months = [
            m for m in MONTHS if re.search(rf"\b{m}\b", text) and (m != "may" or re.search(r"\d", text))
        ]
        got_months = {m for m in MONTHS if m in side.text} | {
            MONTHS[int(mo) - 1] for _, mo, _ in _ISO.findall(side.text) if 1 <= int(mo) <= 12
        }
        if said_months and got_months and not set(said_months) & got_months:
            out.append(Mismatch("month", "/".join(said_months), "/".join(sorted(got_months))))
    windows = _said_windows(text)
    times = _said_times(_SAID_WINDOW.sub(" ", text))
    points, ranges = _tool_times(side.text)
    if "time" in wanted and windows and (points or ranges):
        # a window matches a tool time inside it, or a tool range overlapping it
        # a tool time at the window's very end ("between 8 and 10" against a visit starting at 10) is outside
        if not any(
            (lo <= p < hi or p == lo) if p == q else (p < hi and q > lo)
            for lo, hi, _ in windows
            for p, q in ranges + points
        ):
            said = "/".join(_show_span((lo, hi)) for lo, hi, _ in windows)
            out.append(Mismatch("time", said, "/".join(_show_span(s) for s in ranges + points)))
    if "time" in wanted and times and (points or ranges):
        spans = ranges + points
        hit = any(
            any(_time_matches(t, lo, time_tolerance_min) for lo, _ in points)
            or any(
                lo <= h * 60 + t.minute <= hi
                for lo, hi in ranges
                for h in ([t.hour] if t.exact else [t.hour % 12, t.hour % 12 + 12])
            )
            for t in times
        )
        if not hit:
            out.append(
                Mismatch("time", "/".join(t.show() for t in times), "/".join(_show_span(s) for s in spans))
            )
    if "part_of_day" in wanted and not times and not windows and (points or ranges):
        parts = [p for p in _PARTS if re.search(rf"\b{p}\b", text)]
        if parts:
            spans = ranges + points
            inside = any(_PARTS[p][0] * 60 <= lo < _PARTS[p][1] * 60 for p in parts for lo, _ in spans)
            if not inside:
                out.append(Mismatch("part_of_day", "/".join(parts), "/".join(_show_span(s) for s in spans)))
    if "amount" in wanted:
        said_amounts = _said_amounts(text)
        got_amounts = _tool_amounts(side)
        if (
            said_amounts
            and got_amounts
            and not any(abs(a - g) <= amount_tolerance for a in said_amounts for g in got_amounts)
        ):
            out.append(
                Mismatch(
                    "amount",
                    "/".join(f"{a:g}" for a in sorted(said_amounts)),
                    "/".join(f"{g:g}" for g in sorted(got_amounts)),
                )
            )
    if "code" in wanted:
        for label, codes in _said_codes(text).items():
            got = _tool_codes(side, label)
            if got and not codes & got:
                out.append(Mismatch("code", f"{label} {'/'.join(sorted(codes))}", "/".join(sorted(got))))
    if "quantity" in wanted:
        out.extend(_quantity_mismatches(text, side))
    if "item" in wanted:
        out.extend(_item_mismatches(text, object_words, action, side))
    if "email" in wanted:
        said_emails = set(_EMAIL.findall(claim.lower()))
        got_emails = set(_EMAIL.findall(side.text))
        if said_emails and got_emails and not said_emails & got_emails:
            out.append(Mismatch("email", "/".join(sorted(said_emails)), "/".join(sorted(got_emails))))
    if "address" in wanted:
        said_addresses = _addresses(text)
        got_addresses = _tool_addresses(side)
        if said_addresses and got_addresses and not said_addresses & got_addresses:
            said = "/".join(" ".join(a) for a in sorted(said_addresses))
            out.append(Mismatch("address", said, "/".join(" ".join(a) for a in sorted(got_addresses))))
    if "channel" in wanted:
        said_channels = _channels(_WORD.findall(text))
        tool_words = list(_key_words(tool_name)) + [
            w for k, v in side.pairs for w in (*_key_words(k), str(v).lower())
        ]
        got_channels = _channels(tool_words)
        if said_channels and got_channels and not said_channels & got_channels:
            out.append(Mismatch("channel", "/".join(sorted(said_channels)), "/".join(sorted(got_channels))))
    return out


def _show_span(span: tuple[int, int]) -> str:
    lo, hi = span
    start = f"{lo // 60:02d}:{lo % 60:02d}"
    return start if lo == hi else f"{start}-{hi // 60:02d}:{hi % 60:02d}"


def as_json(mismatches: Sequence[Mismatch]) -> list[JsonValue]:
    """Evidence rows: kind, what was said, what the tool got."""
    return [{"kind": m.kind, "said": m.said, "tool": m.tool} for m in mismatches]
