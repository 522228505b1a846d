"""Tool-call metrics: did the tools the agent invoked succeed, and were they the expected ones?

Correctness follows the usual three scorings: ``exact`` (1 when the whole list matches in order, else 0),
``unordered`` (the largest one-to-one matching of expected to actual calls, over the expected count) and
``ordered`` (the longest common subsequence, over the expected count). A pair matches when the names are
equal and the arguments agree under ``argument_match``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from ...errors import InputError
from ...model.call import Call, ToolCall
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register

__all__ = [
    "ArgumentMatch",
    "ExpectedToolCall",
    "MatchMode",
    "ToolCallCorrectness",
    "ToolCallCorrectnessParams",
    "ToolCallSuccess",
    "ToolCallSuccessParams",
    "tool_call_failed",
]

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)

ERROR_KEYS: tuple[str, ...] = ("error", "errors", "exception")
"""Keys of a tool result that, when present and non-empty, mark the call as failed even if the source
did not say so (many platforms report only the result body)."""


def tool_call_failed(tool_call: ToolCall, error_keys: Sequence[str] = ERROR_KEYS) -> bool:
    """Whether a tool call errored: ``success`` is False, or its result carries an error."""
    if tool_call.success is not None:
        return not tool_call.success
    result = tool_call.result
    return isinstance(result, dict) and any(result.get(key) not in (None, "", [], {}) for key in error_keys)


class ToolCallSuccessParams(BaseModel):
    """Which result keys count as an error when the source gives no success flag."""

    model_config = _CONFIG

    error_keys: list[str] = Field(default_factory=lambda: list(ERROR_KEYS))
    """Result keys that, non-empty, mark a call without a success flag as failed."""


@register
class ToolCallSuccess(RuleMetric[ToolCallSuccessParams]):
    """True when no tool call errored."""

    name = "tool_call_success"
    version = "1"
    params_model = ToolCallSuccessParams
    description = "True when every tool call of the call succeeded; any errored tool call makes it False."

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        failed: list[JsonValue] = [
            {"id": tc.id, "name": tc.name, "turn_index": tc.turn_index, "result": tc.result}
            for tc in call.tool_calls
            if tool_call_failed(tc, self.params.error_keys)
        ]
        ok = not failed
        evidence: dict[str, JsonValue] = {"tool_calls": len(call.tool_calls), "failed": failed}
        return self.result(call, value=ok, passed=ok, evidence=evidence)


class MatchMode(StrEnum):
    """How the actual tool calls are compared with the expected ones."""

    EXACT = "exact"
    UNORDERED = "unordered"
    ORDERED = "ordered"


class ArgumentMatch(StrEnum):
    """How a call's arguments must agree with the expected ones."""

    EXACT = "exact"
    """Equal as JSON values."""
    SUBSET = "subset"
    """Every expected argument present with an equal value; extra arguments allowed."""
    IGNORE = "ignore"
    """Names only."""


class ExpectedToolCall(BaseModel):
    """One expected tool call: its name, and its arguments when they matter."""

    model_config = _CONFIG

    name: str = Field(min_length=1)
    arguments: dict[str, JsonValue] | None = None
    """None: any arguments are accepted for this call."""


class ToolCallCorrectnessParams(BaseModel):
    """The expected calls (else taken from the scenario's ``expected_tool_calls``) and how to compare."""

    model_config = _CONFIG

    expected: list[ExpectedToolCall] | None = None
    """The expected calls in order; None: the scenario's expected_tool_calls."""
    mode: MatchMode = MatchMode.ORDERED
    """exact, unordered or ordered (longest common subsequence)."""
    argument_match: ArgumentMatch = ArgumentMatch.SUBSET
    """How arguments must agree: exact, subset or ignore."""
    threshold: float = Field(default=1.0, ge=0.0, le=1.0)
    """Lowest passing score."""
    only_successful: bool = False
    """Compare only the tool calls that succeeded (an attempt that errored then does not count)."""


def _normalise(value: JsonValue) -> JsonValue:
    """Case- and space-insensitive strings, so ``"Tuesday "`` matches ``"tuesday"``."""
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _arguments_match(expected: ExpectedToolCall, actual: ToolCall, mode: ArgumentMatch) -> bool:
    if expected.name != actual.name:
        return False
    if mode is ArgumentMatch.IGNORE or expected.arguments is None:
        return True
    got = _normalise(actual.arguments)
    want = _normalise(expected.arguments)
    if mode is ArgumentMatch.EXACT:
        return got == want
    if not isinstance(got, dict) or not isinstance(want, dict):
        return False
    return all(key in got and got[key] == value for key, value in want.items())


def _lcs(expected: Sequence[ExpectedToolCall], actual: Sequence[ToolCall], mode: ArgumentMatch) -> list[int]:
    """Indices into ``actual`` of a longest common subsequence with ``expected``."""
    rows, cols = len(expected), len(actual)
    table = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if _arguments_match(expected[i], actual[j], mode):
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    picked: list[int] = []
    i = j = 0
    while i < rows and j < cols:
        if _arguments_match(expected[i], actual[j], mode):
            picked.append(j)
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return picked


def _bipartite(
    expected: Sequence[ExpectedToolCall], actual: Sequence[ToolCall], mode: ArgumentMatch
) -> dict[int, int]:
    """A maximum one-to-one matching, expected index -> actual index (augmenting paths)."""
    edges = [[j for j, tc in enumerate(actual) if _arguments_match(e, tc, mode)] for e in expected]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(expected)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def _expected_from(
    params: ToolCallCorrectnessParams, scenario: Mapping[str, Any] | None
) -> list[ExpectedToolCall] | None:
    if params.expected is not None:
        return params.expected
    if scenario is None or scenario.get("expected_tool_calls") is None:
        return None
    try:
        raw = scenario["expected_tool_calls"]
        return [ExpectedToolCall.model_validate(item) for item in raw]
    except (ValidationError, TypeError) as exc:
        message = f"scenario expected_tool_calls is not a list of {{name, arguments}}: {exc}"
        raise InputError(message) from None


@register
class ToolCallCorrectness(RuleMetric[ToolCallCorrectnessParams]):
    """How well the tool calls made match the expected ones."""

    name = "tool_call_correctness"
    version = "1"
    params_model = ToolCallCorrectnessParams
    description = (
        "Agreement of the tool calls made with the expected calls (exact, unordered or ordered-LCS, "
        "names and arguments), from 0 to 1; passes at or above the threshold."
    )

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        expected = _expected_from(self.params, context.scenario)
        if expected is None:
            return self.result(call, value=None, evidence={"not_scorable": "no expected tool calls"})
        actual = [tc for tc in call.tool_calls if not (self.params.only_successful and tool_call_failed(tc))]
        mode = self.params.argument_match
        matched: dict[int, int]
        if not expected:
            score = 1.0 if not actual else 0.0
            matched = {}
        elif self.params.mode is MatchMode.EXACT:
            pairs_ok = len(expected) == len(actual) and all(
                _arguments_match(e, a, mode) for e, a in zip(expected, actual, strict=True)
            )
            score = 1.0 if pairs_ok else 0.0
            matched = {i: i for i in range(len(expected))} if pairs_ok else {}
        elif self.params.mode is MatchMode.UNORDERED:
            matched = _bipartite(expected, actual, mode)
            score = len(matched) / len(expected)
        else:
            picked = _lcs(expected, actual, mode)
            score = len(picked) / len(expected)
            matched = dict(enumerate(picked)) if picked else {}
        used = set(matched.values())
        evidence: dict[str, JsonValue] = {
            "expected": [e.model_dump(mode="json") for e in expected],
            "actual": [{"name": tc.name, "arguments": tc.arguments} for tc in actual],
            "missing": [e.name for i, e in enumerate(expected) if i not in matched],
            "unexpected": [tc.name for j, tc in enumerate(actual) if j not in used],
        }
        if self.params.mode is MatchMode.ORDERED:
            evidence["lcs_length"] = len(matched)
        value = round(score, 6)
        return self.result(call, value=value, passed=value >= self.params.threshold, evidence=evidence)
