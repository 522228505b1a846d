"""What a caller wants, by keyword rules over one message.

The reference agent has no language model, so it understands a message by a few readable patterns per
intent. One message can carry several ("thanks, and can I cancel NB-1234?"); :func:`detect` returns all
of them and the policy decides which one leads, using what it asked last. A task intent (book,
reschedule, cancel, price) names what the conversation is about; the others (a person, goodbye, yes/no,
an injection attempt) steer it.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["TASKS", "Intent", "detect", "task_of"]


class Intent(StrEnum):
    """One thing a caller's message can ask for or say."""

    BOOK = "book"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    PRICE = "price"
    HUMAN = "human"
    """Asks for a person."""
    GOODBYE = "goodbye"
    """Closes the call ("bye", "that's all")."""
    THANKS = "thanks"
    """Thanks, which closes the call only when nothing else is going on."""
    AFFIRM = "affirm"
    DENY = "deny"
    INJECTION = "injection"
    """Tells the agent to ignore its instructions or to reveal them."""
    CHECK_IN = "check_in"
    """Only checks the line is alive ("Hello? Are you there?"), as a caller does after a silence."""


TASKS = (Intent.RESCHEDULE, Intent.CANCEL, Intent.PRICE, Intent.BOOK)
"""Task intents in the order one wins over another: "cancel and rebook" is a reschedule, "how much is an
appointment" a price question."""

_PATTERNS: dict[Intent, re.Pattern[str]] = {
    Intent.RESCHEDULE: re.compile(
        r"\b(?:re-?schedul\w*|re-?book\w*|"
        r"(?:move|change|shift|push|switch)\b[\w\s']{0,25}\b(?:appointment|booking|visit|it)\b|"
        r"different\s+(?:day|time|date))",
        re.IGNORECASE,
    ),
    Intent.CANCEL: re.compile(
        r"\b(?:cancel\w*|call\s+off|won't\s+be\s+able\s+to\s+make\s+it)\b", re.IGNORECASE
    ),
    Intent.PRICE: re.compile(
        r"\b(?:how\s+much|price[sd]?|pricing|cost[s]?|charge[sd]?|fee[s]?|expensive|cheap|afford)\b|\$",
        re.IGNORECASE,
    ),
    Intent.BOOK: re.compile(
        r"\b(?:book\w*|schedul\w*|appointment|make\s+an?\s+appointment|come\s+in|get\s+in|"
        r"see\s+(?:a|the)\s+(?:dentist|doctor|hygienist)|availab\w+|opening[s]?|slot[s]?)\b",
        re.IGNORECASE,
    ),
    Intent.HUMAN: re.compile(
        r"\b(?:speak|talk|connect|transfer|put\s+me\s+through|get\s+me)\b[\w\s']{0,25}?"
        r"\b(?:human|person|someone|somebody|agent|representative|receptionist|staff|operator|manager|people)\b|"
        r"\b(?:want|need|like|prefer)\s+(?:a|an|the|to\s+have\s+a)\s+(?:human|person|representative|"
        r"operator|receptionist|manager)\b|\b(?:real|live|actual)\s+(?:person|human|agent)\b|^\W*(?:a\s+)?(?:human|person|representative|"
        r"operator|agent)(?:\s+please)?\W*$",
        re.IGNORECASE,
    ),
    Intent.GOODBYE: re.compile(
        r"\b(?:bye|goodbye|good-bye|that's\s+all|that\s+is\s+all|that's\s+it|that\s+will\s+be\s+all|"
        r"nothing\s+else|no\s+thanks|no\s+thank\s+you|have\s+a\s+(?:good|nice|great)\s+(?:day|one|evening)|"
        r"i'm\s+(?:all\s+)?(?:good|done|set)|all\s+set|hang\s+up)\b",
        re.IGNORECASE,
    ),
    Intent.THANKS: re.compile(r"\b(?:thanks|thank\s+you|thx|cheers|appreciate\s+it)\b", re.IGNORECASE),
    Intent.AFFIRM: re.compile(
        r"^\W*(?:yes|yeah|yep|yup|sure|ok|okay|please|please\s+do|go\s+ahead|that\s+works|sounds\s+good|"
        r"correct|right|absolutely|definitely|of\s+course)\b",
        re.IGNORECASE,
    ),
    Intent.DENY: re.compile(
        r"^\W*(?:no|nope|nah|not\s+really|no\s+thanks|no\s+thank\s+you)\b", re.IGNORECASE
    ),
    Intent.CHECK_IN: re.compile(
        r"^(?=.*\w)\W*(?:(?:hello|hi|hey)\W*)*(?:(?:are\s+you|is\s+(?:any|some)one)\s+(?:still\s+)?there|can\s+you\s+hear\s+me)"
        r"?\W*$",
        re.IGNORECASE,
    ),
    Intent.INJECTION: re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass)\b[\w\s']{0,30}?\b(?:instructions?|rules|prompt|"
        r"programming|guidelines|system\s+message)\b|"
        r"\b(?:reveal|show|tell|give|repeat|recite|print|read|share|what\s+(?:is|are|were))\b[\w\s']{0,25}?"
        r"\b(?:system\s+prompt|prompt|instructions|system\s+message|guidelines|initial\s+instructions)\b|"
        r"\bdeveloper\s+mode\b|\byou\s+are\s+now\s+(?:a|an|in)\b",
        re.IGNORECASE,
    ),
}


def detect(text: str) -> frozenset[Intent]:
    """Every intent the message shows."""
    return frozenset(intent for intent, pattern in _PATTERNS.items() if pattern.search(text))


def task_of(intents: frozenset[Intent]) -> Intent | None:
    """The task the message is about, if it names one (the first of :data:`TASKS` present)."""
    return next((task for task in TASKS if task in intents), None)
