"""A stored call as a scenario: its replay fails on the agent that failed and passes on the fixed one.

The failed calls come from real conversations with the reference agent (its faults switched on by the
model name) scored by the real evaluators; the generated definitions go through YAML and the loader
before they run, as a user's would. The rules (script, failed metrics, checks, mocks) are also checked on
calls built by hand, scored by the real metrics where the evidence's shape matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.errors import InputError
from convoscope.evals.base import EvalContext
from convoscope.evals.llm import JudgeClient, JudgeConfig
from convoscope.evals.rules.saydo import SayDoConsistency
from convoscope.evals.rules.tools import ToolCallCorrectness
from convoscope.evals.runner import evaluate_call
from convoscope.evals.scenario import ArgumentMatcher, ToolExpectation
from convoscope.model import Call, CallSource, EndReason, MetricResult, MetricSource, Role, ToolCall, Turn
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.conversation import ARE_YOU_THERE
from convoscope.simulate.definitions import AgentSpec, ConnectorSpec, Definitions, Scenario, Suite, ToolMock
from convoscope.simulate.from_call import (
    SUCCESS_RESULT,
    definitions_yaml,
    derive_from_call,
    scenario_from_call,
    scenario_id_for,
)
from convoscope.simulate.loader import load_definitions
from convoscope.simulate.runner import ConversationResult, default_scorer, run_suite
from convoscope.store.base import StoredCall
from convoscope.testing.openai_server import FakeOpenAIServer, Reply, json_reply

CALL_ID = "0193b3c2-5d1e-7a40-9f3e-4c2b1a0d9e8f"

SCENARIOS = """\
kind: scenario
id: book
goal: Book a cleaning on Tuesday at 3 pm.
unmocked_tools: pass_through
checks:
  required_tools:
    - tool: book_appointment
      arguments: {time: "15:00"}
  end_reason: [user_hangup]
script:
  lines: ["I'd like to book a cleaning."]
  replies:
    - {when: "anything else", say: "No, that's all. Thanks, bye.", hang_up: true}
    - {when: "\\\\b(day|date|when)\\\\b", say: "Tuesday at 3 pm.", once: false}
    - {when: "\\\\bname\\\\b", say: "Dana Reyes."}
---
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
---
kind: scenario
id: human
goal: Speak to a person.
expected_outcome: The caller is put through to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
  end_reason: [transfer]
script:
  lines: ["Can I speak to a real person, please?", "I really want a person."]
---
kind: suite
id: all
scenarios: [book, price, human]
"""


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    folder = tmp_path_factory.mktemp("defs")
    (folder / "scenarios.yaml").write_text(SCENARIOS)
    return load_definitions([folder])


def _run(definitions: Definitions, suite: Suite, url: str, model: str) -> ConversationResult:
    spec = ConnectorSpec.model_validate({"kind": "openai", "base_url": f"{url}/v1", "model": model})
    agent = AgentSpec(id="clinic", version=model, connector=spec, tools_url=f"{url}/tools")

    async def go() -> ConversationResult:
        connector = OpenAIChatConnector(f"{url}/v1", model=model)
        try:
            report = await run_suite(definitions, suite, agent, connector, scorer=default_scorer(suite))
        finally:
            await connector.aclose()
        (result,) = report.results
        return result

    return asyncio.run(go())


def _stored(call: Call, scores: list[MetricResult]) -> StoredCall:
    """The call as the store gives it back: with its id, and its scores under that id."""
    stored = call.model_copy(update={"id": CALL_ID})
    return StoredCall(
        call=stored,
        scores=[score.model_copy(update={"call_id": CALL_ID}) for score in scores],
        version=1,
        ingested_at=datetime.now(UTC),
    )


def _through_yaml(tmp_path: Path, scenario: Scenario, suite: Suite) -> Definitions:
    """The definitions as ``convoscope simulate`` would load them from the written file."""
    folder = tmp_path / "replay"
    folder.mkdir(exist_ok=True)
    (folder / "replay.yaml").write_text(definitions_yaml(scenario, suite, call_id=CALL_ID))
    loaded = load_definitions([folder])
    assert loaded.scenarios[scenario.id] == scenario
    assert loaded.suites[suite.id] == suite
    return loaded


def _failed_metrics(result: ConversationResult) -> set[str]:
    assert result.verdict != "errored", result.reasons
    return {score.metric for score in result.scores if score.passed is False}


@pytest.mark.parametrize(
    ("fault", "scenario", "caught_by"),
    [
        ("never_transfers", "human", "scenario_checks"),
        ("wrong_tool_args", "book", "scenario_checks"),
        ("hallucinated_price", "price", "scenario_checks"),
        ("leaks_pii", "book", "pii_leakage"),
    ],
)
def test_the_replay_fails_on_the_faulty_agent_and_passes_on_the_fixed_one(
    definitions: Definitions, agent_url: str, tmp_path: Path, fault: str, scenario: str, caught_by: str
) -> None:
    suite = definitions.suites["all"].model_copy(update={"scenarios": [scenario]})
    original = _run(definitions, suite, agent_url, f"reference-agent+{fault}")
    assert caught_by in _failed_metrics(original)
    made_scenario, made_suite = scenario_from_call(_stored(original.outcome.call, original.scores))
    assert made_suite.metrics is not None and caught_by in made_suite.metrics
    replay = _through_yaml(tmp_path, made_scenario, made_suite)
    again = _run(replay, replay.suites[made_suite.id], agent_url, f"reference-agent+{fault}")
    assert caught_by in _failed_metrics(again), again.reasons
    fixed = _run(replay, replay.suites[made_suite.id], agent_url, "reference-agent")
    assert fixed.verdict == "passed", fixed.reasons


def test_a_copied_transfer_check_lets_the_transfer_tool_succeed(
    definitions: Definitions, agent_url: str
) -> None:
    suite = definitions.suites["all"].model_copy(update={"scenarios": ["human"]})
    original = _run(definitions, suite, agent_url, "reference-agent+never_transfers")
    scenario, suite = scenario_from_call(_stored(original.outcome.call, original.scores))
    assert scenario.checks.required_tools == [ToolExpectation(tool="transfer_to_human")]
    assert scenario.checks.end_reason == [EndReason.TRANSFER]
    assert scenario.expected_outcome == "The caller is put through to a person."
    # the faulty agent never called it, so no backend answer exists: the fix gets a plain success
    assert ToolMock(tool="transfer_to_human", result=SUCCESS_RESULT) in scenario.tool_mocks
    assert scenario.unmocked_tools.value == "error"


def test_a_production_call_gets_the_arguments_the_agent_claimed_from_say_do(
    definitions: Definitions, agent_url: str, tmp_path: Path
) -> None:
    """No scenario checks on a production call: the say-do failure alone says what should have happened."""
    suite = definitions.suites["all"].model_copy(update={"scenarios": ["book"]})
    simulated = _run(definitions, suite, agent_url, "reference-agent+wrong_tool_args").outcome.call
    production = simulated.model_copy(
        update={"source": CallSource.GENERIC, "external_id": "prod-1", "metadata": {}, "simulation": None}
    )
    scores = default_scorer(Suite(id="prod", scenarios=["x"]))(production)
    assert {s.metric for s in scores if s.passed is False} == {"say_do_consistency"}

    scenario, made_suite = scenario_from_call(_stored(production, scores))

    assert made_suite.metrics == ["say_do_consistency"]
    assert scenario.checks.required_tools == [
        ToolExpectation(tool="book_appointment", arguments={"time": "15:00"})
    ]
    booked = [m for m in scenario.tool_mocks if m.tool == "book_appointment"]
    original, corrected, fallback = booked
    assert original.when["time"] == "16:00" and isinstance(original.result, dict)
    assert original.result["time"] == "16:00"
    assert corrected.when["time"] == "15:00" and isinstance(corrected.result, dict)
    assert corrected.result["time"] == "15:00"  # the echoed time follows the corrected argument
    assert corrected.result["booking_id"] == original.result["booking_id"]
    assert fallback.when == {}
    replay = _through_yaml(tmp_path, scenario, made_suite)
    again = _run(replay, replay.suites[made_suite.id], agent_url, "reference-agent+wrong_tool_args")
    assert _failed_metrics(again) == {"say_do_consistency", "scenario_checks"}
    fixed = _run(replay, replay.suites[made_suite.id], agent_url, "reference-agent")
    assert fixed.verdict == "passed", fixed.reasons


# ----- the rules, on calls built by hand


def _turns(*lines: tuple[str, str]) -> list[Turn]:
    return [
        Turn(index=i, role=Role(role), text=text, start_s=float(i), end_s=float(i) + 0.5)
        for i, (role, text) in enumerate(lines)
    ]


def _call(
    *lines: tuple[str, str],
    tools: list[ToolCall] | None = None,
    end: EndReason = EndReason.AGENT_HANGUP,
    source: CallSource = CallSource.GENERIC,
    **extra: Any,
) -> Call:
    return Call(
        source=source,
        external_id="prod-7",
        agent_id="clinic-line",
        started_at=datetime(2026, 3, 4, 10, 30, tzinfo=UTC),
        end_reason=end,
        turns=_turns(*lines),
        tool_calls=tools or [],
        **extra,
    )


def _score(metric: str, passed: bool | None, **evidence: Any) -> MetricResult:
    """A stored score, as the store hands it back (a custom metric's, a latency figure)."""
    return MetricResult(
        call_id=CALL_ID,
        metric=metric,
        value=1.0,
        passed=passed,
        evidence=evidence,
        source=MetricSource.TRANSCRIPT,
    )


def test_the_script_is_the_callers_lines_and_the_last_one_closes_when_the_caller_hung_up_on_it() -> None:
    hung_up = _call(
        ("agent", "Hi, how can I help?"),
        ("user", "I need to move my appointment."),
        ("agent", "Sure, what's your booking number?"),
        ("user", "  "),
        ("user", "NB-1234."),
        ("agent", "Done. Anything else?"),
        ("user", "No, bye."),
        end=EndReason.USER_HANGUP,
    )
    scenario, suite = scenario_from_call(_stored(hung_up, []))
    assert scenario.script is not None
    assert scenario.script.lines == ["I need to move my appointment.", "NB-1234."]
    assert scenario.script.closing == "No, bye."
    assert scenario.script.replies == []
    assert suite.caller == "auto"

    agent_ended = hung_up.model_copy(update={"end_reason": EndReason.AGENT_HANGUP})
    scenario, _ = scenario_from_call(_stored(agent_ended, []))
    assert scenario.script is not None
    assert scenario.script.lines == ["I need to move my appointment.", "NB-1234.", "No, bye."]
    assert scenario.script.closing is None


def test_the_engines_own_are_you_there_is_not_scripted_for_a_simulated_call() -> None:
    lines = (("agent", "Hello?"), ("user", "Hi."), ("user", ARE_YOU_THERE), ("agent", "Yes."))
    simulated, _ = scenario_from_call(_stored(_call(*lines, source=CallSource.SIMULATION), []))
    production, _ = scenario_from_call(_stored(_call(*lines), []))
    assert simulated.script is not None and simulated.script.lines == ["Hi."]
    assert production.script is not None and production.script.lines == ["Hi.", ARE_YOU_THERE]


def test_a_call_without_caller_turns_is_refused_with_its_id() -> None:
    silent = _call(("agent", "Hello? Anyone there?"), end=EndReason.SILENCE_TIMEOUT)
    with pytest.raises(InputError, match=f"call {CALL_ID} has no caller turns"):
        scenario_from_call(_stored(silent, []))


def test_ids_tags_and_a_long_call_gets_enough_turns() -> None:
    lines = [("user", f"line {n}") for n in range(30)]
    scenario, suite = scenario_from_call(_stored(_call(*lines), []))
    assert scenario.id == suite.id == "from-4c2b1a0d9e8f" == scenario_id_for(CALL_ID)
    assert suite.scenarios == [scenario.id]
    assert scenario.tags == ["from-call", "clinic-line"]
    assert scenario.max_turns > 30


def test_the_failed_metrics_become_the_suites_and_unknown_ones_are_noted() -> None:
    call = _call(("user", "Hi."), ("agent", "Hello."))
    made = derive_from_call(
        _stored(
            call,
            [
                _score("loop_detection", False),
                _score("latency", True),
                _score("pii_leakage", None),
                _score("our_house_style", False),
                _score("loop_detection", False),
            ],
        )
    )
    assert made.suite.metrics == ["loop_detection"]
    assert any("our_house_style" in note for note in made.notes)

    only_custom = derive_from_call(_stored(call, [_score("our_house_style", False)]))
    assert only_custom.suite.metrics is None  # an empty list would mean the same, less plainly

    nothing_failed = derive_from_call(_stored(call, [_score("latency", True)]))
    assert nothing_failed.suite.metrics is None
    assert any("no metric failed" in note for note in nothing_failed.notes)


def test_tool_answers_repeat_in_order_and_a_tool_that_only_failed_has_no_fallback() -> None:
    status = [
        ToolCall(
            id=f"s{n}", name="order_status", arguments={"order": "A1"}, result={"status": s}, success=True
        )
        for n, s in enumerate(("packing", "shipped"))
    ]
    refund = ToolCall(
        id="r1", name="refund", arguments={"order": "A1"}, result={"error": "over limit"}, success=False
    )
    call = _call(("user", "Where is my order A1?"), ("agent", "It has shipped."), tools=[*status, refund])
    scenario, _ = scenario_from_call(_stored(call, []))
    assert scenario.tool_mocks == [
        ToolMock(tool="order_status", when={"order": "A1"}, result={"status": "packing"}, times=1),
        ToolMock(tool="order_status", when={"order": "A1"}, result={"status": "shipped"}),
        ToolMock(tool="refund", when={"order": "A1"}, result={"error": "over limit"}, success=False),
        ToolMock(tool="order_status", result={"status": "shipped"}),
    ]


def test_a_slow_tool_keeps_its_duration_only_when_latency_failed() -> None:
    slow = ToolCall(id="t", name="lookup", arguments={}, result={"ok": True}, start_s=2.0, end_s=6.25)
    call = _call(("user", "Hi."), ("agent", "One moment."), tools=[slow])
    quick, _ = scenario_from_call(_stored(call, [_score("loop_detection", False)]))
    slowed, _ = scenario_from_call(_stored(call, [_score("latency", False)]))
    assert {m.delay_s for m in quick.tool_mocks} == {0.0}
    assert {m.delay_s for m in slowed.tool_mocks} == {4.25}


def test_an_argument_that_reads_as_a_matcher_is_matched_literally(tmp_path: Path) -> None:
    odd = ToolCall(id="t", name="search", arguments={"filter": {"contains": "x"}}, result=[1], success=True)
    call = _call(("user", "Find x."), ("agent", "Found one."), tools=[odd])
    scenario, suite = scenario_from_call(_stored(call, []))
    assert scenario.tool_mocks[0].when == {"filter": ArgumentMatcher(one_of=[{"contains": "x"}])}
    _through_yaml(tmp_path, scenario, suite)


def test_a_claimed_transfer_that_never_happened_requires_the_call_to_end_in_one() -> None:
    call = _call(
        ("user", "Can I talk to someone?"),
        ("agent", "Sure, I'm transferring you now."),
        end=EndReason.USER_HANGUP,
    )
    (score,) = evaluate_call(call, [SayDoConsistency()], EvalContext())
    assert score.passed is False
    scenario, suite = scenario_from_call(_stored(call, [score]))
    assert suite.metrics == ["say_do_consistency"]
    assert scenario.checks.end_reason == [EndReason.TRANSFER]
    assert {m.tool for m in scenario.tool_mocks} == {"transfer_to_human", "transfer_call"}


def test_failed_tool_call_correctness_requires_the_expected_calls() -> None:
    wrong = ToolCall(id="t", name="cancel", arguments={"booking": "NB-1"}, result={"ok": True}, success=True)
    call = _call(("user", "Cancel NB-2."), ("agent", "Cancelled."), tools=[wrong])
    context = EvalContext(
        scenario={"expected_tool_calls": [{"name": "cancel", "arguments": {"booking": "NB-2"}}]}
    )
    (score,) = evaluate_call(call, [ToolCallCorrectness()], context)
    assert score.passed is False
    scenario, _ = scenario_from_call(_stored(call, [score]))
    assert scenario.checks.required_tools == [ToolExpectation(tool="cancel", arguments={"booking": "NB-2"})]
    assert ToolMock(tool="cancel", when={"booking": "NB-2"}, result={"ok": True}) in scenario.tool_mocks


# ----- with an LLM


GUESS = {
    "goal": "Move my cleaning to Friday morning.",
    "instructions": "Give the booking number only when asked.",
    "facts": [{"name": "name", "value": "Dana Reyes"}, {"name": "booking id", "value": "NB-1234"}],
    "caller": "Polite but in a hurry.",
    "expected_outcome": "The agent reschedules NB-1234 to Friday morning and confirms it.",
}


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _client(server: FakeOpenAIServer, tmp_path: Path) -> JudgeClient:
    config = JudgeConfig(
        base_url=server.url, model="fake", backoff_initial_s=0.0, max_retries=0, cache_path=tmp_path / "c.db"
    )
    return JudgeClient(config)


def test_with_an_llm_the_caller_is_inferred_and_the_script_stays(
    fake_llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_llm.add(json_reply(GUESS), contains="Read the transcript and describe the caller")
    call = _call(
        ("user", "Hi, I need to move my cleaning."),
        ("agent", "Sure. Booking number?"),
        ("user", "NB-1234, Dana Reyes."),
        ("agent", "Moved to Friday at 4 pm."),
    )
    with _client(fake_llm, tmp_path) as client:
        made = derive_from_call(
            _stored(call, [_score("loop_detection", False, repeated="Booking number?")]), llm=client
        )
    scenario = made.scenario
    assert made.inferred
    assert scenario.goal == GUESS["goal"]
    assert scenario.facts == {"name": "Dana Reyes", "booking id": "NB-1234"}
    assert "Give the booking number only when asked." in scenario.instructions
    assert "Polite but in a hurry." in scenario.instructions
    assert scenario.expected_outcome == GUESS["expected_outcome"]
    assert scenario.script is not None and scenario.script.lines[0] == "Hi, I need to move my cleaning."
    (request,) = fake_llm.requests
    assert "NB-1234, Dana Reyes." in request.text and "loop_detection" in request.text
    _through_yaml(tmp_path, scenario, made.suite)


def test_an_llm_that_fails_leaves_the_scripted_replay_with_a_note(
    fake_llm: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_llm.add(Reply(status=500))
    call = _call(("user", "Hi."), ("agent", "Hello."))
    with _client(fake_llm, tmp_path) as client:
        made = derive_from_call(_stored(call, []), llm=client)
    assert not made.inferred
    assert made.scenario.goal.startswith(f"What the caller of call {CALL_ID} wanted")
    assert any("the LLM could not infer the caller" in note for note in made.notes)
