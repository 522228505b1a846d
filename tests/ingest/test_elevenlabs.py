"""ElevenLabs adapter: every mapped field of the three post-call events, their merge, the signature."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from _vendor_json import json_values, only_payload_errors, vendor_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.elevenlabs import SOURCE
from convoscope.model import Direction, EndReason, Role


def load(name: str) -> dict[str, Any]:
    return vendor_payload("elevenlabs", name)


def test_identify_each_event_type() -> None:
    for name in ("post_call_transcription", "post_call_audio", "call_initiation_failure"):
        event = SOURCE.identify(load(name))
        assert event.event_type == name
        assert event.external_id == load(name)["data"]["conversation_id"]
        assert event.event_key.startswith(f"{name}:")
    replay = load("post_call_transcription")
    assert SOURCE.identify(replay).event_key == SOURCE.identify(load("post_call_transcription")).event_key


def test_transcription_maps_every_field() -> None:
    assembled = SOURCE.assemble([load("post_call_transcription")])
    call = assembled.call
    assert call.source == "elevenlabs"
    assert call.external_id == "conv_01jm8abc"
    assert call.agent_id == "agent_7x9"
    assert call.agent_version == "v12"
    assert call.direction is Direction.INBOUND
    assert call.started_at == datetime.fromtimestamp(1739537297, tz=UTC)
    assert call.duration_s == 22
    assert call.ended_at == datetime.fromtimestamp(1739537297 + 22, tz=UTC)
    assert call.end_reason is EndReason.USER_HANGUP
    assert call.end_reason_raw == "Call ended by remote party"

    assert [t.role for t in call.turns] == [Role.AGENT, Role.USER, Role.AGENT, Role.AGENT, Role.USER]
    assert [t.start_s for t in call.turns] == [0, 4, 7, 9, 11]
    # ElevenLabs gives starts only: a turn ends where the next starts, the last at the call's end.
    assert [t.end_s for t in call.turns] == [4, 7, 9, 11, 22]
    assert call.turns[1].text == "I need to move my appointment to Friday."
    assert call.turns[2].text == ""
    assert call.turns[3].interrupted and not call.turns[1].interrupted
    assert call.turns[2].llm_ttft_s == pytest.approx(0.42)
    assert call.turns[3].llm_ttft_s == pytest.approx(0.30)
    assert call.turns[3].tts_ttfb_s == pytest.approx(0.12)
    assert call.turns[3].stt_s == pytest.approx(0.05)

    ttfb = call.vendor_latency["convai_llm_service_ttfb"]
    assert ttfb.values_s == [pytest.approx(0.42), pytest.approx(0.30)]
    assert ttfb.count == 2 and ttfb.min_s == pytest.approx(0.30) and ttfb.max_s == pytest.approx(0.42)
    assert call.vendor_latency["convai_llm_service_ttf_sentence"].values_s == [pytest.approx(0.61)]

    tools = {t.id: t for t in call.tool_calls}
    slots = tools["req_1"]
    assert slots.name == "find_slots" and slots.turn_index == 2
    assert slots.arguments == {"day": "friday"}
    assert slots.result == {"slots": ["09:00", "14:30"]}
    assert slots.success is True
    assert slots.start_s == 7 and slots.end_s == pytest.approx(7.8)
    orphan = tools["req_orphan"]
    assert orphan.name == "audit_log" and orphan.result == "ok" and orphan.success is False
    assert orphan.arguments is None
    assert any("req_orphan" in w and "no matching tool call" in w for w in assembled.warnings)

    assert [(c.product, c.amount, c.currency) for c in call.cost] == [
        ("conversation", 296, "credits"),
        ("conversation", pytest.approx(0.0421), "USD"),
        ("llm", pytest.approx(0.0032), "USD"),
    ]
    assert call.usage.llm_prompt_tokens == 900 + 100 + 1000
    assert call.usage.llm_completion_tokens == 40 + 20
    assert call.usage.audio_s == 22

    analysis = call.vendor_analysis
    assert analysis["call_successful"] == "success"
    assert analysis["transcript_summary"].startswith("The caller moved")
    assert analysis["call_summary_title"] == "Reschedule"
    assert analysis["evaluation_criteria_results"]["booked"]["result"] == "success"  # type: ignore[index]
    assert analysis["data_collection_results"]["day"]["value"] == "friday"  # type: ignore[index]

    extra = call.metadata["elevenlabs"]
    assert isinstance(extra, dict)
    assert set(extra) == {
        "user_id",
        "branch_id",
        "status",
        "has_audio",
        "has_user_audio",
        "has_response_audio",
        "accepted_time_unix_secs",
        "main_language",
        "phone_call",
        "charging",
        "feedback",
        "timezone",
        "conversation_initiation_client_data",
    }
    assert extra["accepted_time_unix_secs"] == 1739537296 and extra["timezone"] == "Europe/Paris"
    assert extra["feedback"] == {"overall_score": None, "likes": 0, "dislikes": 0}
    assert extra["user_id"] == "user-42" and extra["branch_id"] == "main"
    assert extra["has_user_audio"] is True and extra["main_language"] == "en"
    assert extra["phone_call"]["call_sid"] == "CA123"  # type: ignore[index,call-overload]
    assert extra["charging"]["call_charge"] == 284  # type: ignore[index,call-overload]
    assert extra["conversation_initiation_client_data"]["dynamic_variables"] == {"user_name": "angelo"}  # type: ignore[index,call-overload]
    assert call.recordings == [] and assembled.attachments == {}


def test_flat_turn_metrics_of_the_docs_sample() -> None:
    payload = load("post_call_transcription")
    payload["data"]["transcript"][2]["conversation_turn_metrics"] = {
        "convai_llm_service_ttfb": {"elapsed_time": 0.37}
    }
    call = SOURCE.assemble([payload]).call
    assert call.turns[2].llm_ttft_s == pytest.approx(0.37)


def test_audio_becomes_an_attachment_of_the_same_conversation() -> None:
    audio = load("post_call_audio")
    assembled = SOURCE.assemble([load("post_call_transcription"), audio])
    [recording] = assembled.call.recordings
    name = "elevenlabs-conv_01jm8abc.mp3"
    assert recording.source_url == f"attachment:{name}"
    assert recording.format == "mp3"
    assert recording.channel_map == {}  # ElevenLabs documents no channel layout
    assert assembled.attachments[name] == base64.b64decode(audio["data"]["full_audio"])
    assert len(assembled.call.turns) == 5  # the transcript survives the later audio event
    # Audio first, transcription later: the same call.
    reverse = SOURCE.assemble([audio, load("post_call_transcription")])
    assert reverse.call == assembled.call


def test_audio_alone_is_a_provisional_call_with_a_warning() -> None:
    assembled = SOURCE.assemble([load("post_call_audio")])
    assert assembled.call.turns == []
    assert assembled.call.started_at == datetime.fromtimestamp(1739537330, tz=UTC)
    assert assembled.call.end_reason is EndReason.UNKNOWN
    assert any("before the transcription" in w for w in assembled.warnings)


def test_later_transcription_wins() -> None:
    first = load("post_call_transcription")
    second = copy.deepcopy(first)
    second["data"]["analysis"]["transcript_summary"] = "Corrected summary."
    call = SOURCE.assemble([first, second]).call
    assert call.vendor_analysis["transcript_summary"] == "Corrected summary."


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("busy", EndReason.BUSY), ("no-answer", EndReason.NO_ANSWER), ("unknown", EndReason.OTHER)],
)
def test_initiation_failure_is_a_call_with_its_reason_and_no_turns(reason: str, expected: EndReason) -> None:
    payload = load("call_initiation_failure")
    payload["data"]["failure_reason"] = reason
    call = SOURCE.assemble([payload]).call
    assert call.external_id == "conv_failed_1"
    assert call.agent_id == "agent_7x9"
    assert call.turns == []
    assert call.end_reason is expected and call.end_reason_raw == reason
    assert call.started_at == datetime.fromtimestamp(1739540000, tz=UTC)
    assert call.duration_s == 0
    failure = call.metadata["elevenlabs"]["failure"]  # type: ignore[index,call-overload]
    assert failure["metadata"]["body"]["CallSid"] == "CA999"


@pytest.mark.parametrize(
    ("termination", "status", "expected"),
    [
        ("end_call tool was called.", "done", EndReason.AGENT_HANGUP),
        ("Maximum duration exceeded", "done", EndReason.MAX_DURATION),
        ("Client disconnected: 1000", "done", EndReason.USER_HANGUP),
        ("something new from the vendor", "done", EndReason.OTHER),
        ("", "failed", EndReason.ERROR),
        ("", "done", EndReason.UNKNOWN),
    ],
)
def test_termination_reason(termination: str, status: str, expected: EndReason) -> None:
    payload = load("post_call_transcription")
    payload["data"]["metadata"]["termination_reason"] = termination
    payload["data"]["status"] = status
    call = SOURCE.assemble([payload]).call
    assert call.end_reason is expected
    if termination:
        assert call.end_reason_raw == termination


def test_out_of_order_times_are_kept_with_a_warning() -> None:
    payload = load("post_call_transcription")
    payload["data"]["transcript"][3]["time_in_call_secs"] = 5  # before the turn at 7 s
    assembled = SOURCE.assemble([payload])
    assert assembled.call.turns[2].end_s == 7  # no negative span
    assert any("data.transcript[3]" in w for w in assembled.warnings)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p.pop("type"), "type"),
        (lambda p: p.update(type="post_call_unknown"), "type"),
        (lambda p: p["data"].pop("conversation_id"), "data.conversation_id"),
        (lambda p: p["data"]["metadata"].update(start_time_unix_secs="noon"), "start_time_unix_secs"),
        (
            lambda p: p["data"]["transcript"][1].update(time_in_call_secs="four"),
            "transcript[1].time_in_call_secs",
        ),
        (lambda p: p["data"]["transcript"][0].update(role=None), "transcript[0].role"),
    ],
)
def test_bad_payloads_name_the_field(mutate: Any, where: str) -> None:
    payload = load("post_call_transcription")
    mutate(payload)
    with pytest.raises(PayloadError, match=where.replace("[", r"\[").replace("]", r"\]")):
        SOURCE.identify(payload)
        SOURCE.assemble([payload])


def test_bad_base64_audio_is_refused_at_identify() -> None:
    payload = load("post_call_audio")
    payload["data"]["full_audio"] = "not base64!!"
    with pytest.raises(PayloadError, match="data.full_audio"):
        SOURCE.identify(payload)


SECRET = "wsec_test_secret"
BODY = b'{"type":"post_call_transcription","data":{}}'
NOW = datetime(2025, 2, 14, 12, 0, tzinfo=UTC)


def signed(timestamp: int, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"elevenlabs-signature": f"t={timestamp},v0={digest}"}


def test_signature_accepted() -> None:
    SOURCE.verify(signed(int(NOW.timestamp()) - 60), BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        ({"elevenlabs-signature": "v0=abc"}, "expected t="),
        ({"elevenlabs-signature": "t=soon,v0=abc"}, "not a number"),
        ({"elevenlabs-signature": "t1800000000"}, "malformed"),
        (signed(int(NOW.timestamp()), secret="wrong"), "does not match"),
        (signed(int(NOW.timestamp()), body=b"{}"), "does not match"),
        (signed(int(NOW.timestamp()) - 31 * 60), "outside"),
        (signed(int(NOW.timestamp()) + 31 * 60), "outside"),
        ({"elevenlabs-signature": f"t={int(NOW.timestamp())},v0=ü"}, "does not match"),
    ],
)
def test_signature_rejected(headers: dict[str, str], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        SOURCE.verify(headers, BODY, SECRET, now=NOW)


def test_tolerance_is_a_parameter() -> None:
    from convoscope.ingest.elevenlabs import ElevenLabsSource

    strict = ElevenLabsSource(tolerance_s=10)
    with pytest.raises(SignatureError, match="outside"):
        strict.verify(signed(int(NOW.timestamp()) - 60), BODY, SECRET, now=NOW)


def _near_valid() -> st.SearchStrategy[Any]:
    """Real events with one field replaced by arbitrary JSON, so fuzzing reaches past the envelope."""
    paths = [
        ("data",),
        ("data", "transcript"),
        ("data", "metadata"),
        ("data", "analysis"),
        ("data", "metadata", "cost"),
        ("data", "metadata", "charging"),
        ("data", "metadata", "call_duration_secs"),
        ("data", "metadata", "start_time_unix_secs"),
        ("data", "transcript", 2, "tool_calls"),
        ("data", "transcript", 2, "tool_results"),
        ("data", "transcript", 2, "conversation_turn_metrics"),
        ("data", "transcript", 2, "llm_usage"),
        ("data", "transcript", 3, "time_in_call_secs"),
    ]

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        payload = load("post_call_transcription")
        target = payload
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return payload

    return st.builds(replace, st.sampled_from(paths), json_values)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, _near_valid()))
def test_fuzz_only_payload_errors(payload: Any) -> None:
    only_payload_errors(SOURCE, payload)
