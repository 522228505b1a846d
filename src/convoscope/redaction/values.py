"""Masking inside free-form JSON: tool arguments and results, metadata, span attributes, vendor events.

Every string is masked with its field name read as its label ("phone": "8675309" is a phone number
even though seven digits alone are not). What is left alone is what the platform needs to recognise
and fetch things by, and which names no person: fields named as identifiers, links and hashes
(``call_id``, ``recordingUrl``, ``sha256``...) and strings that are links. Numbers are masked only
under a field named for a kind of personal data (``phone``, ``card_number``...): a bare number is far
more often a timestamp or a count, and masking it could break what reads it.
"""

from __future__ import annotations

import re
from typing import Any

from ..evals.rules.pii_context import KIND_WORDS
from .locate import Masker

__all__ = ["field_words", "kept_field", "mask_value"]

_KEPT_LAST_WORDS = frozenset(
    "id ids uuid guid sid url urls uri uris href sha sha256 hash etag signature checksum mime".split()
)
"""The last word of a field name that makes it an identifier or a link (kept as it is)."""
_KIND_WORDS = frozenset(word for words in KIND_WORDS.values() for word in words) | {"email", "number"}
_LINK = re.compile(r"^[a-z][a-z0-9+.-]*:(?://|[0-9a-f]{64}$)", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_.\-/:]+")
_MIN_NUMBER = 1_000_000
"""Numbers below this (fewer than seven digits) hold no value the detectors classify."""


def field_words(key: str) -> list[str]:
    """A field name as lower-case words: ``customerPhoneNumber`` -> customer phone number."""
    return [word for word in _SEPARATORS.split(_CAMEL.sub(" ", key).lower()) if word]


def kept_field(key: str) -> bool:
    """Whether a field holds an identifier or a link, kept unmasked."""
    words = field_words(key)
    return bool(words) and words[-1] in _KEPT_LAST_WORDS


def mask_value(value: Any, masker: Masker, key: str = "") -> Any:
    """``value`` (any JSON) with the personal values in its strings masked; the input is not changed."""
    if isinstance(value, str):
        if not value or _LINK.match(value):
            return value
        return masker.text(value, context=" ".join(field_words(key)))
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, str | int | float) and kept_field(str(name)):
                masked[name] = item
            else:
                masked[name] = mask_value(item, masker, str(name))
        return masked
    if isinstance(value, list):
        return [mask_value(item, masker, key) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MIN_NUMBER:
        words = field_words(key)
        if any(word in _KIND_WORDS for word in words):
            text = str(value)
            masked_text = masker.text(text, context=" ".join(words))
            return masked_text if masked_text != text else value
    return value
