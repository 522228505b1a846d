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

__all__ = ["NationalId", "national_ids"]

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
