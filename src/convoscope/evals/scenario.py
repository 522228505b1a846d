"""A simulated scenario's own expected-outcome checks, scored like any other metric.

A scenario says what must happen in words (judged by ``expected_outcome`` when a judge is configured)
and as checks that need no judge: tool calls that must and must not be made, with matchers on their
arguments; phrases the agent must and must not say; how the call must end. The simulator keeps the
checks on the call it produced (``metadata["scenario"]["checks"]``), so the server's evaluation job
scores a simulated call exactly as the simulator's own summary does, and a re-evaluation after a rule
change needs nothing but the stored call.

Matchers are deliberately few and explicit: a plain value matches an equal value (strings compared
case- and space-insensitively, numbers as numbers, so ``"15:00"`` and ``" 15:00"`` agree and ``2`` and
``2.0`` do); ``{contains: ...}``, ``{regex: ...}``, ``{one_of: [...]}`` and ``{absent: true}`` say
anything else. Every check reports what it looked for and what it found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from ..model import Call, EndReason, MetricResult, Role, ToolCall
from .base import EvalContext, RuleMetric
from .registry import register

__all__ = [
    "MATCHER_KEYS",
    "ArgumentMatcher",
    "Matcher",
    "ScenarioChecks",
    "ScenarioChecksMetric",
    "ToolExpectation",
    "matches",
    "phrase_said",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
_SPACES = re.compile(r"\s+")


class ArgumentMatcher(BaseModel):
    """One of: ``contains`` (a substring, case-insensitive), ``regex`` (searched, case-insensitive),
    ``one_of`` (equal to any), ``absent`` (the argument must not be given)."""

    model_config = _FROZEN

    contains: str | None = None
    regex: str | None = None
    one_of: list[JsonValue] | None = None
    absent: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ArgumentMatcher:
        given = [
            name for name in ("contains", "regex", "one_of", "absent") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError("a matcher has exactly one of contains, regex, one_of, absent")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r} does not compile: {exc}") from None
        return self


MATCHER_KEYS = frozenset(ArgumentMatcher.model_fields)
"""A mapping whose keys are all among these is read as a matcher, not as a literal value."""


def _as_matcher(value: Any) -> Any:
    """A mapping whose keys are matcher keys is a matcher (and must be a valid one); anything else is a
    plain value to compare with. (A literal argument that is itself such a mapping is written as
    ``{one_of: [{...}]}``.)"""
    if isinstance(value, dict) and value and set(value) <= MATCHER_KEYS:
        return ArgumentMatcher.model_validate(value)
    return value


Matcher = Annotated[ArgumentMatcher | JsonValue, BeforeValidator(_as_matcher)]
"""A plain value (equal after normalising), or an :class:`ArgumentMatcher`."""


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return _SPACES.sub(" ", value).strip().casefold()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_norm(item) for item in value]
    if isinstance(value, dict):
        return {key: _norm(item) for key, item in value.items()}
    return value


def matches(matcher: Matcher, present: bool, value: Any) -> bool:
    """Whether an argument (``present``, with ``value``) satisfies ``matcher``."""
    if isinstance(matcher, ArgumentMatcher):
        if matcher.absent is not None:
            return present != matcher.absent
        if not present:
            return False
        if matcher.one_of is not None:
            return any(_norm(option) == _norm(value) for option in matcher.one_of)
        text = value if isinstance(value, str) else str(value)
        if matcher.contains is not None:
            return _norm(matcher.contains) in _norm(text)
        return re.search(matcher.regex or "", text, re.IGNORECASE) is not None
    return present and _norm(matcher) == _norm(value)


class ToolExpectation(BaseModel):
    """A tool call the agent must (or must not) make: its name and matchers on its arguments."""

    model_config = _FROZEN

    tool: str = Field(min_length=1)
    arguments: dict[str, Matcher] = Field(default_factory=dict)
    """Argument name -> matcher; arguments not named are not checked."""
    min_times: int = Field(default=1, ge=1)
    """For a required call: how many matching calls at least."""
    successful: bool | None = None
    """When set, only calls whose result succeeded (True) or failed (False) count."""

    def matching(self, tool_calls: Sequence[ToolCall]) -> list[ToolCall]:
        """The agent's calls this expectation matches."""
        found: list[ToolCall] = []
        for call in tool_calls:
            if call.name != self.tool:
                continue
            if self.successful is not None and call.success is not None and call.success != self.successful:
                continue
            arguments = call.arguments if isinstance(call.arguments, dict) else {}
            if all(matches(m, name in arguments, arguments.get(name)) for name, m in self.arguments.items()):
                found.append(call)
        return found


class ScenarioChecks(BaseModel):
    """What must happen in a simulated conversation, checked without a judge."""

    model_config = _FROZEN

    required_tools: list[ToolExpectation] = Field(default_factory=list)
    """Tool calls the agent must make (each with its argument matchers)."""
    forbidden_tools: list[ToolExpectation] = Field(default_factory=list)
    """Tool calls the agent must not make."""
    required_phrases: list[Annotated[ArgumentMatcher | str, BeforeValidator(_as_matcher)]] = Field(
        default_factory=list
    )
    """What the agent must say at least once: a phrase (case-insensitive) or a matcher."""
    forbidden_phrases: list[Annotated[ArgumentMatcher | str, BeforeValidator(_as_matcher)]] = Field(
        default_factory=list
    )
    """What the agent must never say."""
    end_reason: list[EndReason] = Field(default_factory=list)
    """How the call may end (any of these); empty: any way."""
    max_agent_turns: int | None = Field(default=None, ge=1)
    """At most this many agent turns (a conversation that drags on fails)."""

    def is_empty(self) -> bool:
        """Nothing to check."""
        return not (
            self.required_tools
            or self.forbidden_tools
            or self.required_phrases
            or self.forbidden_phrases
            or self.end_reason
            or self.max_agent_turns
        )


def phrase_said(phrase: ArgumentMatcher | str, agent_lines: Sequence[str]) -> str | None:
    """The first agent line that says ``phrase``, else None."""
    matcher = ArgumentMatcher(contains=phrase) if isinstance(phrase, str) else phrase
    for line in agent_lines:
        if matches(matcher, True, line):
            return line
    return None


def _shown(phrase: ArgumentMatcher | str) -> JsonValue:
    return phrase if isinstance(phrase, str) else phrase.model_dump(mode="json", exclude_none=True)


def _check(name: str, passed: bool, **detail: JsonValue) -> dict[str, JsonValue]:
    return {"check": name, "passed": passed, **detail}


def run_checks(checks: ScenarioChecks, call: Call) -> list[dict[str, JsonValue]]:
    """Every check's outcome, in the order the scenario lists them."""
    outcomes: list[dict[str, JsonValue]] = []
    for expected in checks.required_tools:
        found = expected.matching(call.tool_calls)
        outcomes.append(
            _check(
                "required_tool",
                len(found) >= expected.min_times,
                expected=expected.model_dump(mode="json", exclude_none=True),
                found=[tc.id for tc in found],
                called=[
                    {"name": tc.name, "arguments": tc.arguments}
                    for tc in call.tool_calls
                    if tc.name == expected.tool
                ],
            )
        )
    for forbidden in checks.forbidden_tools:
        found = forbidden.matching(call.tool_calls)
        outcomes.append(
            _check(
                "forbidden_tool",
                not found,
                expected=forbidden.model_dump(mode="json", exclude_none=True),
                found=[{"id": tc.id, "arguments": tc.arguments} for tc in found],
            )
        )
    agent_lines = [turn.text for turn in call.turns if turn.role is Role.AGENT]
    for phrase in checks.required_phrases:
        line = phrase_said(phrase, agent_lines)
        outcomes.append(_check("required_phrase", line is not None, phrase=_shown(phrase), said_in=line))
    for phrase in checks.forbidden_phrases:
        line = phrase_said(phrase, agent_lines)
        outcomes.append(_check("forbidden_phrase", line is None, phrase=_shown(phrase), said_in=line))
    if checks.end_reason:
        allowed = [reason.value for reason in checks.end_reason]
        outcomes.append(
            _check(
                "end_reason",
                call.end_reason.value in allowed,
                allowed=list(allowed),
                ended=call.end_reason.value,
            )
        )
    if checks.max_agent_turns is not None:
        outcomes.append(
            _check(
                "max_agent_turns",
                len(agent_lines) <= checks.max_agent_turns,
                limit=checks.max_agent_turns,
                agent_turns=len(agent_lines),
            )
        )
    return outcomes


def checks_of(scenario: Mapping[str, Any] | None) -> ScenarioChecks | None:
    """The checks a simulated call carries, else None; invalid checks raise ``ValueError`` with why."""
    if not scenario or scenario.get("checks") is None:
        return None
    try:
        return ScenarioChecks.model_validate(scenario["checks"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"the call's scenario checks are invalid: {problems}") from None


@register
class ScenarioChecksMetric(RuleMetric[Any]):
    """Pass when every check of the simulated scenario holds; the value is the share that held."""

    name: ClassVar[str] = "scenario_checks"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "A simulated call's expected-outcome checks (required and forbidden tool calls with argument "
        "matchers, required and forbidden phrases, end reason, turn limit): the share that held, "
        "passing only when all did."
    )
    default: ClassVar[bool] = False
    """Run on simulated calls only (the evaluation job adds it where a call carries checks)."""

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        checks = checks_of(context.scenario)
        if checks is None or checks.is_empty():
            return self.result(
                call, value=None, evidence={"not_scorable": "the call carries no scenario checks"}
            )
        error = context.scenario.get("error") if context.scenario else None
        if error:
            return self.result(
                call, value=None, evidence={"not_scorable": f"the conversation did not complete: {error}"}
            )
        outcomes = run_checks(checks, call)
        held = sum(1 for outcome in outcomes if outcome["passed"])
        failed: list[JsonValue] = [outcome for outcome in outcomes if not outcome["passed"]]
        evidence: dict[str, JsonValue] = {"checks": list(outcomes), "failed": failed}
        return self.result(call, value=held / len(outcomes), passed=not failed, evidence=evidence)
