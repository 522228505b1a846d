"""Every payload sample of the vendors' own documentation and SDK types, posted through the webhook route.

The fixture library (``tests/ingest/fixtures/<vendor>/``, each file's source in that folder's README.md)
holds the samples as the vendors print them. Each call event must become a stored call with its key facts;
a message that is no part of a call's record (Vapi's other server messages) is acknowledged with 200 and
not kept, never refused; a sample that is not a valid event gets a 4xx naming why; none may get a 5xx.
A missing start time is never a refusal: the call starts when its first event was received, says so in
``ingest_warnings``, and a later event with the real start replaces it, leaving exactly one call, under
the id its first event gave.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.ingest.payload_fields import RECEIVED_START_NOTE
from convoscope.server.services import Services

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures"


def _sample(path: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / path).read_text())
    return document


def _post(client: TestClient, auth: dict[str, str], source: str, document: Any) -> Any:
    return client.post(f"/api/v1/ingest/{source}", content=orjson.dumps(document), headers=auth)


def _call(client: TestClient, auth: dict[str, str], call_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=auth)
    assert response.status_code == 200, response.text
    call: dict[str, Any] = response.json()["call"]
    return call


def _stands_in(call: dict[str, Any]) -> bool:
    """Whether the call's start is the receive time (its warning present)."""
    return any(RECEIVED_START_NOTE in w for w in call["metadata"].get("ingest_warnings", []))


RETELL_DOCS_ID = "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6"
RETELL_DOCS_START = "2024-05-02T00:07:55.945000+00:00"  # start_timestamp 1714608475945 (epoch ms)

# (source, fixture, external_id, start: ISO time or None for the receive time, turns, end_reason)
CALL_SAMPLES = [
    (
        "vapi",
        "vapi/docs_end_of_call_report_minimal.json",
        "73a6da0f-c455-4bb6-bf4a-5f0634871430",
        None,
        0,
        "agent_hangup",
    ),
    (
        "vapi",
        "vapi/docs_end_of_call_report_events.json",
        "d1a7c3e2-0b5f-4e8a-9c61-2f3b4a5d6e70",
        None,
        2,
        "other",
    ),
    ("vapi", "vapi/docs_status_update.json", "73a6da0f-c455-4bb6-bf4a-5f0634871430", None, 0, "unknown"),
    ("vapi", "vapi/end_of_call_report.json", "call_5b1e", "2026-01-05T10:00:00+00:00", 6, "user_hangup"),
    ("vapi", "vapi/call_object.json", "call_5b1e", "2026-01-05T10:00:00+00:00", 2, "user_hangup"),
    (
        "retell",
        "retell/sdk_call_started_registered.json",
        "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        None,
        0,
        "unknown",
    ),
    (
        "retell",
        "retell/sdk_call_ended_not_connected.json",
        "Kq7c2d1fNotConnected0000000000000",
        "2024-05-02T00:08:11.736000+00:00",
        0,
        "no_answer",
    ),
    ("retell", "retell/call_ended.json", "call_8f2d", "2026-01-05T10:00:00+00:00", 3, "user_hangup"),
    ("retell", "retell/docs_call_started.json", RETELL_DOCS_ID, RETELL_DOCS_START, 0, "unknown"),
    ("retell", "retell/docs_call_ended.json", RETELL_DOCS_ID, RETELL_DOCS_START, 0, "user_hangup"),
    ("retell", "retell/docs_call_analyzed.json", RETELL_DOCS_ID, RETELL_DOCS_START, 0, "user_hangup"),
    (
        "elevenlabs",
        "elevenlabs/docs_post_call_transcription.json",
        "abc",
        "2025-02-14T12:48:17+00:00",
        3,
        "unknown",
    ),
    (
        "elevenlabs",
        "elevenlabs/post_call_transcription.json",
        "conv_01jm8abc",
        "2025-02-14T12:48:17+00:00",
        5,
        "user_hangup",
    ),
    (
        "elevenlabs",
        "elevenlabs/call_initiation_failure.json",
        "conv_failed_1",
        "2025-02-14T13:33:20+00:00",
        0,
        "no_answer",
    ),
    (
        "bland",
        "bland/docs_immediate.json",
        "9d404c1b-6a23-4426-953a-a52c392ff8f1",
        "2024-01-15T10:30:00+00:00",
        2,
        "user_hangup",
    ),
    ("bland", "bland/docs_delayed.json", "9d404c1b-6a23-4426-953a-a52c392ff8f1", None, 1, "unknown"),
    (
        "bland",
        "bland/immediate.json",
        "c1234567-89ab-cdef-0123-456789abcdef",
        "2024-01-15T10:30:00+00:00",
        4,
        "user_hangup",
    ),
    ("bland", "bland/corrected.json", "c1234567-89ab-cdef-0123-456789abcdef", None, 3, "unknown"),
]


@pytest.mark.parametrize(("source", "path", "external_id", "start", "turns", "end_reason"), CALL_SAMPLES)
def test_each_call_sample_becomes_a_stored_call(
    client: TestClient,
    auth: dict[str, str],
    drain: Callable[[], int],
    source: str,
    path: str,
    external_id: str | None,
    start: str | None,
    turns: int | None,
    end_reason: str | None,
) -> None:
    sample = _sample(path)
    before = datetime.now(UTC)
    response = _post(client, auth, source, sample)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert drain() == 1
    call = _call(client, auth, answer["id"])
    assert call["source"] == source
    assert call["external_id"] == answer["external_id"]
    if external_id is not None:
        assert call["external_id"] == external_id
    started = datetime.fromisoformat(call["started_at"])
    if start is None:
        assert _stands_in(call)
        assert before <= started <= datetime.now(UTC), "the receive time stands in for the start"
    else:
        assert started == datetime.fromisoformat(start)
        assert not _stands_in(call)
    if turns is not None:
        assert len(call["turns"]) == turns
    if end_reason is not None:
        assert call["end_reason"] == end_reason


@pytest.mark.parametrize(
    "path",
    [
        "vapi/docs_end_of_call_report_minimal.json",
        "bland/docs_delayed.json",
        "retell/sdk_call_started_registered.json",
    ],
)
def test_a_sample_without_a_start_is_flagged_not_refused(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int], path: str
) -> None:
    source = path.split("/")[0]
    response = _post(client, auth, source, _sample(path))
    assert response.status_code == 202, response.text
    assert any(RECEIVED_START_NOTE in w for w in response.json()["warnings"])
    drain()
    assert _stands_in(_call(client, auth, response.json()["id"]))


NOT_KEPT = [
    ("vapi/docs_assistant_request.json", "assistant-request"),
    ("vapi/docs_tool_calls.json", "tool-calls"),
    ("vapi/docs_hang.json", "hang"),
    ("vapi/docs_transfer_destination_request.json", "transfer-destination-request"),
    ("vapi/docs_transcript.json", "transcript"),
    ("vapi/docs_speech_update.json", "speech-update"),
    ("vapi/docs_conversation_update.json", "conversation-update"),
    ("vapi/docs_user_interrupted.json", "user-interrupted"),
    ("vapi/docs_language_change_detected.json", "language-change-detected"),
    ("vapi/docs_phone_call_control.json", "phone-call-control"),
    ("vapi/docs_knowledge_base_request.json", "knowledge-base-request"),
    ("vapi/docs_model_output.json", "model-output"),
    ("vapi/docs_chat_created.json", "chat.created"),
]

# The keys Vapi acts on in an answer (SDK ``ServerMessageResponse*``): the acknowledgement has none of them.
_ANSWER_KEYS = {
    "results",
    "error",
    "assistant",
    "assistantId",
    "squad",
    "squadId",
    "destination",
    "documents",
}


@pytest.mark.parametrize(("path", "kind"), NOT_KEPT)
def test_a_vapi_message_that_is_no_call_record_is_acknowledged_not_kept(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    drain: Callable[[], int],
    path: str,
    kind: str,
) -> None:
    response = _post(client, auth, "vapi", _sample(path))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["source"], answer["event_type"]) == (False, "vapi", kind)
    assert answer["reason"]
    assert not _ANSWER_KEYS & set(answer), "a neutral body: nothing Vapi would act on"
    assert services.meta.pending_count() == 0 and drain() == 0, "nothing was committed"
    assert services.store.count_calls(services.default_project.id) == 0


def test_a_vapi_status_update_joins_its_call_and_the_report_completes_it(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    status = _post(client, auth, "vapi", _sample("vapi/docs_status_update.json"))
    assert status.status_code == 202, status.text
    drain()
    report = _post(client, auth, "vapi", _sample("vapi/docs_end_of_call_report_minimal.json"))
    drain()
    assert report.json()["id"] == status.json()["id"], "one call, one id"
    call = _call(client, auth, status.json()["id"])
    assert call["metadata"]["vapi"]["status"] == "ended"
    assert call["end_reason"] == "agent_hangup", "the report's endedReason"
    assert services.store.count_calls(services.default_project.id) == 1


def test_the_docs_audio_sample_with_elided_base64_gets_a_4xx_naming_the_field(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    # The docs print "SUQzBAAAAAAA...base64_encoded_mp3_data...AAAAAAAAAA==": a placeholder, not base64.
    response = _post(client, auth, "elevenlabs", _sample("elevenlabs/docs_post_call_audio.json"))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == "data.full_audio"
    assert drain() == 0


def test_bland_delayed_webhook_merges_into_its_call(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    immediate = _post(client, auth, "bland", _sample("bland/docs_immediate.json")).json()
    drain()
    delayed = _post(client, auth, "bland", _sample("bland/docs_delayed.json"))
    assert delayed.status_code == 202, delayed.text
    drain()
    assert delayed.json()["id"] == immediate["id"], "the same call, the same id"
    call = _call(client, auth, immediate["id"])
    assert [t["text"] for t in call["turns"]] == ["Hi, thank you for calling. How can I help you today?"]
    assert call["vendor_analysis"]["citations"][0]["field"] == "customer_email"
    assert call["end_reason"] == "user_hangup", "the immediate webhook's fields stay"
    assert services.store.count_calls(services.default_project.id) == 1


def test_retells_documented_lifecycle_makes_one_call(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    answers = []
    for event in ("call_started", "call_ended", "call_analyzed"):
        response = _post(client, auth, "retell", _sample(f"retell/docs_{event}.json"))
        assert response.status_code == 202, response.text
        assert response.json()["event_type"] == event
        answers.append(response.json()["id"])
        drain()
    assert len(set(answers)) == 1, "three events, one call, one id"
    call = _call(client, auth, answers[0])
    started = datetime.fromisoformat(call["started_at"])
    assert started == datetime.fromisoformat(RETELL_DOCS_START)
    ended = datetime.fromisoformat(call["ended_at"])
    assert (ended - started).total_seconds() == pytest.approx(15.791), "end_timestamp 1714608491736"
    assert call["end_reason"] == "user_hangup" and call["direction"] == "inbound"
    assert call["agent_id"] == "oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD"
    assert call["vendor_analysis"]["user_sentiment"] == "Positive"
    assert call["vendor_analysis"]["call_successful"] is True
    assert services.store.count_calls(services.default_project.id) == 1


def _ids(client: TestClient, auth: dict[str, str]) -> list[str]:
    response = client.get("/api/v1/calls", headers=auth)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("source", "first", "second", "real_start"),
    [
        (
            "bland",
            "bland/docs_delayed.json",
            "bland/docs_immediate.json",
            "2024-01-15T10:30:00+00:00",
        ),
        ("vapi", "vapi/docs_end_of_call_report_minimal.json", None, "2026-01-05T10:00:00+00:00"),
    ],
)
def test_the_real_start_replaces_the_receive_time_and_one_call_remains(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    drain: Callable[[], int],
    source: str,
    first: str,
    second: str | None,
    real_start: str,
) -> None:
    early = _post(client, auth, source, _sample(first)).json()
    drain()
    assert _stands_in(_call(client, auth, early["id"]))
    if second is not None:
        later_sample = _sample(second)
    else:  # the fetched call object of the same call, which knows when it started
        later_sample = _sample("vapi/call_object.json") | {"id": early["external_id"]}
    later = _post(client, auth, source, later_sample)
    assert later.status_code == 202, later.text
    drain()
    assert later.json()["id"] == early["id"], "the id the first event gave is kept"
    call = _call(client, auth, early["id"])
    assert datetime.fromisoformat(call["started_at"]) == datetime.fromisoformat(real_start)
    assert not _stands_in(call), "the warning went with the stand-in start"
    assert _ids(client, auth) == [early["id"]]
    assert services.store.count_calls(services.default_project.id) == 1


def test_the_receive_time_start_is_the_same_in_the_answer_and_the_store(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    answer = _post(client, auth, "vapi", _sample("vapi/docs_end_of_call_report_minimal.json")).json()
    drain()
    assert _call(client, auth, answer["id"])["external_id"] == answer["external_id"]
    replay = _post(client, auth, "vapi", _sample("vapi/docs_end_of_call_report_minimal.json")).json()
    drain()
    assert replay["id"] == answer["id"], "a replay keeps the first receive time"
    assert services.store.count_calls(services.default_project.id) == 1
