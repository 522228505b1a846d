"""Tool-call success and correctness on hand-built calls."""

from __future__ import annotations

import pytest

from convoscope.errors import InputError
from convoscope.evals.base import EvalContext
from convoscope.evals.rules.tools import (
    ToolCallCorrectness,
    ToolCallCorrectnessParams,
    ToolCallSuccess,
)

from .builders import make_call, run

BOOK = {"name": "book", "arguments": {"day": "Tuesday", "time": "15:00"}, "success": True}
SMS = {"name": "send_sms", "arguments": {"to": "+15550100"}, "success": True}
LOOKUP = {"name": "lookup", "arguments": {"id": 7}}


def test_success_true_when_no_call_errored() -> None:
    result = run(ToolCallSuccess(), make_call(("agent", "hi"), tool_calls=[BOOK, LOOKUP]))
    assert result.value is True and result.passed is True
    assert result.evidence == {"tool_calls": 2, "failed": []}


def test_success_false_on_flag_or_error_body() -> None:
    calls = [BOOK, {**SMS, "success": False}, {"name": "lookup", "result": {"error": "timeout"}}]
    result = run(ToolCallSuccess(), make_call(("agent", "hi"), tool_calls=calls))
    assert result.value is False and result.passed is False
    assert [f["name"] for f in result.evidence["failed"]] == ["send_sms", "lookup"]  # type: ignore[index, union-attr]


def test_success_ignores_empty_error_field() -> None:
    result = run(
        ToolCallSuccess(), make_call(("agent", "hi"), tool_calls=[{"name": "x", "result": {"error": None}}])
    )
    assert result.value is True


def correctness(expected: list[dict[str, object]], **params: object) -> ToolCallCorrectness:
    return ToolCallCorrectness(ToolCallCorrectnessParams.model_validate({"expected": expected, **params}))


EXPECTED = [{"name": "lookup"}, {"name": "book", "arguments": {"day": "tuesday"}}, {"name": "send_sms"}]


def test_ordered_lcs_counts_the_common_subsequence() -> None:
    call = make_call(("agent", "x"), tool_calls=[SMS, LOOKUP, BOOK])
    result = run(correctness(EXPECTED, mode="ordered"), call)
    assert result.value == pytest.approx(2 / 3)
    assert result.passed is False
    assert result.evidence["lcs_length"] == 2
    assert result.evidence["missing"] == ["send_sms"]
    assert result.evidence["unexpected"] == ["send_sms"]


def test_unordered_matches_regardless_of_order() -> None:
    call = make_call(("agent", "x"), tool_calls=[SMS, LOOKUP, BOOK])
    result = run(correctness(EXPECTED, mode="unordered"), call)
    assert result.value == 1.0 and result.passed is True


def test_exact_needs_same_order_and_length() -> None:
    in_order = make_call(("agent", "x"), tool_calls=[LOOKUP, BOOK, SMS])
    assert run(correctness(EXPECTED, mode="exact"), in_order).value == 1.0
    extra = make_call(("agent", "x"), tool_calls=[LOOKUP, BOOK, SMS, LOOKUP])
    assert run(correctness(EXPECTED, mode="exact"), extra).value == 0.0


def test_argument_match_modes() -> None:
    wrong_day = {**BOOK, "arguments": {"day": "Wednesday", "time": "15:00"}}
    call = make_call(("agent", "x"), tool_calls=[LOOKUP, wrong_day, SMS])
    assert run(correctness(EXPECTED, mode="ordered", argument_match="subset"), call).value == pytest.approx(
        2 / 3
    )
    assert run(correctness(EXPECTED, mode="ordered", argument_match="ignore"), call).value == 1.0
    exact = [{"name": "book", "arguments": {"day": "Tuesday"}}]
    full_args = make_call(("agent", "x"), tool_calls=[BOOK])
    assert run(correctness(exact, argument_match="exact"), full_args).value == 0.0
    assert run(correctness(exact, argument_match="subset"), full_args).value == 1.0


def test_unordered_uses_a_maximum_matching() -> None:
    # greedy would give the first "book" expectation (any arguments) the only Tuesday booking
    expected = [{"name": "book"}, {"name": "book", "arguments": {"day": "tuesday"}}]
    monday = {**BOOK, "arguments": {"day": "Monday"}}
    call = make_call(("agent", "x"), tool_calls=[BOOK, monday])
    assert run(correctness(expected, mode="unordered"), call).value == 1.0


def test_only_successful_drops_failed_attempts() -> None:
    call = make_call(("agent", "x"), tool_calls=[{**BOOK, "success": False}])
    expected = [{"name": "book"}]
    assert run(correctness(expected), call).value == 1.0
    assert run(correctness(expected, only_successful=True), call).value == 0.0


def test_expected_from_scenario_and_not_scorable_without() -> None:
    call = make_call(("agent", "x"), tool_calls=[LOOKUP])
    metric = ToolCallCorrectness()
    assert run(metric, call).evidence == {"not_scorable": "no expected tool calls"}
    context = EvalContext(scenario={"expected_tool_calls": [{"name": "lookup"}, {"name": "book"}]})
    assert run(metric, call, context).value == 0.5
    with pytest.raises(InputError, match="expected_tool_calls"):
        run(metric, call, EvalContext(scenario={"expected_tool_calls": [{"nom": "x"}]}))


def test_nothing_expected() -> None:
    assert run(correctness([]), make_call(("agent", "x"))).value == 1.0
    assert run(correctness([]), make_call(("agent", "x"), tool_calls=[LOOKUP])).value == 0.0
