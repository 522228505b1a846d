"""Generic source: the simple QA document, its role and reason spellings, its signature, fuzzing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _mutate import mutated
from _vendor_json import json_values, only_payload_errors, vendor_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.generic import SOURCE
from convoscope.ingest.signing import sign_generic
from convoscope.ingest.sources import body_event_key
from convoscope.model import EndReason, Role


def load() -> dict[str, Any]:
    return vendor_payload("generic", "call")


def test_every_field() -> None:
    document = load()
    event = SOURCE.identify(document)
    assert event.external_id == "qa-run-17" and event.event_key == body_event_key("call", document)
    assembled = SOURCE.assemble([document])
    call = assembled.call
    assert assembled.warnings == ()
    assert (call.source, call.external_id, call.agent_id, call.agent_version) == (
        "generic",
        "qa-run-17",
        "support-bot",
        "2026.01",
    )
    assert call.started_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC) and call.duration_s == 7.5
    assert (call.end_reason, call.end_reason_raw) == (EndReason.USER_HANGUP, "customer-ended-call")
    assert [(t.role, t.text, t.start_s, t.end_s) for t in call.turns] == [
        (Role.AGENT, "Thanks for calling, how can I help?", 0.3, 2.1),
        (Role.USER, "What are your opening hours?", 2.9, 4.4),
        (Role.AGENT, "We open at nine.", 5.0, 6.1),
    ]
    (recording,) = call.recordings
    assert (
        recording.source_url == "http://127.0.0.1:1/recordings/qa-run-17.wav" and recording.channel_map == {}
    )
    assert call.metadata == {"suite": "smoke"}


def test_key_order_and_whitespace_do_not_make_a_new_event() -> None:
    document = load()
    reordered = dict(reversed(list(document.items())))
    assert SOURCE.identify(reordered).event_key == SOURCE.identify(document).event_key
    document["ended_reason"] = "agent_hangup"
    assert SOURCE.identify(document).event_key != SOURCE.identify(reordered).event_key


def test_the_latest_document_wins() -> None:
    first, second = load(), load()
    second["ended_reason"] = "transferred"
    assert SOURCE.assemble([first, second]).call.end_reason is EndReason.TRANSFER


@pytest.mark.parametrize(
    ("started_at", "expected"),
    [
        ("2026-01-05T11:00:00+01:00", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        (1767607200, datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        (1767607200.5, datetime(2026, 1, 5, 10, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_start_time_spellings(started_at: Any, expected: datetime) -> None:
    document = load()
    document["started_at"] = started_at
    assert SOURCE.assemble([document]).call.started_at == expected


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("user_hangup", EndReason.USER_HANGUP),
        ("VOICEMAIL", EndReason.VOICEMAIL),
        ("timeout", EndReason.SILENCE_TIMEOUT),
        ("the cat unplugged it", EndReason.OTHER),
    ],
)
def test_ended_reasons(reason: str, expected: EndReason) -> None:
    document = load()
    document["ended_reason"] = reason
    call = SOURCE.assemble([document]).call
    assert (call.end_reason, call.end_reason_raw) == (expected, reason)


def test_agent_as_plain_name_and_no_recording() -> None:
    document = load()
    document["agent"] = "bot-a"
    del document["recording_url"]
    call = SOURCE.assemble([document]).call
    assert (call.agent_id, call.agent_version, call.recordings) == ("bot-a", None, [])


def test_oddities_are_warnings() -> None:
    document = load()
    document["transcript"][2]["start_time"] = 1.0
    document["transcript"][2]["end_time"] = 0.5
    document["started_at"] = "2026-01-05T10:00:00"
    text = " ".join(SOURCE.assemble([document]).warnings)
    assert "no UTC offset" in text and "before start_time" in text and "before the previous turn" in text


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"call_id": None}, "body.call_id"),
        ({"started_at": None}, "started_at"),
        ({"started_at": "tomorrow"}, "started_at"),
        ({"transcript": {"role": "user"}}, "body.transcript"),
        ({"transcript": [{"role": "narrator", "start_time": 0, "end_time": 1}]}, "transcript[0].role"),
        ({"transcript": [{"role": "user", "content": "hi"}]}, "transcript[0]"),
        ({"agent": 7}, "agent"),
        ({"metadata": []}, "body.metadata"),
    ],
)
def test_bad_documents_name_the_field(change: dict[str, Any], where: str) -> None:
    document = {**load(), **change}
    with pytest.raises(PayloadError) as caught:
        SOURCE.identify(document)
        SOURCE.assemble([document])
    assert where in str(caught.value)


def test_signature() -> None:
    now = datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    body = b'{"call_id":"x"}'
    stamp = int(now.timestamp())
    SOURCE.verify({"x-convoscope-signature": sign_generic("s", body, stamp)}, body, "s", now=now)
    bad = [
        {},
        {"x-convoscope-signature": sign_generic("t", body, stamp)},
        {"x-convoscope-signature": sign_generic("s", body, stamp - 400)},
        {"x-convoscope-signature": f"t={stamp}"},
        {"x-convoscope-signature": "t=,v1="},
    ]
    for headers in bad:
        with pytest.raises(SignatureError):
            SOURCE.verify(headers, body, "s", now=now)
    with pytest.raises(SignatureError):
        SOURCE.verify(
            {"x-convoscope-signature": sign_generic("s", body, stamp)},
            body,
            "s",
            now=now + timedelta(hours=1),
        )


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, mutated(load())))
def test_fuzz_only_payload_errors(payload: Any) -> None:
    only_payload_errors(SOURCE, payload)
