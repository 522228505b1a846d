"""What an agent sentence asks for or does, as a named concept, for ``loop_detection``.

A stuck agent rewords its prompt with other nouns each time ("the address of the property", "the service
address", "where should we send the technician?"; "I can't do that", "that's outside what I can do"), so
shared words cannot tell that two prompts are one. Two small tables name the concepts instead:

* ``SLOT_CONCEPTS``: what a question asks for (an address, a date of birth, the reason for the call);
* ``STATEMENT_ACTS``: what a statement does (refuse, report a system down, report something pending).

Each concept lists phrasings. A phrasing is a few words that must occur in that order in the sentence,
at most ``MAX_GAP`` words apart, compared on light stems with contractions opened ("can't" is "can not"),
so "when born" covers "when were you born" and "when was the patient born". A word written ``!word``
excludes the concept from any sentence holding that word ("how help" with "!else" is the reason for the
call, but "how else can I help?" is an offer of more help). When a phrasing's words lie inside a longer
phrasing of another concept ("address" inside "email address"), only the longer one counts. Users extend
both tables through the metric's parameters; the tables are deliberately small and general (what agents
on phone lines ask for and say), not a list of sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._sentences import light_stem, phrase_words

__all__ = [
    "CONTRAST_GROUPS",
    "MAX_GAP",
    "SLOT_CONCEPTS",
    "STATEMENT_ACTS",
    "ConceptTable",
    "contrasted",
]

MAX_GAP = 4
"""Words allowed between two consecutive words of a phrasing ("what seems to be the problem")."""

SLOT_CONCEPTS: dict[str, tuple[str, ...]] = {
    "address": (
        "address", "where live", "where property", "property located", "where located", "where send",
        "send technician", "send engineer", "send someone", "location property", "which property",
        "first line",
    ),
    "postcode": ("postcode", "post code", "zip", "zipcode", "postal code"),
    "date_of_birth": ("date birth", "birth date", "birthdate", "birthday", "dob", "born", "d o b"),
    "account_number": (
        "account number", "account no", "number bill", "number statement", "customer number",
        "customer reference", "account reference", "account id", "customer id", "membership number",
    ),
    "reason_for_call": (
        "reason call", "reason calling", "calling about", "call about", "what help", "how help",
        "how assist", "what bring", "what do for", "!else", "!anything", "!other", "!further", "!which",
        "!something",
    ),
    "problem": (
        "what problem", "what issue", "what wrong", "what going on", "what happen", "what fault",
        "describe problem", "describe issue", "describe fault", "tell problem", "tell issue",
        "explain problem", "explain issue", "what matter",
    ),
    "email": ("email", "e mail", "email address"),
    "phone_number": (
        "phone number", "contact number", "number reach", "number call", "mobile number",
        "telephone number", "callback number", "number contact", "number get hold",
    ),
    "name": (
        "full name", "your name", "name account", "who speak", "who calling", "name please",
        "holder name", "name booking",
    ),
    "booking_reference": (
        "booking reference", "booking number", "booking code", "booking id", "confirmation number",
        "confirmation code", "reservation number", "reservation code", "reservation reference", "pnr",
    ),
    "order_number": ("order number", "order reference", "order id", "order code"),
    "policy_number": ("policy number", "policy reference", "policy id"),
    "registration": ("registration", "reg", "number plate", "licence plate", "license plate", "plate number"),
    "preferred_date": (
        "which day", "what day", "which date", "what date", "when like", "when want", "travel date",
        "when depart", "when fly", "when travel", "when leave", "when come", "!birth", "!born",
    ),
    "card_number": ("card number", "long number card", "number front card"),
    "pin": ("pin", "passcode", "security code", "pin number"),
    "meter_reading": ("meter reading", "read meter", "reading meter", "meter read"),
}  # fmt: skip
"""Slots agents ask for, each with the ways it is asked. Two questions that name one of these ask for
the same thing, whatever their other words; two that name different ones ask for different things."""

STATEMENT_ACTS: dict[str, tuple[str, ...]] = {
    "refusal": (
        "can not", "not able", "unable", "not allow", "not permit", "no way", "not possible",
        "not something", "outside what", "beyond what", "wish could", "not position", "will not able",
        "not authorise", "not authorize", "impossible",
    ),
    "system_down": (
        "system down", "systems down", "server down", "site down", "app down", "service down", "unavailable",
        "outage", "not work", "not respond", "technical difficult", "technical issue", "technical problem",
        "trouble connect", "problem connect", "issue connect", "not connect", "not load", "offline",
        "maintenance", "not available", "still down", "having trouble", "having problem", "having issue",
    ),
    "pending": (
        "still process", "being process", "under review", "pending", "still review", "being review",
        "in progress", "still wait", "awaiting", "no update", "not yet", "being look", "not been approve",
    ),
    "checking": (
        "let check", "let look", "let see", "checking", "look into", "please hold", "bear with",
        "one moment", "just moment", "hold on", "hold line",
    ),
}  # fmt: skip
"""Things agents say that a stuck agent rewords each time: a refusal, a system that is down, something
still pending, a "let me check" while nothing comes of it. Two statements doing the same act are the
same unless each names a different object ("I can't raise your limit" and "I can't waive the annual
fee" are two answers, not a loop)."""

CONTRAST_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(light_stem(word) for word in group.split())
    for group in (
        "first last middle maiden surname forename street company business",
        "billing delivery shipping home work service installation",
        "departure depart outbound arrival arrive return inbound",
        "sender sending recipient receiving payee",
        "old new previous current",
        "start end finish",
        "day night",
    )
)
"""Words that tell one slot of a concept from another ("departure date" and "return date" are two
questions about dates): two asks naming different words of one group ask for different things."""


def contrasted(one: frozenset[str], other: frozenset[str]) -> bool:
    """Whether two asks name different words of one contrast group (so different slots)."""
    for group in CONTRAST_GROUPS:
        mine, theirs = one & group, other & group
        if mine and theirs and not mine & theirs:
            return True
    return False


@dataclass(frozen=True)
class _Phrasing:
    concept: str
    words: tuple[str, ...]


class ConceptTable:
    """A table of concepts and phrasings, compiled for matching; ``extra`` adds to or extends ``base``."""

    def __init__(
        self, base: Mapping[str, Sequence[str]], extra: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        merged: dict[str, list[str]] = {name: list(phrasings) for name, phrasings in base.items()}
        for name, phrasings in (extra or {}).items():
            merged.setdefault(name, []).extend(phrasings)
        self._by_first: dict[str, list[_Phrasing]] = {}
        self._excluded: dict[str, frozenset[str]] = {}
        for name, phrasings in merged.items():
            excluded: set[str] = set()
            for phrasing in phrasings:
                raw = phrasing.lower().replace("-", " ").split()
                if len(raw) == 1 and raw[0].startswith("!"):
                    excluded.update(phrase_words((raw[0][1:],)))
                    continue
                words = phrase_words(tuple(raw))
                if words:
                    self._by_first.setdefault(words[0], []).append(_Phrasing(name, words))
            self._excluded[name] = frozenset(excluded)
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}
        self.vocabulary = frozenset(w for found in self._by_first.values() for p in found for w in p.words)
        """Every word of every phrasing: what is left of a sentence without them is what it is about."""

    def concepts(self, words: tuple[str, ...]) -> frozenset[str]:
        """The concepts ``words`` (from :func:`act_words`) name, longer phrasings winning."""
        cached = self._cache.get(words)
        if cached is not None:
            return cached
        present = set(words)
        hits: list[tuple[str, frozenset[int]]] = []
        for start, word in enumerate(words):
            for phrasing in self._by_first.get(word, ()):
                if not set(phrasing.words) <= present or present & self._excluded[phrasing.concept]:
                    continue
                positions = _match_at(words, phrasing.words, start)
                if positions is not None:
                    hits.append((phrasing.concept, positions))
        found = frozenset(
            concept
            for concept, positions in hits
            if not any(other != concept and positions < wider for other, wider in hits)
        )
        if len(self._cache) < 4096:
            self._cache[words] = found
        return found


def _match_at(words: tuple[str, ...], phrasing: tuple[str, ...], start: int) -> frozenset[int] | None:
    """Positions of ``phrasing`` in ``words`` from ``start``, each next word within ``MAX_GAP`` words."""
    positions = [start]
    at = start
    for wanted in phrasing[1:]:
        for step in range(1, MAX_GAP + 2):
            if at + step < len(words) and words[at + step] == wanted:
                at += step
                positions.append(at)
                break
        else:
            return None
    return frozenset(positions)
