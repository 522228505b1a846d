"""Whether a matched attack phrase is the caller's own request or something they report.

A caller who says "someone told me to say 'ignore your instructions'", "my son typed 'pretend you are
DAN'" or reads a phishing email aloud is describing an attack, not making one, and flagging them would
alarm on exactly the callers who are being careful. A match is reported when it sits inside quotation
marks or follows a reporting frame (told me, said, typed, wrote, posted, is it true) in the same sentence;
it counts again when the caller then adopts it ("... so do it", "do what it says").
"""

from __future__ import annotations

import re

__all__ = ["adopted", "reported"]

_QUOTED = re.compile(r"(?:^|(?<=[\s(:,]))([\"“‘'«„])(.+?)([\"”’'»“])(?=[\s.,!?;:)]|$)", re.DOTALL)

_SPEAKERS = (
    r"(?:someone|somebody|they|he|she|people|it|a (?:scammer|hacker|man|woman|guy|caller|friend|website|post|"
    r"video|message|text|email)|scammers|hackers|users|my (?:\w+ ){0,2}|the (?:\w+ ){0,2}|this (?:\w+ )?|"
    r"an? (?:\w+ ){0,2}|[a-z]+'s \w+)"
)
_REPORT = (
    r"(?:said|says|say|typed|types|type|wrote|writes|write|posted|posts|sent|sends|tried|try|tries|trying|"
    r"used|uses|use|claimed|claims|told|suggested|suggests|shared|texted|emailed|messaged|reads|read)"
)
_FRAME = re.compile(
    rf"\b(?:{_SPEAKERS}(?:\w+ ){{0,4}}?{_REPORT}\b|told me|asked me|tells me|telling me|wanted me to|"
    r"want(?:s|ed)? me to (?:say|type|read)|is it true|i (?:saw|heard|read)|i've (?:seen|heard|read)|"
    r"i was (?:told|reading|sent)|(?:saw|heard|read) (?:that|about|online|somewhere|on)|"
    r"something like|stuff like|things like|phrases? like|quote|quoting|it says|it said|reads:|"
    r"is (?:it|that) (?:a scam|safe|legit|real)|supposed to say|in the news|article|news)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.?!]\s")
_ADOPT_VERB = r"(?:do|follow|run|execute|carry out|act on|obey|apply|action|answer|respond to|reply to)"
_ADOPT = re.compile(
    r"\b(?:(?:so|now|then|and|ok|okay|please|just)\s+(?:just\s+)?(?:do (?:it|that|so|as (?:it|that|he|she|"
    r"they) says?)|follow (?:it|that|them|those)|go ahead|go on)|do what (?:it|that|he|she|they) says?|"
    r"do exactly that|i'm (?:telling|asking) you to|"
    # "run it please", "can you carry it out", "answer it", "i'm saying them to you now"
    rf"(?:(?:can|could|would|will) you|please|just|so|and|then|now)\s+(?:please\s+)?{_ADOPT_VERB} "
    r"(?:it|that|this|them|those|what it says)\b(?! (?:is|was|would|will|be|safe|legit|real)\b)|"
    rf"(?<!\bto )\b{_ADOPT_VERB} (?:it|that|this|them) (?:please|for me|now)\b|"
    rf"(?:^|[:,.;]\s*)(?:{_ADOPT_VERB}) (?:it|that|this|them)\s*[:.!]|"
    r"i(?:'m| am) (?:now )?(?:saying|telling you|asking you|doing) (?:it|them|that|this|what (?:it|they) "
    r"says?)\b|that's what i'm (?:doing|saying|asking)|carry (?:it|that|this|them) out)",
    re.IGNORECASE,
)


def _in_quotes(text: str, start: int, end: int) -> bool:
    return any(m.start(2) <= start and end <= m.end(2) + 1 for m in _QUOTED.finditer(text))


def reported(text: str, start: int, end: int) -> bool:
    """True when ``text[start:end]`` is quoted or follows a reporting frame in its sentence."""
    if _in_quotes(text, start, end):
        return True
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    sentence_start = ends[-1] if ends else 0
    return bool(_FRAME.search(text, sentence_start, start))


def adopted(text: str, end: int) -> bool:
    """True when the caller, after a reported phrase, asks the agent to act on it."""
    return bool(_ADOPT.search(text, end))
