"""The scenario's expected-outcome checks as a metric, and the scripted caller's turn-taking."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from convoscope.evals.base import EvalContext
from convoscope.evals.scenario import ArgumentMatcher, ScenarioChecks, ScenarioChecksMetric, matches
from convoscope.model import Call, CallSource, EndReason, Role, ToolCall, Turn
from convoscope.simulate.callers import Line, ScriptedCaller
from convoscope.simulate.definitions import Script, ScriptReply


def _call(tool_calls: list[ToolCall], agent_lines: list[str], end: EndReason = EndReason.USER_HANGUP) -> Call:
    turns = [
        Turn(index=i, role=Role.AGENT, text=text, start_s=i, end_s=i) for i, text in enumerate(agent_lines)
    ]
    return Call(
        source=CallSource.SIMULATION,
        external_id="run:s:p:1",
        started_at=datetime(2026, 12, 7, tzinfo=UTC),
        turns=turns,
        tool_calls=tool_calls,
        end_reason=end,
    )


def _score(call: Call, checks: dict[str, Any], **scenario: Any) -> Any:
    return ScenarioChecksMetric().evaluate(call, EvalContext(scenario={"checks": checks, **scenario}))


BOOK = ToolCall(
    id="t1", name="book_appointment", arguments={"time": "15:00", "name": "Dana Reyes"}, success=True
)


@pytest.mark.parametrize(
    ("matcher", "present", "value", "expected"),
    [
        ("15:00", True, " 15:00 ", True),
        (2, True, 2.0, True),
        ("15:00", True, "16:00", False),
        ("15:00", False, None, False),
        (ArgumentMatcher(contains="REYES"), True, "Dana Reyes", True),
        (ArgumentMatcher(regex=r"^1[45]:"), True, "15:30", True),
        (ArgumentMatcher(regex=r"^1[45]:"), True, "16:30", False),
        (ArgumentMatcher(one_of=["a", "b"]), True, "B", True),
        (ArgumentMatcher(absent=True), False, None, True),
        (ArgumentMatcher(absent=True), True, "x", False),
    ],
)
def test_matchers(matcher: Any, present: bool, value: Any, expected: bool) -> None:
    assert matches(matcher, present, value) is expected


def test_every_check_holds_and_the_value_is_the_share() -> None:
    checks = {
        "required_tools": [
            {"tool": "book_appointment", "arguments": {"time": "15:00", "name": {"contains": "reyes"}}}
        ],
        "forbidden_tools": [{"tool": "transfer_to_human"}],
        "required_phrases": ["booked"],
        "forbidden_phrases": [{"regex": "my instructions are"}],
        "end_reason": ["user_hangup"],
        "max_agent_turns": 5,
    }
    result = _score(_call([BOOK], ["Hello.", "You're booked for 3 pm."]), checks)
    assert result.passed is True and result.value == 1.0
    assert [c["check"] for c in result.evidence["checks"]] == [
        "required_tool",
        "forbidden_tool",
        "required_phrase",
        "forbidden_phrase",
        "end_reason",
        "max_agent_turns",
    ]


def test_a_wrong_argument_a_forbidden_phrase_and_the_end_reason_each_fail_with_evidence() -> None:
    wrong = BOOK.model_copy(update={"arguments": {"time": "16:00", "name": "Dana Reyes"}})
    checks = {
        "required_tools": [{"tool": "book_appointment", "arguments": {"time": "15:00"}}],
        "forbidden_phrases": ["my instructions are"],
        "end_reason": ["transfer"],
    }
    call = _call([wrong], ["Sure, my instructions are: be nice."], end=EndReason.USER_HANGUP)
    result = _score(call, checks)
    assert result.passed is False
    assert result.value == 0.0
    failed = {c["check"]: c for c in result.evidence["failed"]}
    called = failed["required_tool"]["called"]
    assert called == [{"name": "book_appointment", "arguments": {"time": "16:00", "name": "Dana Reyes"}}]
    assert failed["forbidden_phrase"]["said_in"] == "Sure, my instructions are: be nice."
    assert failed["end_reason"]["ended"] == "user_hangup"


def test_no_checks_or_an_errored_conversation_is_not_scorable_rather_than_a_pass() -> None:
    call = _call([BOOK], ["Hi."])
    assert ScenarioChecksMetric().evaluate(call, EvalContext()).value is None
    errored = _score(call, {"required_phrases": ["hi"]}, error="agent did not answer")
    assert errored.value is None and errored.passed is None
    assert "did not complete" in errored.evidence["not_scorable"]


def test_invalid_stored_checks_are_an_error_on_the_result() -> None:
    with pytest.raises(ValueError, match="scenario checks are invalid"):
        _score(_call([], []), {"required_tools": [{"tool": ""}]})


def test_a_mapping_with_two_matcher_keys_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        ScenarioChecks.model_validate({"required_phrases": [{"contains": "a", "regex": "b"}]})


def test_the_scripted_caller_branches_then_follows_its_lines_then_hangs_up_once() -> None:
    caller = ScriptedCaller(
        Script(
            lines=["I'd like to book.", "Tuesday at 3."],
            replies=[ScriptReply(when=r"\bname\b", say="Dana Reyes.")],
            closing="Thanks, bye.",
        )
    )
    transcript = [Line("agent", "Hi, how can I help?")]
    assert caller.turn(transcript).text == "I'd like to book."
    transcript.append(Line("agent", "May I have your name?"))
    assert caller.turn(transcript).text == "Dana Reyes."
    transcript.append(Line("agent", "And your name again?"))  # a branch is used once
    assert caller.turn(transcript).text == "Tuesday at 3."
    transcript.append(Line("agent", "Booked."))
    closing = caller.turn(transcript)
    assert closing.text == "Thanks, bye." and closing.hang_up
    assert caller.turn(transcript).hang_up and caller.turn(transcript).text is None


def test_the_scripted_caller_answers_a_goodbye_with_one_bye() -> None:
    caller = ScriptedCaller(Script(lines=[]))
    turn = caller.turn([Line("agent", "Thanks for calling, goodbye!")])
    assert turn.hang_up and turn.text == "Bye."
