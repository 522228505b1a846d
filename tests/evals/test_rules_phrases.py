"""Required phrases, disclosures, forbidden phrases, regex and JSON schema on hand-built calls."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from convoscope.evals.rules.phrases import (
    Disclosure,
    DisclosureParams,
    ForbiddenPhrases,
    ForbiddenPhrasesParams,
    Regex,
    RegexParams,
    RequiredPhrases,
    RequiredPhrasesParams,
)
from convoscope.evals.rules.structured import JsonSchema, JsonSchemaParams

from .builders import make_call, run

NOTICE = "this call may be recorded for quality purposes"


def test_required_verbatim_near_verbatim_and_missing() -> None:
    call = make_call(
        ("agent", "Hello! This call may be recorded for quality purposes."),
        ("user", "ok"),
        ("agent", "Is there anything else I can help you with today?"),
    )
    params = RequiredPhrasesParams(phrases=[NOTICE, "anything else I can help with", "have a great day"])
    result = run(RequiredPhrases(params), call)
    assert result.value == pytest.approx(2 / 3)
    assert result.passed is False
    found = result.evidence["phrases"]
    assert isinstance(found, list)
    assert [f["found"] for f in found] == [True, True, False]  # type: ignore[index]
    assert found[0]["verbatim"] is True and found[0]["turn_index"] == 0  # type: ignore[index]
    assert found[1]["verbatim"] is False and found[1]["turn_index"] == 2  # type: ignore[index]
    assert found[1]["similarity"] == 1.0  # type: ignore[index]


def test_near_verbatim_threshold() -> None:
    call = make_call(("agent", "Calls like this one are being recorded for quality."))
    loose = RequiredPhrases(RequiredPhrasesParams(phrases=[NOTICE], min_similarity=0.6))
    strict = RequiredPhrases(RequiredPhrasesParams(phrases=[NOTICE], min_similarity=1.0))
    # content stems of the notice: call, record, quality, purpose -> 3 of 4 found
    assert run(loose, call).evidence["phrases"][0]["similarity"] == 0.75  # type: ignore[index]
    assert run(loose, call).passed is True
    assert run(strict, call).passed is False


def test_disclosure_late_fails() -> None:
    call = make_call(
        ("agent", "Hi, how can I help?"),
        ("user", "billing"),
        ("agent", "Sure."),
        ("user", "and?"),
        ("agent", "By the way this call may be recorded for quality purposes."),
    )
    result = run(Disclosure(DisclosureParams(phrases=[NOTICE])), call)
    assert result.value == 0.0 and result.passed is False
    assert result.evidence["phrases"][0]["late"] is True  # type: ignore[index]
    on_time = run(Disclosure(DisclosureParams(phrases=[NOTICE], by_agent_turn=3)), call)
    assert on_time.value == 1.0 and on_time.passed is True


def test_unconfigured_phrase_metrics_are_not_scorable() -> None:
    call = make_call(("agent", "hello"))
    for metric in (RequiredPhrases(), Disclosure(), ForbiddenPhrases(), Regex(), JsonSchema()):
        result = run(metric, call)
        assert result.value is None and "not_scorable" in result.evidence


def test_forbidden_counts_turns_and_ignores_user() -> None:
    call = make_call(
        ("user", "Are you a robot? I guarantee you are."),
        ("agent", "I guarantee a full refund. As an AI language model I can't..."),
        ("agent", "We Guarantee it!"),
    )
    params = ForbiddenPhrasesParams(phrases=["guarantee", "as an AI language model"])
    result = run(ForbiddenPhrases(params), call)
    assert result.value == 3 and result.passed is False
    assert [(h["turn_index"], h["phrase"]) for h in result.evidence["hits"]] == [  # type: ignore[union-attr, index]
        (1, "guarantee"),
        (1, "as an AI language model"),
        (2, "guarantee"),
    ]


def test_regex_must_not_and_must_match() -> None:
    call = make_call(("agent", "Your code is ABC-123 and ABC-999."), ("user", "ABC-000"))
    absent = run(Regex(RegexParams(pattern=r"abc-\d{3}")), call)
    assert absent.value == 2 and absent.passed is False
    required = run(Regex(RegexParams(pattern=r"abc-\d{3}", must_match=True, ignore_case=False)), call)
    assert required.value == 0 and required.passed is False
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        RegexParams(pattern="(unclosed")


SCHEMA = {
    "type": "object",
    "properties": {"day": {"enum": ["monday", "tuesday"]}, "party": {"type": "integer", "minimum": 1}},
    "required": ["day", "party"],
}


def test_json_schema_on_tool_arguments() -> None:
    call = make_call(
        ("agent", "x"),
        tool_calls=[
            {"name": "book", "arguments": {"day": "monday", "party": 2}},
            {"name": "book", "arguments": {"day": "friday", "party": 0}},
            {"name": "lookup", "arguments": {}},
        ],
    )
    result = run(JsonSchema(JsonSchemaParams.model_validate({"schema": SCHEMA, "tool_name": "book"})), call)
    assert result.value == 0.5 and result.passed is False
    invalid = result.evidence["invalid"]
    assert invalid == [
        {
            "where": "tool_calls[t1].arguments",
            "count": 2,
            "errors": [
                "$.day: 'friday' is not one of ['monday', 'tuesday']",
                "$.party: 0 is less than the minimum of 1",
            ],
        }
    ]
    assert result.params["schema"] == SCHEMA


def test_json_schema_on_vendor_analysis_and_agent_turns() -> None:
    call = make_call(
        ("agent", '{"day": "tuesday", "party": 3}'),
        ("agent", "not json"),
        vendor_analysis={"structured": {"day": "monday"}},
    )
    analysis = JsonSchemaParams.model_validate(
        {"schema": SCHEMA, "target": "vendor_analysis", "key": "structured"}
    )
    assert run(JsonSchema(analysis), call).value == 0.0
    turns = run(
        JsonSchema(JsonSchemaParams.model_validate({"schema": SCHEMA, "target": "agent_turns"})), call
    )
    assert turns.value == 0.5
    assert turns.evidence["invalid"][0]["where"] == "turns[1]"  # type: ignore[index]


def test_invalid_schema_is_a_params_error() -> None:
    with pytest.raises(ValidationError, match="not a valid JSON schema"):
        JsonSchemaParams.model_validate({"schema": {"type": "no-such-type"}})
