"""Custom judge metrics written in YAML, from the file to a stored-shape result."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from convoscope.errors import InputError
from convoscope.evals import registry
from convoscope.evals.base import AgentProfile, EvalContext, MetricKind
from convoscope.evals.custom import (
    CustomMetricSpec,
    define_custom_metric,
    load_custom_metrics,
    project_custom_metrics,
)
from convoscope.evals.llm import JudgeClient
from convoscope.evals.runner import evaluate_call, resolve_metrics
from convoscope.testing import make_call
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

from .judge_support import fake_llm, judge, system_of, user_of

__all__ = ["fake_llm", "judge"]


def unique(stem: str) -> str:
    """Metric names are process-wide, so each test defines its own."""
    return f"{stem}_{uuid.uuid4().hex[:8]}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metrics.yaml"
    path.write_text(text)
    return path


def test_a_binary_yaml_metric_runs_end_to_end(
    fake_llm: FakeOpenAIServer, judge: JudgeClient, tmp_path: Path
) -> None:
    name = unique("confirms_booking")
    path = write(
        tmp_path,
        f"""
metrics:
  - name: {name}
    description: The agent reads the booking back.
    rubric: |
      The agent reads back the appointment's day and time, and the caller confirms them.
    output: binary
    context: [agent_instructions]
""",
    )
    (cls,) = load_custom_metrics(path)
    assert registry.get(name) is cls and cls.kind is MetricKind.JUDGE
    assert cls.version.startswith("1.") and len(cls.version) == 10
    fake_llm.add(
        json_reply({"passed": True, "reasoning": "read back", "quotes": [{"turn_index": 2, "quote": "Sure"}]})
    )
    profile = AgentProfile(
        agent_id="bot", system_prompt="Always read bookings back.", metrics={name: {"k": 1}}
    )
    metrics = resolve_metrics(profile, judge_available=True)
    (result,) = evaluate_call(make_call(id="c1"), metrics, EvalContext(profile=profile, judge=judge))
    assert (result.metric, result.value, result.passed, result.error) == (name, True, True, None)
    assert result.version == cls.version
    assert result.evidence["quotes"] == [{"turn_index": 2, "quote": "Sure"}]
    (request,) = fake_llm.requests
    assert "The agent reads back the appointment's day and time" in system_of(request)
    assert "Judge the whole conversation." in system_of(request)
    assert "<agent_instructions>\nAlways read bookings back.\n</agent_instructions>" in user_of(request)
    assert "[1] user (2.8s): I'd like to check my order." in user_of(request)
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["passed", "reasoning", "quotes"]


def test_score_and_enum_outputs_map_to_value_and_pass(fake_llm: FakeOpenAIServer, judge: JudgeClient) -> None:
    score = define_custom_metric(
        CustomMetricSpec(
            name=unique("empathy"), rubric="Rate the agent's empathy.", output="score", min_score=4
        )
    )
    enum = define_custom_metric(
        CustomMetricSpec(
            name=unique("call_reason"),
            rubric="Why did the caller call?",
            output="enum",
            values=["billing", "booking", "other"],
            pass_values=["booking"],
            turn_level=True,
        )
    )
    fake_llm.add(json_reply({"score": 3, "reasoning": "curt", "quotes": []}), contains="empathy")
    fake_llm.add(json_reply({"label": "billing", "reasoning": "asked about a bill", "quotes": []}))
    ctx = EvalContext(judge=judge)
    scored, labelled = evaluate_call(make_call(id="c2"), [score(), enum()], ctx)
    assert (scored.value, scored.passed) == (3, False)
    assert (labelled.value, labelled.passed) == ("billing", False)
    enum_request = fake_llm.requests[1]
    sent = enum_request.body["response_format"]["json_schema"]["schema"]["properties"]["label"]
    assert sent == {"type": "string", "enum": ["billing", "booking", "other"]}
    assert "Judge turn by turn" in system_of(enum_request)


def test_a_rubric_without_an_output_type_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: no_output\nrubric: Is the agent polite?\n")
    with pytest.raises(InputError) as caught:
        load_custom_metrics(path)
    assert str(caught.value) == (
        f"{path} (metric 1): custom metric 'no_output' has a rubric but no output type; "
        "set output to binary, score or enum"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "name: e1\nrubric: r\noutput: enum\n",
            "an enum output needs `values` with at least two distinct labels",
        ),
        ("name: e2\nrubric: r\noutput: enum\nvalues: [a, b]\npass_values: [c]\n", "pass_values ['c']"),
        ("name: e3\nrubric: r\noutput: binary\nmin_score: 3\n", "`min_score` belongs to a score output"),
        ("name: e4\nrubric: r\noutput: stars\n", "output: Input should be 'binary', 'score' or 'enum'"),
        ("name: Bad Name\nrubric: r\noutput: binary\n", "name: String should match pattern"),
        (
            "- name: twice\n  rubric: r\n  output: binary\n- name: twice\n  rubric: s\n  output: binary\n",
            "twice",
        ),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_definitions_name_the_file_and_the_problem(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = write(tmp_path, yaml_text)
    with pytest.raises(InputError, match=str(path)) as caught:
        load_custom_metrics(path)
    assert message in str(caught.value)


def test_names_cannot_shadow_builtins_and_an_edit_replaces_the_definition() -> None:
    with pytest.raises(InputError, match="would shadow the built-in metric"):
        define_custom_metric(CustomMetricSpec(name="csat", rubric="r", output="binary"))
    name = unique("stable")
    first = define_custom_metric(CustomMetricSpec(name=name, rubric="Is it polite?", output="binary"))
    assert define_custom_metric(CustomMetricSpec(name=name, rubric="Is it polite?", output="binary")) is first
    edited = define_custom_metric(CustomMetricSpec(name=name, rubric="Is it rude?", output="binary"))
    assert edited is not first and registry.get(name) is edited
    assert edited.instructions == "Is it rude?" and edited.version != first.version
    assert edited.version.split(".")[0] == first.version.split(".")[0] == "1"
    with pytest.raises(ValueError, match="is not registered as"):
        registry.replace(registry.get("csat"), edited)


def test_definitions_from_project_settings_and_unscorable_context() -> None:
    name = unique("kb_grounded")
    (cls,) = load_custom_metrics({name: {"name": name, "rubric": "Grounded?", "output": "binary",
                                         "context": ["knowledge_base"]}})  # fmt: skip
    result = cls().evaluate(make_call(id="c3"), EvalContext())
    assert result.value is None and result.error is None
    assert result.evidence == {
        "not_scorable": "the rubric needs the agent's knowledge base, and the profile has none"
    }


def test_settings_definitions_one_bad_one_shadowing_and_one_edited() -> None:
    good, bad = unique("good"), unique("bad")
    settings = {
        "custom_metrics": {
            good: {"rubric": "Is it polite?", "output": "binary"},
            bad: {"rubric": "No output type."},
            "csat": {"rubric": "Would shadow a built-in.", "output": "binary"},
        }
    }
    found = project_custom_metrics(settings)
    assert set(found) == {good, bad}, "a refused definition never stands in for the built-in csat"
    assert registry.get(good) is found[good]
    assert isinstance(found[bad], str) and "has a rubric but no output type" in found[bad]
    assert registry.get("csat").__module__.startswith("convoscope.evals.judges")
    edited = project_custom_metrics({"custom_metrics": {good: {"rubric": "Is it rude?", "output": "binary"}}})
    assert edited[good] is not found[good] and registry.get(good) is edited[good]
    with pytest.raises(InputError, match="expected a mapping"):
        project_custom_metrics({"custom_metrics": ["not", "a", "mapping"]})
