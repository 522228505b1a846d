"""Webex adapter: one Captures API task entry → a call with its recordings and channel maps."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _vendor_json import json_values, only_payload_errors
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.webex import SOURCE
from convoscope.model import EndReason, Role

CAPTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "webex" / "capture.json").read_text()
)


def capture() -> dict[str, Any]:
    return copy.deepcopy(CAPTURE)


def test_identify() -> None:
    event = SOURCE.identify(capture())
    assert event.external_id == "9e4895c9-787b-4615-b15f-f1b3b12c3091"
    assert event.event_type == "capture"
    assert event.event_key == SOURCE.identify(capture()).event_key


def test_capture_maps_every_field() -> None:
    assembled = SOURCE.assemble([capture()])
    call = assembled.call
    assert call.source == "webex"
    assert call.external_id == "9e4895c9-787b-4615-b15f-f1b3b12c3091"
    assert call.started_at == datetime.fromtimestamp(1617373126, tz=UTC)
    assert call.duration_s == pytest.approx(184.0)  # first start to last stop
    assert call.ended_at == datetime.fromtimestamp(1617373310, tz=UTC)
    assert call.turns == [] and call.end_reason is EndReason.UNKNOWN
    va, main, consult = call.recordings
    assert va.source_url == CAPTURE["recording"][0]["attributes"]["filePath"]
    assert va.format == "wav" and va.channels == 2
    assert va.channel_map == {0: Role.USER, 1: Role.AGENT}
    assert va.vantage == "webex:va-main"
    assert va.offset_s == 0.0 and va.duration_s == pytest.approx(60.5)
    assert main.channel_map == {0: Role.USER, 1: Role.AGENT}
    assert main.offset_s == pytest.approx(64.0) and main.vantage == "webex:main"
    assert consult.channel_map == {1: Role.AGENT}  # "Others" is never guessed
    references = call.metadata["webex"]
    assert isinstance(references, dict)
    [transcript] = references["transcriptions"]  # type: ignore[misc]
    assert transcript == {
        "id": "tr-1",
        "fileName": "transcript-1.json",
        "filePath": CAPTURE["transcription"][0]["attributes"]["filePath"],
        "startTime": 1617373126000,
        "stopTime": 1617373310000,
    }
    first = references["recordings"][0]  # type: ignore[index]
    assert first["participants"] == ["va-7f3", "+1555***4567"]  # type: ignore[index,call-overload]
    assert first["sensitive"] is False and first["callType"] == "va-main"  # type: ignore[index,call-overload]
    assert assembled.warnings == ()


def test_newest_capture_wins() -> None:
    refreshed = capture()
    refreshed["recording"][0]["attributes"]["filePath"] = "https://example.invalid/fresh.wav"
    call = SOURCE.assemble([capture(), refreshed]).call
    assert call.recordings[0].source_url == "https://example.invalid/fresh.wav"


def test_stop_before_start_is_a_warning() -> None:
    odd = capture()
    odd["recording"][2]["attributes"]["stopTime"] = 1617373240000
    assembled = SOURCE.assemble([odd])
    assert any("recording[2]" in w for w in assembled.warnings)
    assert assembled.call.recordings[2].duration_s == 0.0


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda c: c.pop("taskId"), "taskId"),
        (lambda c: c.update(recording=[], transcription=[]), "no recording or transcription"),
        (lambda c: c["recording"][0]["attributes"].pop("startTime"), r"recording\[0\].attributes.startTime"),
        (lambda c: c["recording"][1].update(attributes="x"), r"recording\[1\].attributes"),
        (lambda c: c["recording"][0]["attributes"].update(channel1=3), "channel1"),
    ],
)
def test_bad_capture_names_the_field(mutate: Any, where: str) -> None:
    bad = capture()
    mutate(bad)
    with pytest.raises(PayloadError, match=where):
        SOURCE.identify(bad)
        SOURCE.assemble([bad])


def test_there_is_no_webhook_signature() -> None:
    with pytest.raises(SignatureError, match="pulled"):
        SOURCE.verify({}, b"{}", "secret", now=datetime.now(UTC))


KEYS = [
    "fileName",
    "filePath",
    "startTime",
    "stopTime",
    "participants",
    "channel1",
    "channel2",
    "callType",
    "sensitive",
]


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.tuples(st.sampled_from(KEYS), json_values)))
def test_fuzz_only_payload_errors(case: Any) -> None:
    if isinstance(case, tuple):
        payload = capture()
        payload["recording"][1]["attributes"][case[0]] = case[1]
    else:
        payload = case
    only_payload_errors(SOURCE, payload)
