"""Phrase metrics: what an agent must say (required phrases, disclosures), must not say, and regex checks."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, Metric, RuleMetric
from ..registry import register
from ._disclosures import DisclosureKind, find_disclosure
from ._text import find_phrase, quote, turns_of, valid_regex

__all__ = [
    "Disclosure",
    "DisclosureKind",
    "DisclosureParams",
    "DisclosureRequirement",
    "ForbiddenPhrases",
    "ForbiddenPhrasesParams",
    "Regex",
    "RegexParams",
    "RequiredPhrases",
    "RequiredPhrasesParams",
]

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)


def _not_configured(metric: Metric[Any], call: Call, what: str) -> MetricResult:
    return metric.result(call, value=None, evidence={"not_scorable": f"no {what} configured"})


class RequiredPhrasesParams(BaseModel):
    """Phrases the agent must say somewhere in the call."""

    model_config = _CONFIG

    phrases: list[str] = Field(default_factory=list)
    """The phrases (or disclosures) to find."""
    min_similarity: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of a phrase's content words that must appear close together; 1.0 demands a verbatim match."""
    roles: list[Role] = Field(default_factory=lambda: [Role.AGENT])
    """Whose turns are searched."""
    by_agent_turn: int | None = Field(default=None, ge=1)
    """When set, a phrase must be said within the first N agent turns; said later counts as late (fail)."""


def agent_turn_numbers(call: Call) -> dict[int, int]:
    """Each agent turn's index mapped to its number among the agent's turns (from 1)."""
    return {turn.index: number for number, turn in enumerate(turns_of(call, [Role.AGENT]), start=1)}


def _phrase_findings(params: RequiredPhrasesParams, call: Call) -> list[dict[str, JsonValue]]:
    agent_turn_number = agent_turn_numbers(call)
    findings: list[dict[str, JsonValue]] = []
    for phrase in params.phrases:
        found: dict[str, JsonValue] = {"phrase": phrase, "found": False}
        for turn in turns_of(call, params.roles):
            hit = find_phrase(phrase, turn.text, min_similarity=params.min_similarity)
            if hit is None:
                continue
            said_at = agent_turn_number.get(turn.index)
            late = params.by_agent_turn is not None and (said_at is None or said_at > params.by_agent_turn)
            found = {
                "phrase": phrase,
                "found": True,
                "turn_index": turn.index,
                "verbatim": hit.verbatim,
                "similarity": hit.similarity,
                "late": late,
                "quote": quote(turn.text),
            }
            break
        findings.append(found)
    return findings


def _in_time(finding: dict[str, JsonValue]) -> bool:
    return finding["found"] is True and finding.get("late") is not True


def _check_required(
    metric: Metric[Any], params: RequiredPhrasesParams, call: Call, what: str
) -> MetricResult:
    if not params.phrases:
        return _not_configured(metric, call, what)
    findings = _phrase_findings(params, call)
    satisfied = sum(_in_time(f) for f in findings)
    value = satisfied / len(params.phrases)
    passed = satisfied == len(params.phrases)
    return metric.result(call, value=value, passed=passed, evidence={"phrases": list(findings)})


@register
class RequiredPhrases(RuleMetric[RequiredPhrasesParams]):
    """Share of the required phrases the agent said, verbatim or near-verbatim."""

    name = "required_phrases"
    version = "1"
    params_model = RequiredPhrasesParams
    description = (
        "Share of the configured phrases the agent said, verbatim or near-verbatim (most content words "
        "close together); passes when every phrase was said (in time, when by_agent_turn is set)."
    )
    default = False
    what: ClassVar[str] = "required phrases"
    """What the phrases are called where none is configured."""

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        return _check_required(self, self.params, call, self.what)


def _requirement(value: object) -> object:
    """A requirement written as a bare string: a kind's name, or else one phrase."""
    if isinstance(value, str):
        kinds = {kind.value for kind in DisclosureKind}
        return {"kind": value} if value in kinds else {"kind": "phrase", "phrases": [value]}
    return value


class DisclosureRequirement(BaseModel):
    """One disclosure that must be made: a kind (met in any ordinary phrasing) or a phrase."""

    model_config = _CONFIG

    kind: DisclosureKind = DisclosureKind.PHRASE
    """``ai_disclosure`` and ``recording_notice`` are recognised by built-in pattern families (English,
    Spanish, French, German, Portuguese, Italian, Swedish, Indonesian, Vietnamese, Greek, Hindi, Arabic,
    Korean; speech-recogniser spellings too); ``phrase`` only by the phrases given."""
    phrases: list[str] = Field(default_factory=list)
    """Phrasings that also meet it (near-verbatim, a negation near them cancels); ``phrase`` needs one."""

    @model_validator(mode="after")
    def _phrase_needs_text(self) -> DisclosureRequirement:
        if self.kind is DisclosureKind.PHRASE and not self.phrases:
            raise ValueError("a phrase requirement needs at least one phrase")
        return self


class DisclosureParams(RequiredPhrasesParams):
    """Disclosures (recording notice, AI disclosure) that must come early in the call."""

    by_agent_turn: int | None = Field(default=2, ge=1)
    """A disclosure must be made within the first N agent turns; later counts as late (fail)."""
    requirements: list[Annotated[DisclosureRequirement, BeforeValidator(_requirement)]] = Field(
        default_factory=list
    )
    """Disclosures by kind; a bare string is a kind's name or one phrase. Only agent turns meet them."""
    max_gap: int = Field(default=6, ge=0)
    """Words a kind's pattern allows between its halves ("I'm … virtual assistant", "calls … recorded")."""


@register
class Disclosure(RuleMetric[DisclosureParams]):
    """Required disclosures, by kind in any ordinary phrasing, or by phrase, within the first agent turns."""

    name = "disclosure"
    version = "4"
    params_model = DisclosureParams
    description = (
        "Share of the configured disclosures (kinds such as an AI disclosure or a recording notice, in "
        "any ordinary phrasing, or phrases) the agent made within its first by_agent_turn turns; a "
        "disclosure made later counts as late and fails, one never made fails."
    )
    default = False

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        params = self.params
        if not params.requirements:
            return _check_required(self, params, call, "disclosures")  # phrases only: as in version 1
        numbers = agent_turn_numbers(call)
        found = [
            find_disclosure(
                call,
                requirement.kind,
                requirement.phrases,
                max_gap=params.max_gap,
                min_similarity=params.min_similarity,
                by_agent_turn=params.by_agent_turn,
                agent_turn_numbers=numbers,
            )
            for requirement in params.requirements
        ]
        phrases = _phrase_findings(params, call)
        satisfied = sum(_in_time(f) for f in [*phrases, *found])
        total = len(phrases) + len(found)
        evidence: dict[str, JsonValue] = {"requirements": list(found)}
        if phrases:
            evidence["phrases"] = list(phrases)
        return self.result(call, value=satisfied / total, passed=satisfied == total, evidence=evidence)


class ForbiddenPhrasesParams(BaseModel):
    """Phrases the agent must never say."""

    model_config = _CONFIG

    phrases: list[str] = Field(default_factory=list)
    """The phrases the agent must never say."""
    min_similarity: float = Field(default=1.0, gt=0.0, le=1.0)
    """1.0 flags only verbatim (normalised) occurrences; lower flags near-verbatim ones too."""
    roles: list[Role] = Field(default_factory=lambda: [Role.AGENT])
    """Whose turns are searched."""


@register
class ForbiddenPhrases(RuleMetric[ForbiddenPhrasesParams]):
    """Occurrences of forbidden phrases in the agent's turns."""

    name = "forbidden_phrases"
    version = "1"
    params_model = ForbiddenPhrasesParams
    description = "Number of (turn, phrase) pairs in which the agent said a forbidden phrase; passes at zero."
    default = False

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        if not self.params.phrases:
            return _not_configured(self, call, "forbidden phrases")
        hits: list[JsonValue] = []
        for turn in turns_of(call, self.params.roles):
            for phrase in self.params.phrases:
                hit = find_phrase(phrase, turn.text, min_similarity=self.params.min_similarity)
                if hit is not None:
                    hits.append(
                        {
                            "phrase": phrase,
                            "turn_index": turn.index,
                            "verbatim": hit.verbatim,
                            "similarity": hit.similarity,
                            "quote": quote(turn.text),
                        }
                    )
        return self.result(call, value=len(hits), passed=not hits, evidence={"hits": hits})


class RegexParams(BaseModel):
    """A regular expression searched in the turns of some roles."""

    model_config = _CONFIG

    pattern: str | None = None
    """A Python regular expression."""
    must_match: bool = False
    """True: the pattern must occur at least once (a required format); False: it must never occur."""
    roles: list[Role] = Field(default_factory=lambda: [Role.AGENT])
    """Whose turns are searched."""
    ignore_case: bool = True
    """Match regardless of case."""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return value if value is None else valid_regex(value)


@register
class Regex(RuleMetric[RegexParams]):
    """Matches of a regular expression in the transcript."""

    name = "regex"
    version = "1"
    params_model = RegexParams
    description = (
        "Number of matches of a regular expression in the turns of the chosen roles; passes at zero "
        "matches, or at one or more when must_match is set."
    )
    default = False

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        if self.params.pattern is None:
            return _not_configured(self, call, "pattern")
        compiled = re.compile(self.params.pattern, re.IGNORECASE if self.params.ignore_case else 0)
        matches: list[JsonValue] = []
        for turn in turns_of(call, self.params.roles):
            for match in compiled.finditer(turn.text):
                excerpt = quote(turn.text, *match.span())
                matches.append({"turn_index": turn.index, "match": match.group(0), "quote": excerpt})
        count = len(matches)
        passed = count > 0 if self.params.must_match else count == 0
        return self.result(call, value=count, passed=passed, evidence={"matches": matches})
