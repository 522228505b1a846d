"""National identifiers of other countries, in the formats they are written and read in.

A US-centric detector knows the SSN; callers elsewhere are identified by a Spanish DNI or NIE, an Indian
PAN or Aadhaar, a Brazilian CPF, a French NIR, an Italian codice fiscale, a Mexican CURP, a Chilean RUT.
Each has a fixed shape and most a check character, so a value that passes its check is an identifier
whatever words surround it; an Aadhaar (twelve digits, no cheap check here) needs its name nearby. Nine-
digit numbers (Canadian SIN, Dutch BSN) are classified with the other digit runs by their kind word.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["NationalId", "luhn_valid", "national_digits", "national_ids"]

_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_ok(value: str) -> bool:
    digits, letter = value[:-1], value[-1]
    digits = digits.replace("X", "0").replace("Y", "1").replace("Z", "2")
    return digits.isdigit() and _DNI_LETTERS[int(digits) % 23] == letter


def _cpf_ok(value: str) -> bool:
    digits = [int(ch) for ch in value if ch.isdigit()]
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    for n in (9, 10):
        total = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != digits[n]:
            return False
    return True


def _rut_ok(value: str) -> bool:
    body, check = re.sub(r"[^\dk]", "", value.lower())[:-1], value.lower()[-1]
    total, factor = 0, 2
    for ch in reversed(body):
        total += int(ch) * factor
        factor = 2 if factor == 7 else factor + 1
    expected = 11 - total % 11
    return {11: "0", 10: "k"}.get(expected, str(expected)) == check


def _nir_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return len(digits) == 15 and 97 - int(digits[:13]) % 97 == int(digits[13:])


def _pps_ok(value: str) -> bool:
    """Ireland's PPS number: seven digits, a check letter (mod 23, weights 8..2) and an optional letter."""
    digits, letters = value[:7], value[7:]
    if not digits.isdigit() or not 1 <= len(letters) <= 2:
        return False
    total = sum(int(d) * w for d, w in zip(digits, range(8, 1, -1), strict=True))
    if len(letters) == 2 and letters[1] != "W":
        total += (ord(letters[1]) - 64) * 9
    return "WABCDEFGHIJKLMNOPQRSTUV"[total % 23] == letters[0]


def _steuer_id_ok(digits: str) -> bool:
    """Germany's tax identification number: eleven digits, the first not 0, one digit of the first ten
    repeated (twice or three times) and the rest unique, and an ISO 7064 MOD 11,10 check digit."""
    if len(digits) != 11 or not digits.isdigit() or digits[0] == "0":
        return False
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(digits[10])


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)  # fmt: skip


def _verhoeff_ok(digits: str) -> bool:
    """The Verhoeff check an Aadhaar number's last digit carries."""
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number (and a Canadian SIN) satisfies."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def national_digits(digits: str, shapes: tuple[tuple[int, ...], ...]) -> str | None:
    """The national id a run of digits is by its check digit and the way it was grouped, or None.

    ``shapes`` are the run's groupings (as written, and as the pauses of speech split it). A check digit
    alone passes one random number in ten, so the numbers that need no kind word nearby are the ones whose
    grouping is their id's own as well: a Canadian SIN read 3-3-3 (Luhn), an Aadhaar read 4-4-4
    (Verhoeff); a German tax id's check and digit pattern together pass about one random eleven-digit
    number in a hundred. Others of nine digits (an Australian TFN, a Dutch BSN) need their name nearby.
    """
    length = len(digits)
    if length == 9 and (3, 3, 3) in shapes:
        if luhn_valid(digits) and digits[0] not in "08":
            return "ca_sin"
    if length == 12 and (4, 4, 4) in shapes and digits[0] not in "01" and _verhoeff_ok(digits):
        return "in_aadhaar"
    if length == 11 and _steuer_id_ok(digits):
        return "de_steuer_id"
    return None


def _always(_value: str) -> bool:
    return True


@dataclass(frozen=True)
class _Format:
    name: str
    pattern: re.Pattern[str]
    check: Callable[[str], bool]
    label: re.Pattern[str] | None = None
    """Words one of which must be near the value (for formats without a check of their own)."""


_FORMATS = (
    _Format("es_dni", re.compile(r"\b(\d{8})[ -]?([A-Z])\b"), _dni_ok),
    _Format("es_nie", re.compile(r"\b([XYZ])[ -]?(\d{7})[ -]?([A-Z])\b"), _dni_ok),
    _Format("in_pan", re.compile(r"\b[A-Z]{3}[PCHABGJLFT][A-Z]\d{4}[A-Z]\b"), _always),
    _Format(
        "in_aadhaar",
        re.compile(r"\b[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}\b"),
        _always,
        re.compile(r"\b(?:aadhaar|aadhar|adhaar|uid|uidai)\b", re.IGNORECASE),
    ),
    _Format("br_cpf", re.compile(r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b"), _cpf_ok),
    _Format("fr_nir", re.compile(r"\b[12][ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?\d{3}[ ]?\d{3}[ ]?\d{2}\b"), _nir_ok),
    _Format("it_codice_fiscale", re.compile(r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b"), _always),
    _Format("mx_curp", re.compile(r"\b[A-Z]{4}\d{6}[HM][A-Z]{5}[A-Z0-9]\d\b"), _always),
    _Format("cl_rut", re.compile(r"\b\d{1,2}\.\d{3}\.\d{3}-[\dkK]\b"), _rut_ok),
    _Format("ie_pps", re.compile(r"\b\d{7}[A-W][ABHTWXZ]?\b"), _pps_ok),
)


@dataclass(frozen=True)
class NationalId:
    """One identifier found: its format, value (compact) and span in the text."""

    name: str
    value: str
    start: int
    end: int


def national_ids(text: str) -> list[NationalId]:
    """Identifiers in ``text`` (as written, case kept) whose format and check character match; formats
    without a check need their name within the sentence before or after."""
    found: list[NationalId] = []
    upper = text.upper()
    for fmt in _FORMATS:
        for match in fmt.pattern.finditer(upper):
            compact = re.sub(r"[ .-]", "", match.group(0))
            if not fmt.check(compact):
                continue
            if fmt.label is not None and not fmt.label.search(
                text[max(0, match.start() - 60) : match.end() + 40]
            ):
                continue
            found.append(NationalId(fmt.name, compact, match.start(), match.end()))
    return found
