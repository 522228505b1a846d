"""Retell adapter: every mapped field of the three lifecycle events, merging, signatures, fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _mutate import mutated
from _vendor_json import json_values, only_payload_errors, vendor_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.retell import SOURCE, RetellSource
from convoscope.ingest.signing import hmac_hex
from convoscope.model import Direction, EndReason, Role

EVENTS = ("call_started", "call_ended", "call_analyzed")


def load(name: str) -> dict[str, Any]:
    return vendor_payload("retell", name)


def all_events() -> list[dict[str, Any]]:
    return [load(name) for name in EVENTS]


def test_identify_keys_lifecycle_events_by_type() -> None:
    events = [SOURCE.identify(e) for e in all_events()]
    assert {e.external_id for e in events} == {"call_8f2d"}
    assert [e.event_key for e in events] == list(EVENTS)
    update = {"event": "transcript_updated", "call": {"call_id": "call_8f2d", "transcript": "Hi"}}
    key = SOURCE.identify(update).event_key
    assert key.startswith("transcript_updated:") and len(key) > 40


def test_merged_call_maps_every_field() -> None:
    assembled = SOURCE.assemble(all_events())
    call = assembled.call
    assert assembled.warnings == ()
    assert (call.source, call.external_id, call.agent_id, call.agent_version) == (
        "retell",
        "call_8f2d",
        "agent_41c",
        "3",
    )
    assert call.direction is Direction.INBOUND
    assert call.started_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert call.ended_at == call.started_at + timedelta(seconds=12.5)
    assert call.duration_s == 12.5
    assert (call.end_reason, call.end_reason_raw) == (EndReason.USER_HANGUP, "user_hangup")
    # Turns from transcript_with_tool_calls: word timings give the spans (seconds from call start).
    assert [(t.role, t.start_s, t.end_s) for t in call.turns] == [
        (Role.AGENT, 0.5, 1.9),
        (Role.USER, 2.6, 4.2),
        (Role.AGENT, 6.0, 7.4),
    ]
    assert call.turns[1].words is not None and call.turns[1].words[-1].word == "appointment."
    assert call.turns[2].e2e_s == pytest.approx(1.8), "the one e2e value belongs to the one user→agent change"
    (tool,) = call.tool_calls
    assert (tool.id, tool.name, tool.arguments, tool.result, tool.success) == (
        "tc_1",
        "reschedule",
        {"day": "friday"},
        {"ok": True},
        True,
    )
    assert tool.turn_index == 1 and tool.start_s == pytest.approx(4.2)
    multi, mono = call.recordings
    assert (multi.source_url, multi.channels, multi.channel_map) == (
        "https://retell.example/recordings/call_8f2d_multi.wav",
        2,
        {},
    ), "Retell documents no channel order: the map stays unknown"
    assert (mono.channels, mono.vantage) == (1, "retell:recording_url")
    assert set(call.vendor_latency) == {
        "e2e",
        "llm",
        "tts",
        "asr",
        "llm_websocket_network_rtt",
        "knowledge_base",
        "s2s",
    }
    llm = call.vendor_latency["llm"]
    assert (llm.p50_s, llm.p99_s, llm.min_s, llm.max_s, llm.count) == pytest.approx(
        (0.62, 0.65, 0.6, 0.65, 2)
    )
    assert llm.values_s == pytest.approx([0.6, 0.65])
    assert [(c.product, c.amount, c.currency, c.unit_price) for c in call.cost] == [
        ("elevenlabs_tts", 1.46, "USD_cents", 0.1167),
        ("gpt_4o", 0.63, "USD_cents", 0.05),
    ]
    assert call.cost_total("USD_cents") == pytest.approx(2.09)
    assert call.usage.audio_s == 12.5
    assert call.usage.extra == {"llm_tokens_average": 857.5, "llm_tokens_num_requests": 2.0}
    assert call.vendor_analysis == {
        "call_summary": "The caller moved their appointment to Friday.",
        "user_sentiment": "Positive",
        "call_successful": True,
        "in_voicemail": False,
        "custom_analysis_data": {"rescheduled": True},
    }
    retell = call.metadata["retell"]
    assert isinstance(retell, dict)
    assert retell["agent_name"] == "Dental front desk" and retell["from_number"] == "+14155550101"
    assert retell["telephony_identifier"] == {"twilio_call_sid": "CA0123456789abcdef"}
    assert retell["collected_dynamic_variables"] == {"new_day": "friday"}
    assert retell["scrubbed_recording_url"] == "https://retell.example/recordings/call_8f2d_scrubbed.wav"
    assert call.metadata["retell_events"] == list(EVENTS)
    kept = call.metadata["retell_transcript_events"]
    assert isinstance(kept, list) and [e["role"] for e in kept] == ["node_transition", "dtmf"]  # type: ignore[index]


def test_each_event_alone_makes_a_call_with_the_same_start() -> None:
    starts = {SOURCE.assemble([event]).call.started_at for event in all_events()}
    assert len(starts) == 1
    started_only = SOURCE.assemble([load("call_started")]).call
    assert started_only.turns == [] and started_only.end_reason is EndReason.UNKNOWN


def test_later_events_complete_and_nulls_never_erase() -> None:
    ended = load("call_ended")
    analyzed = load("call_analyzed")
    analyzed["call"]["recording_url"] = None
    call = SOURCE.assemble([ended, analyzed]).call
    assert len(call.recordings) == 2 and call.vendor_analysis["user_sentiment"] == "Positive"
    # Order of arrival decides: an analysis arriving first is still merged.
    assert SOURCE.assemble([analyzed, ended]).call.turns == call.turns


def test_transcript_object_without_tool_calls() -> None:
    ended = load("call_ended")
    del ended["call"]["transcript_with_tool_calls"]
    call = SOURCE.assemble([ended]).call
    assert len(call.turns) == 3 and call.tool_calls == []


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("agent_hangup", EndReason.AGENT_HANGUP),
        ("call_transfer", EndReason.TRANSFER),
        ("voicemail_reached", EndReason.VOICEMAIL),
        ("ivr_reached", EndReason.IVR),
        ("inactivity", EndReason.SILENCE_TIMEOUT),
        ("max_duration_reached", EndReason.MAX_DURATION),
        ("dial_busy", EndReason.BUSY),
        ("dial_no_answer", EndReason.NO_ANSWER),
        ("dial_failed", EndReason.DIAL_FAILED),
        ("error_llm_websocket_open", EndReason.ERROR),
        ("scam_detected", EndReason.OTHER),
        ("a_reason_retell_adds_next_year", EndReason.OTHER),
    ],
)
def test_disconnection_reasons(reason: str, expected: EndReason) -> None:
    ended = load("call_ended")
    ended["call"]["disconnection_reason"] = reason
    call = SOURCE.assemble([ended]).call
    assert (call.end_reason, call.end_reason_raw) == (expected, reason)


def test_web_call_and_transfer_target() -> None:
    ended = load("call_ended")
    ended["call"]["call_type"] = "web_call"
    ended["call"]["transcript_with_tool_calls"].append(
        {
            "role": "transfer_target",
            "content": "Front desk here.",
            "words": [{"word": "Front", "start": 8.0, "end": 8.4}],
        }
    )
    call = SOURCE.assemble([ended]).call
    assert call.direction is Direction.WEB
    assert call.turns[-1].role is Role.USER and call.metadata["transfer_target_turns"] == [3]


def test_recoverable_oddities_become_warnings() -> None:
    ended = load("call_ended")
    turns = ended["call"]["transcript_with_tool_calls"]
    turns[1]["words"] = []  # no word timings
    turns.insert(0, {"role": "tool_call_result", "tool_call_id": "ghost", "content": "?"})
    ended["call"]["latency"]["e2e"]["values"] = [1000, 1100, 1200]
    assembled = SOURCE.assemble([ended])
    text = " ".join(assembled.warnings)
    assert "never invoked" in text and "no word timings" in text and "e2e" in text
    assert assembled.call.turns[1].start_s == pytest.approx(1.9), "placed after the previous turn"
    assert all(t.e2e_s is None for t in assembled.call.turns)


def test_never_connected_call_uses_its_end_time() -> None:
    ended = load("call_ended")
    del ended["call"]["start_timestamp"]
    ended["call"]["disconnection_reason"] = "dial_no_answer"
    assembled = SOURCE.assemble([ended])
    assert assembled.call.started_at == datetime(2026, 1, 5, 10, 0, 12, 500000, tzinfo=UTC)
    assert any("start_timestamp" in w for w in assembled.warnings)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ([], "body"),
        ({"call": {"call_id": "x"}}, "body.event"),
        ({"event": "call_ended"}, "call"),
        ({"event": "call_ended", "call": {"call_id": ""}}, "call.call_id"),
        ({"event": "call_ended", "call": {"call_id": "x"}}, "call.start_timestamp"),
        (
            {"event": "call_ended", "call": {"call_id": "x", "start_timestamp": "soon"}},
            "call.start_timestamp",
        ),
        (
            {
                "event": "call_ended",
                "call": {"call_id": "x", "start_timestamp": 1, "transcript_object": [{"content": "hi"}]},
            },
            "call.transcript_object[0].role",
        ),
    ],
)
def test_bad_payloads_name_the_field(payload: Any, where: str) -> None:
    with pytest.raises(PayloadError) as caught:
        SOURCE.identify(payload)
        SOURCE.assemble([payload])
    assert where in str(caught.value)


NOW = datetime(2026, 1, 5, 10, 5, tzinfo=UTC)


def _signed(secret: str, body: bytes, at: datetime) -> dict[str, str]:
    stamp = str(int(at.timestamp() * 1000))
    return {"x-retell-signature": f"v={stamp},d={hmac_hex(secret, body + stamp.encode())}"}


def test_signature() -> None:
    body = b'{"event":"call_ended"}'
    SOURCE.verify(_signed("key", body, NOW), body, "key", now=NOW)
    SOURCE.verify(_signed("key", body, NOW - timedelta(seconds=299)), body, "key", now=NOW)
    with pytest.raises(SignatureError, match="replay window"):
        SOURCE.verify(_signed("key", body, NOW - timedelta(seconds=301)), body, "key", now=NOW)
    with pytest.raises(SignatureError, match="replay window"):
        SOURCE.verify(_signed("key", body, NOW + timedelta(seconds=301)), body, "key", now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        SOURCE.verify(_signed("other", body, NOW), body, "key", now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        SOURCE.verify(_signed("key", body, NOW), body + b" ", "key", now=NOW)
    with pytest.raises(SignatureError, match="missing"):
        SOURCE.verify({}, body, "key", now=NOW)
    for garbage in ("v=abc,d=00", "d=00", "nonsense", "v=1,d=ünïcode"):
        with pytest.raises(SignatureError):
            SOURCE.verify({"x-retell-signature": garbage}, body, "key", now=NOW)
    wide = RetellSource(replay_window_s=3600)
    wide.verify(_signed("key", body, NOW - timedelta(minutes=30)), body, "key", now=NOW)


def _near_valid() -> st.SearchStrategy[Any]:
    return st.one_of(*(mutated(load(name)) for name in EVENTS))


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, _near_valid()))
def test_fuzz_only_payload_errors(payload: Any) -> None:
    only_payload_errors(SOURCE, payload, earlier=[load("call_started")])
