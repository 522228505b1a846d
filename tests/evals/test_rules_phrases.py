"""Required phrases, disclosures, forbidden phrases, regex and JSON schema on hand-built calls."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from convoscope.evals.rules.phrases import (
    Disclosure,
    DisclosureKind,
    DisclosureParams,
    DisclosureRequirement,
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


def _kind(kind: str, *turns: tuple[str, str], **params: object) -> bool | None:
    metric = Disclosure(DisclosureParams.model_validate({"requirements": [kind], **params}))
    return run(metric, make_call(*turns)).passed


def test_ai_disclosure_in_ordinary_phrasings_and_languages() -> None:
    said = [
        "Good evening, you're speaking with Nova, an AI receptionist for the practice.",
        "Thanks for calling. Heads up: I'm a bot, but I can book most things.",
        "This line is answered by an automated assistant.",
        "I'm the library's artificial intelligence helper.",
        "I am not a human, but I can still sort out your renewal.",
        "Buenas tardes, está hablando con un agente virtual del hotel.",
        "Je suis l'assistante vocale automatisée de la mairie.",
        "Hallo, Sie sprechen mit einem virtuellen Assistenten der Stadtwerke.",
        "Bom dia, sou um robô de atendimento da loja.",
        "Salve, sono un'intelligenza artificiale del servizio clienti.",
    ]
    for text in said:
        assert _kind("ai_disclosure", ("agent", text)) is True, text


def test_negated_asked_or_caller_said_ai_is_not_a_disclosure() -> None:
    not_said = [
        [("agent", "I'm not a robot, I'm Dana from the front desk.")],
        [("agent", "No soy un asistente virtual, soy Lucía.")],
        [("agent", "Ich bin kein Bot, sondern Ihr Berater.")],
        [
            ("agent", "Hello, Mapleton Dental."),
            ("user", "Are you a bot?"),
            ("agent", "How can I help today?"),
        ],
        [("user", "I know I'm talking to an AI assistant."), ("agent", "What do you need?")],
        [("agent", "Our website has a virtual assistant if you prefer to chat.")],
        [("agent", "I'm sorry, the automated system is down; I'm taking calls by hand.")],
    ]
    for turns in not_said:
        assert _kind("ai_disclosure", *turns) is False, turns


def test_recording_notice_kind_and_its_evidence() -> None:
    for text in (
        "Welcome. Conversations on this line are monitored for quality.",
        "We are recording this call so we can train new staff.",
        "Le informamos de que esta llamada está siendo grabada.",
        "Questa telefonata viene registrata.",
    ):
        assert _kind("recording_notice", ("agent", text)) is True, text
    for text in (
        "We never record calls to this helpline.",
        "I can send you a recording of the webinar.",
        "I'll record your new address now.",
    ):
        assert _kind("recording_notice", ("agent", text)) is False, text
    call = make_call(
        ("agent", "Harbour Vets."), ("user", "hi"), ("agent", "Thanks! Calls here are recorded for training.")
    )
    result = run(
        Disclosure(DisclosureParams(requirements=[DisclosureRequirement(kind="recording_notice")])), call
    )
    assert result.passed is True and result.version == "4" and result.params["max_gap"] == 6
    found = result.evidence["requirements"][0]  # type: ignore[index]
    assert found["turn_index"] == 2 and found["start_s"] == 5.0 and found["via"] == "pattern"  # type: ignore[index]
    assert found["sentence"] == "Calls here are recorded for training." and found["late"] is False  # type: ignore[index]
    late = run(
        Disclosure(
            DisclosureParams.model_validate({"requirements": ["recording_notice"], "by_agent_turn": 1})
        ),
        call,
    )
    assert late.passed is False and late.evidence["requirements"][0]["late"] is True  # type: ignore[index]


def test_requirement_extra_phrases_plain_phrases_and_bare_strings() -> None:
    extra = DisclosureRequirement(kind=DisclosureKind.AI_DISCLOSURE, phrases=["powered by Acme Voice"])
    call = make_call(("agent", "Hello, this helpline is powered by Acme Voice technology."))
    result = run(Disclosure(DisclosureParams(requirements=[extra])), call)
    assert result.passed is True and result.evidence["requirements"][0]["via"] == "phrase"  # type: ignore[index]
    denied = make_call(("agent", "This helpline is not powered by Acme Voice."))
    assert run(Disclosure(DisclosureParams(requirements=[extra])), denied).passed is False
    # a bare string that is not a kind is one phrase; legacy phrases keep their own evidence
    mixed = DisclosureParams.model_validate(
        {"requirements": ["ai_disclosure", "press one for billing"], "phrases": [NOTICE]}
    )
    assert [r.kind for r in mixed.requirements] == [DisclosureKind.AI_DISCLOSURE, DisclosureKind.PHRASE]
    call = make_call(("agent", "I'm an AI agent. This call may be recorded for quality purposes."))
    result = run(Disclosure(mixed), call)
    assert result.value == pytest.approx(2 / 3) and result.passed is False
    assert result.evidence["phrases"][0]["found"] is True  # type: ignore[index]
    with pytest.raises(ValidationError):
        DisclosureRequirement(kind=DisclosureKind.PHRASE)


def test_phrase_look_alikes_that_name_something_else() -> None:
    from convoscope.evals.rules._disclosures import affirmed_phrase

    for phrase, sentence in [
        ("I am a virtual assistant", "You can also chat with our website's virtual assistant any time."),
        ("this call may be recorded", "I can see the notes recorded from your earlier call."),
        ("this call may be recorded", "You can also record a video of the fault and send it to us."),
    ]:
        assert affirmed_phrase(phrase, sentence, min_similarity=0.5) is None, sentence
    assert affirmed_phrase("this call may be recorded", "This call may be recorded.", min_similarity=0.8)
