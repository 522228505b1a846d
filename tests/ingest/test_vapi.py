"""Vapi adapter: the end-of-call report and the call object, every mapped field, signatures, fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _mutate import mutated
from _vendor_json import json_values, only_payload_errors, vendor_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.signing import hmac_hex
from convoscope.ingest.sources import IgnoredEvent
from convoscope.ingest.vapi import ANSWER_EXPECTED, SOURCE, VapiSource
from convoscope.model import Direction, EndReason, Role


def load(name: str) -> dict[str, Any]:
    return vendor_payload("vapi", name)


def test_identify_report_and_call_object() -> None:
    report = SOURCE.identify(load("end_of_call_report"))
    assert (report.external_id, report.event_type, report.event_key) == (
        "call_5b1e",
        "end-of-call-report",
        "end-of-call-report",
    )
    fetched = SOURCE.identify(load("call_object"))
    assert fetched.external_id == "call_5b1e" and fetched.event_key.startswith("call:")


# Vapi's docs samples of its other server messages (fixtures/vapi/README.md names each one's source).
ACKNOWLEDGED = [
    ("docs_assistant_request", "assistant-request"),
    ("docs_tool_calls", "tool-calls"),
    ("docs_transfer_destination_request", "transfer-destination-request"),
    ("docs_knowledge_base_request", "knowledge-base-request"),
    ("docs_hang", "hang"),
    ("docs_transcript", "transcript"),
    ("docs_speech_update", "speech-update"),
    ("docs_conversation_update", "conversation-update"),
    ("docs_user_interrupted", "user-interrupted"),
    ("docs_language_change_detected", "language-change-detected"),
    ("docs_phone_call_control", "phone-call-control"),
    ("docs_model_output", "model-output"),
    ("docs_chat_created", "chat.created"),
]


@pytest.mark.parametrize(("name", "kind"), ACKNOWLEDGED)
def test_messages_that_are_no_call_record_are_acknowledged_not_kept(name: str, kind: str) -> None:
    with pytest.raises(IgnoredEvent) as caught:
        SOURCE.identify(load(name))
    assert caught.value.event_type == kind
    if kind in ANSWER_EXPECTED:
        assert "answer" in caught.value.reason and "your own server URL" in caught.value.reason
    else:
        assert "end-of-call-report" in caught.value.reason


def test_a_status_update_with_its_call_is_kept_and_the_report_wins_over_it() -> None:
    status = load("docs_status_update")
    event = SOURCE.identify(status)
    assert (event.external_id, event.event_type) == ("73a6da0f-c455-4bb6-bf4a-5f0634871430", "status-update")
    assert event.event_key.startswith("status-update:"), "keyed by body: each status is its own event"
    assert SOURCE.identify(load("docs_status_update") | {"x": 1}).event_key != event.event_key
    alone = SOURCE.assemble([status], received_at=NOW)
    assert alone.call.metadata["vapi"]["status"] == "ended"
    assert any("startedAt" in warning for warning in alone.warnings), "no start: the receive time"
    # A status update that arrives after the report (and one that carries a live artifact) changes none of
    # the report's facts; its status and end reason fill what the report leaves out.
    report = load("end_of_call_report")
    late = {
        "message": {
            "type": "status-update",
            "status": "ended",
            "endedReason": "assistant-ended-call",
            "call": {"id": "call_5b1e"},
            "artifact": {"messages": []},
            "messages": [],
        }
    }
    merged = SOURCE.assemble([report, late])
    only = SOURCE.assemble([report])
    assert merged.call.turns == only.call.turns and merged.call.end_reason == only.call.end_reason
    assert merged.call.started_at == only.call.started_at
    bare = {"message": {"type": "end-of-call-report", "call": {"id": "c9"}}}
    ended = {
        "message": {
            "type": "status-update",
            "status": "ended",
            "endedReason": "voicemail",
            "call": {"id": "c9"},
        }
    }
    assert SOURCE.assemble([bare, ended], received_at=NOW).call.end_reason is EndReason.VOICEMAIL


def test_a_status_update_without_its_call_is_acknowledged() -> None:
    with pytest.raises(IgnoredEvent):
        SOURCE.identify({"message": {"type": "status-update", "status": "in-progress"}})


def test_report_maps_every_field() -> None:
    assembled = SOURCE.assemble([load("end_of_call_report")])
    call = assembled.call
    assert assembled.warnings == ()
    assert (call.source, call.external_id, call.agent_id) == ("vapi", "call_5b1e", "asst_9d")
    assert call.direction is Direction.INBOUND
    assert call.started_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert call.ended_at == call.started_at + timedelta(seconds=20)
    assert call.duration_s == 20.0
    assert (call.end_reason, call.end_reason_raw) == (EndReason.USER_HANGUP, "customer-ended-call")
    assert [(t.role, t.start_s, t.end_s) for t in call.turns] == [
        (Role.SYSTEM, 0.0, 0.0),
        (Role.AGENT, 0.8, pytest.approx(2.6)),
        (Role.USER, 3.5, pytest.approx(5.5)),
        (Role.AGENT, 7.2, pytest.approx(9.2)),
        (Role.USER, 10.0, pytest.approx(11.0)),
        (Role.AGENT, 11.8, pytest.approx(12.6)),
    ]
    assert call.turns[3].text == "You're booked for two at seven."
    # turnLatencies pair with the agent turns that answer a user turn, milliseconds → seconds.
    answer = call.turns[3]
    assert (answer.e2e_s, answer.llm_ttft_s, answer.tts_ttfb_s, answer.stt_s, answer.eou_s) == pytest.approx(
        (1.05, 0.42, 0.18, 0.15, 0.30)
    )
    assert call.turns[5].e2e_s == pytest.approx(0.97) and call.turns[1].e2e_s is None
    assert call.vendor_latency["turn"].values_s == pytest.approx([1.05, 0.97])
    assert set(call.vendor_latency) == {"turn", "model", "voice", "transcriber", "endpointing"}
    (tool,) = call.tool_calls
    assert (tool.id, tool.name, tool.arguments, tool.result) == (
        "call_tool_1",
        "book_table",
        {"party": 2},
        {"confirmed": True},
    )
    assert (tool.turn_index, tool.start_s, tool.end_s) == (2, 6.0, 6.9)
    by_vantage = {r.vantage: r for r in call.recordings}
    assert set(by_vantage) == {"vapi:stereo", "vapi:mono", "vapi:assistant", "vapi:customer"}
    assert by_vantage["vapi:stereo"].channels == 2 and by_vantage["vapi:stereo"].channel_map == {}
    assert by_vantage["vapi:assistant"].channel_map == {0: Role.AGENT}
    assert by_vantage["vapi:customer"].channel_map == {0: Role.USER}
    assert [(c.product, c.currency, c.quantity, c.unit) for c in call.cost] == [
        ("transport", "USD", 0.3333, "minute"),
        ("transcriber", "USD", 0.3333, "minute"),
        ("model", "USD", 1280.0, "token"),
        ("voice", "USD", 140.0, "character"),
        ("vapi:normal", "USD", 0.3333, "minute"),
        ("analysis:summary", "USD", 340.0, "token"),
    ]
    assert call.cost_total() == pytest.approx(0.0662)
    assert (call.usage.llm_prompt_tokens, call.usage.llm_completion_tokens) == (1200, 80)
    assert call.usage.audio_s == 20.0
    assert call.usage.extra == {"numUserInterrupted": 1.0, "numAssistantInterrupted": 0.0}
    assert call.vendor_analysis["summary"] == "The caller booked a table for two."
    assert call.vendor_analysis["successEvaluation"] == "true"
    assert call.vendor_analysis["structuredOutputs"] == {"so_1": {"name": "booking", "result": {"party": 2}}}
    meta = call.metadata["vapi"]
    assert isinstance(meta, dict)
    assert meta["orgId"] == "org_77" and meta["phoneCallProviderId"] == "CAabcdef0123456789"
    assert meta["customer"] == {"number": "+14155550123"}
    assert meta["logUrl"].endswith("log.jsonl.gz") and meta["variableValues"] == {"customer_name": "Lin"}
    assert meta["latency_averages_ms"]["turnLatencyAverage"] == 1010


def test_call_object_alone() -> None:
    call = SOURCE.assemble([load("call_object")]).call
    assert [t.role for t in call.turns] == [Role.AGENT, Role.USER]
    assert [(c.product, c.amount) for c in call.cost] == [
        ("transport", 0.0043),
        ("stt", 0.0034),
        ("llm", 0.0071),
        ("tts", 0.0336),
        ("vapi", 0.0167),
    ]
    assert (call.usage.llm_prompt_tokens, call.usage.tts_characters) == (1200, 140)
    assert {r.vantage for r in call.recordings} == {"vapi:stereo", "vapi:mono"}


def test_report_and_call_object_merge_to_the_same_call() -> None:
    merged = SOURCE.assemble([load("end_of_call_report"), load("call_object")]).call
    alone = SOURCE.assemble([load("end_of_call_report")]).call
    assert merged.started_at == alone.started_at and merged.turns == alone.turns
    assert merged.metadata["vapi"]["status"] == "ended"  # type: ignore[index]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("assistant-ended-call", EndReason.AGENT_HANGUP),
        ("assistant-said-end-call-phrase", EndReason.AGENT_HANGUP),
        ("assistant-forwarded-call", EndReason.TRANSFER),
        ("voicemail", EndReason.VOICEMAIL),
        ("silence-timed-out", EndReason.SILENCE_TIMEOUT),
        ("exceeded-max-duration", EndReason.MAX_DURATION),
        ("customer-did-not-answer", EndReason.NO_ANSWER),
        ("customer-busy", EndReason.BUSY),
        ("twilio-reported-customer-misdialed", EndReason.DIAL_FAILED),
        ("pipeline-error-openai-llm-failed", EndReason.ERROR),
        ("call.start.error-get-assistant", EndReason.ERROR),
        ("manually-canceled", EndReason.OTHER),
        ("something-vapi-adds-later", EndReason.OTHER),
    ],
)
def test_ended_reasons(reason: str, expected: EndReason) -> None:
    report = load("end_of_call_report")
    report["message"]["endedReason"] = reason
    call = SOURCE.assemble([report]).call
    assert (call.end_reason, call.end_reason_raw) == (expected, reason)


@pytest.mark.parametrize(
    ("kind", "direction"),
    [("outboundPhoneCall", Direction.OUTBOUND), ("webCall", Direction.WEB), ("newKind", Direction.UNKNOWN)],
)
def test_directions(kind: str, direction: Direction) -> None:
    report = load("end_of_call_report")
    report["message"]["call"]["type"] = kind
    assert SOURCE.assemble([report]).call.direction is direction


def test_recoverable_oddities_become_warnings() -> None:
    report = load("end_of_call_report")
    messages = report["message"]["artifact"]["messages"]
    messages[2]["duration"] = 7.0  # disagrees with endTime - time (2 s)
    messages.append(
        {
            "role": "tool_call_result",
            "toolCallId": "ghost",
            "name": "x",
            "result": "?",
            "time": 1,
            "secondsFromStart": 13,
        }
    )
    messages.append({"role": "emoji", "message": ":)", "time": 1, "secondsFromStart": 14})
    report["message"]["artifact"]["performanceMetrics"]["turnLatencies"].append({"turnLatency": 5})
    assembled = SOURCE.assemble([report])
    text = " ".join(assembled.warnings)
    assert "duration" in text and "never invoked" in text and "unknown message role" in text
    assert "3 entries for 2 agent answers" in text
    assert assembled.call.turns[2].end_s == pytest.approx(5.5), "the epoch times win"


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ("text", "body"),
        ({"message": {"type": 7, "call": {"id": "x"}}}, "message.type"),
        ({"message": {"type": "end-of-call-report"}}, "message.call"),
        ({"message": {"type": "end-of-call-report", "call": {"id": "x"}}}, "call.startedAt"),
        ({"id": "x"}, "neither a Vapi server message"),
        ({"id": "x", "startedAt": "yesterday"}, "call.startedAt"),
        (
            {"id": "x", "startedAt": "2026-01-05T10:00:00Z", "messages": [{"message": "hi"}]},
            "messages[0].role",
        ),
    ],
)
def test_bad_payloads_name_the_field(payload: Any, where: str) -> None:
    with pytest.raises(PayloadError) as caught:
        SOURCE.identify(payload)
        SOURCE.assemble([payload])
    assert where in str(caught.value)


NOW = datetime(2026, 1, 5, 10, 5, tzinfo=UTC)


def test_plain_secret_header() -> None:
    SOURCE.verify({"x-vapi-secret": "s3cret"}, b"{}", "s3cret", now=NOW)
    with pytest.raises(SignatureError, match="x-vapi-secret"):
        SOURCE.verify({"x-vapi-secret": "guess"}, b"{}", "s3cret", now=NOW)
    with pytest.raises(SignatureError, match="missing"):
        SOURCE.verify({}, b"{}", "s3cret", now=NOW)


def test_hmac_credential() -> None:
    body = b'{"message":{}}'
    stamp = str(int(NOW.timestamp()))
    good = hmac_hex("k", stamp.encode() + b"." + body)
    SOURCE.verify({"x-signature": good, "x-timestamp": stamp}, body, "k", now=NOW)
    SOURCE.verify({"x-signature": f"sha256={good}", "x-timestamp": stamp}, body, "k", now=NOW)
    millis = str(int(NOW.timestamp() * 1000))
    SOURCE.verify(
        {"x-signature": hmac_hex("k", millis.encode() + b"." + body), "x-timestamp": millis},
        body,
        "k",
        now=NOW,
    )
    SOURCE.verify({"x-signature": hmac_hex("k", body)}, body, "k", now=NOW)  # body-only credential
    with pytest.raises(SignatureError, match="does not match"):
        SOURCE.verify({"x-signature": good, "x-timestamp": stamp}, body + b"x", "k", now=NOW)
    with pytest.raises(SignatureError, match="replay window"):
        SOURCE.verify({"x-signature": good, "x-timestamp": stamp}, body, "k", now=NOW + timedelta(minutes=6))
    with pytest.raises(SignatureError, match="not a number"):
        SOURCE.verify({"x-signature": good, "x-timestamp": "noon"}, body, "k", now=NOW)
    custom = VapiSource(signature_header="x-vapi-signature", timestamp_header="x-vapi-timestamp")
    custom.verify({"x-vapi-signature": good, "x-vapi-timestamp": stamp}, body, "k", now=NOW)


def _near_valid() -> st.SearchStrategy[Any]:
    return st.one_of(mutated(load("end_of_call_report")), mutated(load("call_object")))


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, _near_valid()))
def test_fuzz_only_payload_errors(payload: Any) -> None:
    only_payload_errors(SOURCE, payload)
