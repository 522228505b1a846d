"""Say-do consistency with judge-assisted claim extraction, against the loopback chat-completions server."""

from __future__ import annotations

from convoscope.evals.base import EvalContext
from convoscope.evals.llm import JudgeClient
from convoscope.evals.rules.saydo import SayDoConsistency, SayDoParams
from convoscope.testing.openai_server import FakeOpenAIServer, Reply, json_reply

from .builders import make_call
from .judge_support import fake_llm, judge, system_of, user_of

__all__ = ["fake_llm", "judge"]

CALL = make_call(
    ("user", "Can you sort out my booking?"),
    ("agent", "It's all sorted, you're on the list for Tuesday."),  # no pattern catches this phrasing
    ("agent", "Would you like me to text you the details?"),
    tool_calls=[{"name": "send_sms", "turn_index": 2, "success": True}],
)


def test_judge_extracted_claims_are_checked_against_tools(
    fake_llm: FakeOpenAIServer, judge: JudgeClient
) -> None:
    fake_llm.add(
        json_reply(
            {
                "claims": [
                    {
                        "turn_index": 1,
                        "action": "book",
                        "quote": "It's all sorted, you're on the list for Tuesday.",
                    }
                ]
            }
        ),
        contains="list every action",
    )
    result = SayDoConsistency().evaluate(CALL, EvalContext(judge=judge))
    assert result.evidence["extraction"] == "judge"
    assert [(c["turn_index"], c["action"], c["status"]) for c in result.evidence["claims"]] == [
        (1, "book", "missing")
    ]  # type: ignore[index, union-attr]
    assert result.value == 0.0 and result.passed is False
    (request,) = fake_llm.requests
    assert "list every action" in system_of(request) and "[1] agent: It's all sorted" in user_of(request)
    assert "Tuesday" not in system_of(request)  # the transcript is data, never mixed into the rubric


def test_judge_claims_outside_agent_turns_or_other_are_dropped(
    fake_llm: FakeOpenAIServer, judge: JudgeClient
) -> None:
    claims = [
        {"turn_index": 0, "action": "book", "quote": "sort out my booking"},
        {"turn_index": 2, "action": "other", "quote": "text you the details"},
    ]
    fake_llm.add(json_reply({"claims": claims}), contains="list every action")
    result = SayDoConsistency().evaluate(CALL, EvalContext(judge=judge))
    assert result.evidence["claims"] == [] and result.passed is True


def test_judge_failure_falls_back_to_patterns(fake_llm: FakeOpenAIServer, judge: JudgeClient) -> None:
    fake_llm.add(Reply(content="not json at all"), contains="list every action")
    call = make_call(("agent", "I've booked you for Tuesday."))
    result = SayDoConsistency().evaluate(call, EvalContext(judge=judge))
    assert result.evidence["extraction"] == "patterns" and "judge_error" in result.evidence
    assert result.evidence["claims"][0]["status"] == "missing"  # type: ignore[index]
    assert result.error is None


def test_use_judge_off_never_asks(fake_llm: FakeOpenAIServer, judge: JudgeClient) -> None:
    result = SayDoConsistency(SayDoParams(use_judge=False)).evaluate(CALL, EvalContext(judge=judge))
    assert result.evidence["extraction"] == "patterns" and fake_llm.requests == []
