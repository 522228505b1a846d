"""Prompt-injection heuristics on the caller's turns.

Five signals, each a rule a person can read: requests that set aside the agent's instructions, requests
to reveal them, role-play framings that drop its rules, spoken claims of authority over it (its developer,
a system message, an override code), and invisible or Unicode-tag characters. The patterns are built by
grammar (intent × target) per language in ``injection_families``; encoded payloads are decoded and checked
again (``injection_decode``); a phrase the caller only quotes or reports is not an attack unless they adopt
it (``injection_context``). Benign look-alikes ("ignore my last message", "pretend I'm a new customer")
stay out because the target must be the agent's own instructions or rules.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._text import normalize, quote, turns_of, valid_regex
from .injection_context import adopted, reported
from .injection_decode import INVISIBLE, Decoding, decodings, respoken, suspicious_invisible
from .injection_families import LANGUAGES, Signal, compiled_families, word_prefixes

__all__ = ["Decoding", "InjectionParams", "PromptInjection", "Signal", "scan_text"]

SPAN_CHARS = 120
"""Matched text kept in the evidence."""


class InjectionParams(BaseModel):
    """Which signals, languages and decodings to look for, and how quoted speech is treated."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    signals: list[Signal] = Field(default_factory=lambda: list(Signal))
    """The kinds of signal looked for."""
    languages: list[str] = Field(default_factory=lambda: list(LANGUAGES))
    """Languages whose pattern families run (en, es, fr, de, pt, it, nl, pl, ru, tr, sv, zh, ja, and in Latin
    script hi for Hindi, id for Indonesian and Malay, tl for Tagalog, sw for Swahili; hi-deva for Hindi in
    Devanagari, ar, ko, vi, el, th)."""
    decodings: list[Decoding] = Field(default_factory=lambda: list(Decoding))
    """Encodings decoded before the families run again on the decoded text."""
    extra_patterns: list[str] = Field(default_factory=list)
    """More instruction-override regular expressions (case-insensitive)."""
    min_invisible: int = Field(default=1, ge=1)
    """Invisible characters (outside emoji sequences) in one turn needed to flag it."""
    emoji_are_ordinary: bool = True
    """Zero-width joiners, variation selectors and flag tags inside emoji sequences are not counted."""
    ignore_reported: bool = True
    """A phrase inside quotation marks or after a reporting frame ("someone told me to say") is not an
    attack unless the caller adopts it ("so do it")."""
    min_encoded_chars: int = Field(default=12, ge=4)
    """Shortest base64 or hex token decoded."""
    min_printable: float = Field(default=0.9, ge=0.0, le=1.0)
    """Share of printable characters a base64 or hex decoding needs to count as text."""
    roles: list[Role] = Field(default_factory=lambda: [Role.USER])
    """Whose turns are scanned."""

    @field_validator("extra_patterns")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        return [valid_regex(pattern) for pattern in value]

    @field_validator("languages")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown languages {unknown}; known: {list(LANGUAGES)}")
        return value


def _family_hits(text: str, params: InjectionParams, decoding: Decoding | None) -> list[dict[str, JsonValue]]:
    """The families' hits in ``text``; a phrase the caller only reports counts in plain or spoken text."""
    wanted = tuple(s for s in params.signals if s is not Signal.INVISIBLE)
    families = compiled_families(tuple(params.languages), wanted, tuple(params.extra_patterns))
    found: list[dict[str, JsonValue]] = []
    prefixes = word_prefixes(text)
    for compiled in families:
        if compiled.gate is not None and compiled.gate.isdisjoint(prefixes):
            continue
        family = compiled.family
        for match in compiled.pattern.finditer(text):
            start, end = match.span()
            plain = decoding is None or decoding is Decoding.SPOKEN
            if params.ignore_reported and plain and reported(text, start, end):
                if not adopted(text, end):
                    continue
            hit: dict[str, JsonValue] = {
                "signal": family.signal.value,
                "language": family.language,
                "match": match.group(0)[:SPAN_CHARS],
                "span": [start, end],
            }
            if decoding is not None:
                hit["decoding"] = decoding.value
            found.append(hit)
            break
    return found


def scan_text(text: str, params: InjectionParams) -> list[dict[str, JsonValue]]:
    """Every signal found in one piece of text, with the family, language, matched span and any decoding.

    Spans of a decoded hit refer to the decoded text, which is given as ``decoded``.
    """
    found: list[dict[str, JsonValue]] = []
    if Signal.INVISIBLE in params.signals:
        hidden = suspicious_invisible(text) if params.emoji_are_ordinary else INVISIBLE.findall(text)
        if len(hidden) >= params.min_invisible:
            codes = sorted({f"U+{ord(c):04X}" for c in hidden})
            found.append({"signal": Signal.INVISIBLE.value, "count": len(hidden), "codepoints": list(codes)})
    visible = normalize(INVISIBLE.sub("", text))
    found.extend(_family_hits(visible, params, None))
    seen = {hit["signal"] for hit in found}
    if Decoding.SPOKEN in params.decodings:
        spoken = respoken(visible)
        if spoken != visible:
            for hit in _family_hits(spoken, params, Decoding.SPOKEN):
                if hit["signal"] not in seen:
                    seen.add(hit["signal"])
                    found.append({**hit, "decoded": spoken[:SPAN_CHARS]})
    wanted = frozenset(params.decodings)
    for decoding, decoded in decodings(
        text, wanted, min_encoded_chars=params.min_encoded_chars, min_printable=params.min_printable
    ):
        plain = normalize(decoded)
        if params.ignore_reported and _turn_reports_only(visible):
            continue
        for hit in _family_hits(plain, params, decoding):
            if hit["signal"] not in seen:
                seen.add(hit["signal"])
                found.append({**hit, "decoded": plain[:SPAN_CHARS]})
    return found


def _turn_reports_only(visible: str) -> bool:
    """A turn that frames its whole content as reported ("my son typed this: ...") and never adopts it."""
    return reported(visible, len(visible), len(visible)) and not adopted(visible, 0)


@register
class PromptInjection(RuleMetric[InjectionParams]):
    """Caller turns carrying prompt-injection signals."""

    name = "prompt_injection"
    version = "6"
    params_model = InjectionParams
    description = (
        "Number of caller turns with a prompt-injection signal (instruction override, prompt "
        "extraction, role-play jailbreak, authority claim, in twenty-three languages, also "
        "when encoded or misheard by speech recognition; invisible or tag characters outside emoji); "
        "passes at zero."
    )

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        flagged: list[JsonValue] = []
        for turn in turns_of(call, self.params.roles):
            signals = scan_text(turn.text, self.params)
            if signals:
                entry: dict[str, JsonValue] = {"turn_index": turn.index, "signals": list(signals)}
                flagged.append({**entry, "quote": quote(turn.text)})
        return self.result(call, value=len(flagged), passed=not flagged, evidence={"turns": flagged})
