"""Slot values in what a caller says: dates, times, names, phone numbers, booking ids and services.

The reference agent understands callers by rules, not a model, so each rule here is one a person can
read and a test can pin. Callers say dates and times the way people speak ("tomorrow", "Tuesday",
"December 9", "the 9th", "3 pm", "15:00", "half past two", "noon"), and the agent must turn them into the
ISO values its tools take. A bare number ("3", "four") is only a time when the agent has just asked
for one, which is how a receptionist hears it too. Dates always resolve forwards from ``today`` (a
clinic books the future), and times with no am/pm resolve into clinic hours (1 to 7 is afternoon).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta

__all__ = [
    "SERVICE_ALIASES",
    "Slots",
    "extract",
    "extract_booking_id",
    "extract_date",
    "extract_name",
    "extract_phone",
    "extract_service",
    "extract_time",
    "say_date",
    "say_time",
]

_WEEKDAYS = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tues": 1, "tue": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thurs": 3, "thu": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty-five": 45, "forty five": 45, "oh five": 5}
_UNITS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
_ORDINALS = {
    **{word: n for n, word in enumerate(_UNITS, start=1)},
    "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
    **{f"twenty-{word}": 20 + n for n, word in enumerate(_UNITS, start=1)},
    **{f"twenty {word}": 20 + n for n, word in enumerate(_UNITS, start=1)},
    "thirtieth": 30, "thirty-first": 31, "thirty first": 31,
}  # fmt: skip

SERVICE_ALIASES: dict[str, tuple[str, ...]] = {
    "cleaning": ("cleaning", "clean", "hygiene", "scale and polish", "hygienist"),
    "checkup": ("checkup", "check-up", "check up", "exam", "examination"),
    "whitening": ("whitening", "whiten", "bleaching"),
    "filling": ("filling", "cavity", "cavities"),
    "x-ray": ("x-ray", "x-rays", "xray", "x ray"),
    "crown": ("crown",),
    "root canal": ("root canal",),
    "extraction": ("extraction", "pull a tooth", "tooth out", "wisdom tooth", "wisdom teeth"),
}
"""How callers name each service, by the canonical name the price list uses."""


def _alternation(words: Iterable[str]) -> str:
    """A regex alternation, longest first so "tuesday" wins over "tue"; a space also matches a hyphen."""
    options = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(option).replace(r"\ ", r"[\s-]") for option in options)


_NUMBER_WORD = _alternation(_NUMBERS)
_HOUR = rf"(?:\d{{1,2}}|{_NUMBER_WORD})"
_MERIDIEM = (
    r"(?:a\.?\s?m\.?|p\.?\s?m\.?|in\s+the\s+morning|in\s+the\s+afternoon|in\s+the\s+evening|at\s+night)"
)

_RELATIVE = re.compile(r"\b(?:the\s+)?(day\s+after\s+tomorrow|tomorrow|today|tonight)\b", re.IGNORECASE)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WEEKDAY = re.compile(rf"\b(?:(?:this|next|on)\s+)?({_alternation(_WEEKDAYS)})\b\.?", re.IGNORECASE)
_DAY_NUMBER = rf"(\d{{1,2}})(?:st|nd|rd|th)?|({_alternation(_ORDINALS)})"
_MONTH_DAY = re.compile(rf"\b({_alternation(_MONTHS)})\.?\s+(?:the\s+)?(?:{_DAY_NUMBER})\b", re.IGNORECASE)
_DAY_MONTH = re.compile(
    rf"\b(?:the\s+)?(?:{_DAY_NUMBER})\s+(?:of\s+)?({_alternation(_MONTHS)})\b\.?", re.IGNORECASE
)
_ORDINAL_DAY = re.compile(
    rf"\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)\b|\bthe\s+({_alternation(_ORDINALS)})\b", re.IGNORECASE
)

_NOON = re.compile(r"\b(noon|midday|mid-day)\b", re.IGNORECASE)
_PAST = re.compile(rf"\b(half|quarter)\s+past\s+({_HOUR})\b", re.IGNORECASE)
_TO = re.compile(rf"\bquarter\s+to\s+({_HOUR})\b", re.IGNORECASE)
_CLOCK = re.compile(rf"\b(\d{{1,2}})[:.](\d{{2}})\s*({_MERIDIEM})?", re.IGNORECASE)
_WORD_MINUTES = re.compile(
    rf"\b({_NUMBER_WORD})[\s-]+({_alternation(_MINUTE_WORDS)})\b\s*({_MERIDIEM})?", re.IGNORECASE
)
_HOUR_MERIDIEM = re.compile(rf"\b({_HOUR})\s*(?:o'?\s?clock\s*)?({_MERIDIEM})", re.IGNORECASE)
_OCLOCK = re.compile(rf"\b({_HOUR})\s*o'?\s?clock\b", re.IGNORECASE)
_AT_HOUR = re.compile(
    rf"\b(?:at|around|for|by|about)\s+({_HOUR})\b(?!\s*(?:st|nd|rd|th|[:.]\d))", re.IGNORECASE
)
_BARE_HOUR = re.compile(rf"\b({_HOUR})\b(?!\s*(?:st|nd|rd|th|[:.]\d|-\d))", re.IGNORECASE)

_BOOKING_ID = re.compile(r"\bn\.?\s?b\.?[\s-]*((?:\d[\s-]?){3}\d)\b", re.IGNORECASE)
_PHONE = re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?!\d)")

_NAME_WORD = r"[A-Za-z][A-Za-z'\-]*"
_STRONG_NAME = re.compile(
    rf"\b(?:my\s+name\s+is|my\s+name's|name\s+is|name's|call\s+me)\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})",
    re.IGNORECASE,
)
_WEAK_NAME = re.compile(
    r"\b(?:[Tt]his\s+is|[Ii]t's|[Ii]t\s+is|I\s+am|I'm|[Uu]nder)\s+([A-Z][A-Za-z'\-]*(?:\s+[A-Z][A-Za-z'\-]*){0,2})"
)
"""After "this is", "it's" or "I'm" a name is capitalised, as transcripts write names ("this is urgent" is
not one); after "my name is" anything goes."""
_NOT_NAMES = frozenset(
    """a an the and or but i i'd i'll i'm me my you your we our it it's is are was be to for of on in at
    with from about this that yes yeah yep no nope not sure ok okay please thanks thank hi hello hey
    calling looking trying hoping wondering just still here there going want wanted would like need book
    booking appointment cancel reschedule change move price cost much how what when where who why can
    could do does did have has had sorry well um uh so actually also good great fine morning afternoon
    evening today tomorrow tonight next this monday tuesday wednesday thursday friday saturday sunday
    speaking available free interested after before new patient again one two first second earlier
    later last other either any works work that's what's all bye goodbye cheers nothing else done never
    mind human person someone somebody agent representative operator""".split()
)
"""Words that end a name or show that what follows "I'm" or "it's" is not one."""


_SHORT_ANSWER_WORDS = 6
"""A bare answer to "what's your name?" is short ("sure, it's Dana Reyes"); a longer one is a sentence."""


@dataclass(frozen=True)
class Slots:
    """Everything one caller message told: each value is ``None`` when it said nothing of it."""

    date: date | None = None
    time: time | None = None
    name: str | None = None
    phone: str | None = None
    booking_id: str | None = None
    service: str | None = None


def _next_weekday(today: date, weekday: int) -> date:
    """The next such weekday strictly after today ("Monday" said on a Monday means next week's)."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _on_or_after(today: date, month: int, day: int) -> date | None:
    """That month and day this year, or next year when it has passed; ``None`` when no such day."""
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _day_of(match: re.Match[str], digits: int, word: int) -> int:
    if match.group(digits):
        return int(match.group(digits))
    return _ORDINALS[re.sub(r"[\s-]+", "-", match.group(word).lower())]


def _date_with_span(text: str, today: date) -> tuple[date, tuple[int, int]] | None:
    """The first date the text names, with where it was said (so a time reader can skip it)."""
    if match := _ISO.search(text):
        try:
            return date(int(match[1]), int(match[2]), int(match[3])), match.span()
        except ValueError:
            pass
    if match := _MONTH_DAY.search(text):
        found = _on_or_after(today, _MONTHS[match[1].lower()], _day_of(match, 2, 3))
        if found is not None:
            return found, match.span()
    if match := _DAY_MONTH.search(text):
        found = _on_or_after(today, _MONTHS[match[3].lower()], _day_of(match, 1, 2))
        if found is not None:
            return found, match.span()
    if match := _RELATIVE.search(text):
        word = re.sub(r"\s+", " ", match[1].lower())
        offset = {"today": 0, "tonight": 0, "tomorrow": 1, "day after tomorrow": 2}[word]
        return today + timedelta(days=offset), match.span()
    if match := _WEEKDAY.search(text):
        return _next_weekday(today, _WEEKDAYS[match[1].lower()]), match.span()
    if match := _ORDINAL_DAY.search(text):
        day = _day_of(match, 1, 2)
        month_start = today.replace(day=1)
        for months_ahead in (0, 1, 2):
            first = (month_start + timedelta(days=32 * months_ahead)).replace(day=1)
            try:
                candidate = first.replace(day=day)
            except ValueError:
                continue
            if candidate >= today:
                return candidate, match.span()
    return None


def extract_date(text: str, today: date) -> date | None:
    """The first date ``text`` names, resolved forwards from ``today``."""
    found = _date_with_span(text, today)
    return found[0] if found else None


def _hour_value(token: str) -> int:
    token = token.lower()
    return _NUMBERS[token] if token in _NUMBERS else int(token)


def _clock(hour: int, minute: int, meridiem: str | None) -> time | None:
    """A time of day from a spoken hour: am/pm as said, else clinic hours (1 to 7 is afternoon)."""
    if meridiem:
        marker = re.sub(r"[\s.]", "", meridiem.lower())
        afternoon = marker in {"pm", "intheafternoon", "intheevening", "atnight"}
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if afternoon else 0)
    elif 1 <= hour <= 7:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def extract_time(text: str, *, bare: bool = False) -> time | None:
    """The first time of day ``text`` names; a bare number counts only when ``bare`` (a time was asked)."""
    if _NOON.search(text):
        return time(12, 0)
    if match := _PAST.search(text):
        base = _clock(_hour_value(match[2]), 0, None)
        minutes = 30 if match[1].lower() == "half" else 15
        return base.replace(minute=minutes) if base else None
    if match := _TO.search(text):
        base = _clock(_hour_value(match[1]), 0, None)
        return time((base.hour - 1) % 24, 45) if base else None
    if match := _CLOCK.search(text):
        return _clock(int(match[1]), int(match[2]), match[3])
    if match := _WORD_MINUTES.search(text):
        minutes = _MINUTE_WORDS[re.sub(r"[\s-]+", " ", match[2].lower()).replace("forty five", "forty-five")]
        return _clock(_NUMBERS[match[1].lower()], minutes, match[3])
    for pattern in (_HOUR_MERIDIEM, _OCLOCK, _AT_HOUR):
        if match := pattern.search(text):
            meridiem = match[2] if pattern is _HOUR_MERIDIEM else None
            return _clock(_hour_value(match[1]), 0, meridiem)
    if bare and (match := _BARE_HOUR.search(text)):
        return _clock(_hour_value(match[1]), 0, None)
    return None


def extract_booking_id(text: str) -> str | None:
    """A booking number as the clinic writes it (``NB-1234``), however it was spaced when said."""
    match = _BOOKING_ID.search(text)
    return "NB-" + re.sub(r"\D", "", match[1]) if match else None


def extract_phone(text: str) -> str | None:
    """A ten-digit phone number, as digits only (``4155550134``)."""
    match = _PHONE.search(text)
    return "".join(match.groups()) if match else None


def _name_words(candidate: str) -> str | None:
    words: list[str] = []
    for word in candidate.split():
        if word.lower() in _NOT_NAMES:
            break
        words.append(word)
    if not words:
        return None
    return " ".join(word[:1].upper() + word[1:] for word in words)


def extract_name(text: str, *, expected: bool = False) -> str | None:
    """The caller's name: said outright ("my name is Dana Reyes", "this is Dana"), or, when the agent has
    just asked for it (``expected``), a short answer of one to three words that are not ordinary words."""
    for pattern in (_STRONG_NAME, _WEAK_NAME):
        for match in pattern.finditer(text):
            found = _name_words(match[1])
            if found is not None:
                return found
    if expected:
        words = [word.strip('.,!?;:"') for word in text.split()]
        if len(words) > _SHORT_ANSWER_WORDS or any(not re.fullmatch(_NAME_WORD, w) for w in words if w):
            return None
        while words and (not words[0] or words[0].lower() in _NOT_NAMES):
            words.pop(0)
        return _name_words(" ".join(words[:3]))
    return None


_SERVICE_PATTERNS = [
    (service, re.compile(rf"\b(?:{_alternation(aliases)})\b", re.IGNORECASE))
    for service, aliases in SERVICE_ALIASES.items()
]


def extract_service(text: str) -> str | None:
    """The canonical name of the first service the text mentions (``"clean my teeth"`` → ``cleaning``)."""
    first: tuple[int, str] | None = None
    for service, pattern in _SERVICE_PATTERNS:
        match = pattern.search(text)
        if match and (first is None or match.start() < first[0]):
            first = (match.start(), service)
    return first[1] if first else None


def extract(text: str, today: date, *, expecting: str | None = None) -> Slots:
    """Every slot in one caller message; ``expecting`` names the slot the agent just asked for, which
    lets a bare answer ("3", "Dana Reyes") fill it."""
    dated = _date_with_span(text, today)
    rest = text
    if dated is not None:
        start, end = dated[1]
        rest = text[:start] + " " + text[end:]
    booking_id = extract_booking_id(rest)
    phone = extract_phone(rest)
    rest = _PHONE.sub(" ", _BOOKING_ID.sub(" ", rest))
    return Slots(
        date=dated[0] if dated else None,
        time=extract_time(rest, bare=expecting == "time"),
        name=extract_name(text, expected=expecting == "name"),
        phone=phone,
        booking_id=booking_id,
        service=extract_service(text),
    )


def say_date(value: date) -> str:
    """A date as the agent says it: ``Tuesday, December 9``."""
    return f"{value:%A}, {value:%B} {value.day}"


def say_time(value: time) -> str:
    """A time as the agent says it: ``3:00 PM``, ``9:30 AM``."""
    hour = value.hour % 12 or 12
    return f"{hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"
