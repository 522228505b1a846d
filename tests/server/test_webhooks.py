"""POST /api/v1/ingest/{source}: the project, signatures, decoding, durable acknowledgement, merge, replay."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convoscope.ingest.signing import hmac_hex, sign_generic
from convoscope.server.services import Services
from convoscope.testing import stereo_wav_bytes

sys.path.insert(0, str(Path(__file__).parent.parent / "ingest"))
from _vendor_json import json_values

FIXTURES = Path(__file__).parent.parent / "ingest" / "fixtures"
RETELL_EVENTS = ("call_started", "call_ended", "call_analyzed")


def _fixture(vendor: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / vendor / f"{name}.json").read_text())
    return document


def _body(document: Any) -> bytes:
    return orjson.dumps(document)


def _retell_signature(secret: str, body: bytes, at_ms: int) -> str:
    return f"v={at_ms},d={hmac_hex(secret, body + str(at_ms).encode())}"


def _detail(client: TestClient, auth: dict[str, str], call_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=auth)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_retell_events_merge_into_one_call(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    ids = set()
    for name in RETELL_EVENTS:
        response = client.post("/api/v1/ingest/retell", content=_body(_fixture("retell", name)), headers=auth)
        assert response.status_code == 202, response.text
        assert response.json()["event_type"] == name
        ids.add(response.json()["id"])
        assert drain() == 1
    assert len(ids) == 1, "every event of a call answers with the same call id"
    call = _detail(client, auth, ids.pop())["call"]
    assert services.store.count_calls(services.default_project.id) == 1
    # call_started alone has no transcript; call_ended brings it; call_analyzed adds the analysis.
    assert [t["role"] for t in call["turns"]] == ["agent", "user", "agent"]
    assert call["vendor_analysis"]["user_sentiment"] == "Positive"
    assert call["end_reason"] == "user_hangup"
    assert call["metadata"]["retell_events"] == list(RETELL_EVENTS)
    assert call["metadata"]["retell"]["agent_name"] == "Dental front desk"
    events = services.meta.source_events(services.default_project.id, "retell", "call_8f2d")
    assert len(events) == 3


def test_replayed_event_is_harmless(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    body = _body(_fixture("retell", "call_ended"))
    first = client.post("/api/v1/ingest/retell", content=body, headers=auth).json()
    drain()
    again = client.post("/api/v1/ingest/retell", content=body, headers=auth)
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    drain()
    assert services.store.count_calls(services.default_project.id) == 1
    assert len(services.meta.source_events(services.default_project.id, "retell", "call_8f2d")) == 1
    status = client.get(f"/api/v1/ingest/{again.json()['ingest_id']}", headers=auth).json()
    assert status["status"] == "done"


def test_events_drained_in_one_claim_are_kept_once_and_make_one_call(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    project_id = services.default_project.id
    answers = [
        client.post("/api/v1/ingest/retell", content=_body(_fixture("retell", name)), headers=auth).json()
        for name in (*RETELL_EVENTS, "call_ended")  # the last is a replay, in the same claim
    ]
    assert drain() == len(answers)
    assert len({answer["id"] for answer in answers}) == 1
    call = _detail(client, auth, answers[0]["id"])["call"]
    assert call["metadata"]["retell_events"] == list(RETELL_EVENTS)
    assert call["vendor_analysis"]["user_sentiment"] == "Positive"
    assert len(services.meta.source_events(project_id, "retell", "call_8f2d")) == 3
    assert services.store.count_calls(project_id) == 1
    for answer in answers:
        status = client.get(f"/api/v1/ingest/{answer['ingest_id']}", headers=auth).json()
        assert status["status"] == "done", status


def test_vapi_report_round_trip(client: TestClient, auth: dict[str, str], drain: Callable[[], int]) -> None:
    response = client.post(
        "/api/v1/ingest/vapi", content=_body(_fixture("vapi", "end_of_call_report")), headers=auth
    )
    assert response.status_code == 202, response.text
    drain()
    call = _detail(client, auth, response.json()["id"])["call"]
    assert call["external_id"] == "call_5b1e" and call["source"] == "vapi"
    assert call["tool_calls"][0]["name"] == "book_table"
    assert [line["currency"] for line in call["cost"]] == ["USD"] * 6


def test_key_in_query_for_senders_without_headers(
    client: TestClient, key: str, drain: Callable[[], int]
) -> None:
    body = _body(_fixture("generic", "call"))
    assert client.post("/api/v1/ingest/generic", content=body).status_code == 401
    assert client.post("/api/v1/ingest/generic?key=wrong", content=body).status_code == 401
    response = client.post(f"/api/v1/ingest/generic?key={key}", content=body)
    assert response.status_code == 202, response.text
    drain()
    assert _detail(client, {"Authorization": f"Bearer {key}"}, response.json()["id"])["call"]["turns"]


def test_unknown_source_is_404(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/api/v1/ingest/nosuch", content=b"{}", headers=auth)
    assert response.status_code == 404
    assert "known sources" in response.json()["error"]["message"]


def test_invalid_json_is_400_and_nothing_is_queued(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    # Bland's own docs sample lacks a comma inside "variables": the same kind of mistake.
    response = client.post(
        "/api/v1/ingest/generic", content=b'{"call_id": "x" "started_at": 1}', headers=auth
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
    assert services.meta.pending_count() == 0


@pytest.mark.parametrize(
    ("source", "document", "field"),
    [
        ("retell", {"event": "call_ended", "call": {}}, "call.call_id"),
        ("vapi", {"message": {"type": "end-of-call-report", "call": {}}}, "message.call.id"),
        ("vapi", {"message": {"call": {"id": "c"}}}, "message.type"),
        ("generic", {"call_id": "c"}, "started_at"),
        (
            "generic",
            {"call_id": "c", "started_at": 0, "transcript": [{"role": "alien"}]},
            "transcript[0].role",
        ),
    ],
)
def test_bad_payload_is_4xx_naming_the_field(
    client: TestClient, auth: dict[str, str], services: Services, source: str, document: Any, field: str
) -> None:
    response = client.post(f"/api/v1/ingest/{source}", content=_body(document), headers=auth)
    assert 400 <= response.status_code < 500
    assert field in response.json()["error"]["message"]
    assert services.meta.pending_count() == 0


def test_wrong_source_payload_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/ingest/retell", content=_body(_fixture("vapi", "end_of_call_report")), headers=auth
    )
    assert response.status_code == 422
    assert "event" in response.json()["error"]["message"]


def _configure_secret(services: Services, source: str, secret: str) -> None:
    services.meta.update_project_settings(services.default_project.id, ("sources", source, "secret"), secret)


def test_retell_signature_accept_reject_and_replay_window(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    _configure_secret(services, "retell", "retell-api-key")
    body = _body(_fixture("retell", "call_ended"))
    now_ms = int(time.time() * 1000)

    def post(signature: str | None) -> Any:
        headers = dict(auth)
        if signature is not None:
            headers["X-Retell-Signature"] = signature
        return client.post("/api/v1/ingest/retell", content=body, headers=headers)

    assert post(_retell_signature("retell-api-key", body, now_ms)).status_code == 202
    missing = post(None)
    assert missing.status_code == 401 and "x-retell-signature" in missing.json()["error"]["message"]
    assert post(_retell_signature("another-key", body, now_ms)).status_code == 401
    stale = post(_retell_signature("retell-api-key", body, now_ms - 10 * 60 * 1000))
    assert stale.status_code == 401 and "replay window" in stale.json()["error"]["message"]
    tampered = body.replace(b"user_hangup", b"agent_hangup")
    response = client.post(
        "/api/v1/ingest/retell",
        content=tampered,
        headers={**auth, "X-Retell-Signature": _retell_signature("retell-api-key", body, now_ms)},
    )
    assert response.status_code == 401
    assert "retell-api-key" not in response.text, "a secret never appears in a response"


def test_vapi_secret_and_hmac_credential(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    _configure_secret(services, "vapi", "vapi-shared")
    body = _body(_fixture("vapi", "end_of_call_report"))
    url = "/api/v1/ingest/vapi"
    assert client.post(url, content=body, headers={**auth, "x-vapi-secret": "vapi-shared"}).status_code == 202
    assert client.post(url, content=body, headers={**auth, "x-vapi-secret": "nope"}).status_code == 401
    stamp = str(int(time.time()))
    good = hmac_hex("vapi-shared", stamp.encode() + b"." + body)
    signed = {**auth, "x-signature": good, "x-timestamp": stamp}
    assert client.post(url, content=body, headers=signed).status_code == 202
    old = str(int(time.time()) - 3600)
    stale = {**auth, "x-signature": hmac_hex("vapi-shared", old.encode() + b"." + body), "x-timestamp": old}
    assert client.post(url, content=body, headers=stale).status_code == 401
    assert client.post(url, content=body, headers=auth).status_code == 401


def test_generic_signature(client: TestClient, auth: dict[str, str], services: Services) -> None:
    _configure_secret(services, "generic", "generic-secret")
    body = _body(_fixture("generic", "call"))
    url = "/api/v1/ingest/generic"
    header = "x-convoscope-signature"
    now = int(time.time())
    assert (
        client.post(
            url, content=body, headers={**auth, header: sign_generic("generic-secret", body, now)}
        ).status_code
        == 202
    )
    assert (
        client.post(url, content=body, headers={**auth, header: sign_generic("x", body, now)}).status_code
        == 401
    )
    assert client.post(url, content=body, headers={**auth, header: "garbage"}).status_code == 401
    late = sign_generic("generic-secret", body, now - 301)
    assert client.post(url, content=body, headers={**auth, header: late}).status_code == 401


def test_project_channel_map_fills_unknown_maps(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    services.meta.update_project_settings(
        services.default_project.id, ("sources", "vapi", "channel_map"), "user,agent"
    )
    response = client.post(
        "/api/v1/ingest/vapi", content=_body(_fixture("vapi", "end_of_call_report")), headers=auth
    )
    drain()
    recordings = _detail(client, auth, response.json()["id"])["call"]["recordings"]
    by_vantage = {r["vantage"]: r["channel_map"] for r in recordings}
    assert by_vantage["vapi:stereo"] == {"0": "user", "1": "agent"}
    assert by_vantage["vapi:mono"] == {}, "a mono mix has no channels to map"
    assert by_vantage["vapi:assistant"] == {"0": "agent"}, "a vendor's documented map is kept"


def test_warnings_are_visible_on_the_call(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    document = _fixture("generic", "call")
    document["transcript"][1]["end_time"] = 1.0  # ends before it starts
    response = client.post("/api/v1/ingest/generic", content=_body(document), headers=auth)
    assert response.status_code == 202
    assert any("end_time" in w for w in response.json()["warnings"])
    drain()
    call = _detail(client, auth, response.json()["id"])["call"]
    assert any("transcript[1]" in w for w in call["metadata"]["ingest_warnings"])


def test_pulled_events_skip_the_signature_only_with_a_header_key(
    client: TestClient, auth: dict[str, str], key: str, services: Services
) -> None:
    _configure_secret(services, "generic", "generic-secret")
    body = _body(_fixture("generic", "call"))
    pulled = {**auth, "x-convoscope-pulled": "1"}
    assert client.post("/api/v1/ingest/generic", content=body, headers=pulled).status_code == 202
    via_url = client.post(
        f"/api/v1/ingest/generic?key={key}", content=body, headers={"x-convoscope-pulled": "1"}
    )
    assert via_url.status_code == 401, "a key in a URL may have leaked: the signature still guards it"


def test_audio_inside_a_payload_is_stored_as_a_blob(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    audio = stereo_wav_bytes(left=[(0.1, 0.5)], right=[(0.6, 0.9)], duration_s=1.0)
    transcription = _fixture("elevenlabs", "post_call_transcription")
    audio_event = _fixture("elevenlabs", "post_call_audio")
    audio_event["data"]["full_audio"] = base64.b64encode(audio).decode()
    first = client.post("/api/v1/ingest/elevenlabs", content=_body(transcription), headers=auth)
    drain()
    second = client.post("/api/v1/ingest/elevenlabs", content=_body(audio_event), headers=auth)
    assert first.status_code == 202 and second.status_code == 202, second.text
    assert first.json()["id"] == second.json()["id"]
    drain()
    call = _detail(client, auth, first.json()["id"])["call"]
    hosted = [r for r in call["recordings"] if r.get("uri")]
    assert len(hosted) == 1 and hosted[0]["uri"].startswith("blob:") and hosted[0]["channels"] == 2
    index = call["recordings"].index(hosted[0])
    served = client.get(f"/api/v1/calls/{first.json()['id']}/recording?index={index}", headers=auth)
    assert served.status_code == 200 and served.content == audio


_SOURCES = st.sampled_from(["retell", "vapi", "generic", "elevenlabs", "bland"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=_SOURCES, document=json_values, raw=st.binary(max_size=64))
def test_fuzzed_bodies_get_a_4xx_never_a_500(
    client: TestClient, auth: dict[str, str], source: str, document: Any, raw: bytes
) -> None:
    for body in (
        orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) if _encodable(document) else raw,
        raw,
    ):
        response = client.post(f"/api/v1/ingest/{source}", content=body, headers=auth)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.json()["error"]["message"]


def _encodable(document: Any) -> bool:
    try:
        orjson.dumps(document)
    except TypeError:
        return False
    return True


def test_assembled_call_over_the_turn_bound_is_refused(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    document = _fixture("generic", "call")
    bound = services.settings.max_turns_per_call
    document["transcript"] = [
        {"role": "user", "content": "x", "start_time": i * 0.01, "end_time": i * 0.01}
        for i in range(bound + 1)
    ]
    response = client.post("/api/v1/ingest/generic", content=_body(document), headers=auth)
    assert response.status_code == 422 and f"at most {bound}" in response.json()["error"]["message"]
    assert services.meta.pending_count() == 0


def test_a_row_the_worker_cannot_assemble_fails_visibly_and_others_go_on(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    # Accepted before the rules changed under it: the worker keeps the row, failed, with its reason.
    project_id = services.default_project.id
    bad = services.meta.enqueue(
        project_id,
        kind="source:retell",
        payload=b'{"event": "call_ended", "call": {"call_id": "x", "start_timestamp": "soon"}}',
        content_type="application/json",
    )
    good = client.post("/api/v1/ingest/retell", content=_body(_fixture("retell", "call_ended")), headers=auth)
    drain()
    failed = client.get(f"/api/v1/ingest/{bad}", headers=auth).json()
    assert failed["status"] == "failed" and "call.start_timestamp" in failed["error"]
    assert client.get(f"/api/v1/ingest/{good.json()['ingest_id']}", headers=auth).json()["status"] == "done"
    assert services.store.count_calls(project_id) == 1


def test_a_firm_first_start_pins_the_call_id(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    started, ended = _fixture("retell", "call_started"), _fixture("retell", "call_ended")
    ended["call"]["start_timestamp"] += 250  # a vendor revising its start must not split the call
    first = client.post("/api/v1/ingest/retell", content=_body(started), headers=auth).json()
    drain()
    second = client.post("/api/v1/ingest/retell", content=_body(ended), headers=auth).json()
    drain()
    assert first["id"] == second["id"]
    assert _detail(client, auth, first["id"])["call"]["turns"], "the later event completed the same call"


def test_a_provisional_first_start_yields_to_the_real_one(
    client: TestClient, auth: dict[str, str], services: Services, drain: Callable[[], int]
) -> None:
    audio = client.post(
        "/api/v1/ingest/elevenlabs", content=_body(_fixture("elevenlabs", "post_call_audio")), headers=auth
    ).json()
    drain()
    transcription = client.post(
        "/api/v1/ingest/elevenlabs",
        content=_body(_fixture("elevenlabs", "post_call_transcription")),
        headers=auth,
    ).json()
    drain()
    call = _detail(client, auth, transcription["id"])["call"]
    start = _fixture("elevenlabs", "post_call_transcription")["data"]["metadata"]["start_time_unix_secs"]
    assert call["started_at"].startswith(datetime.fromtimestamp(start, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    assert audio["id"] == transcription["id"], "the real start replaced the guess; the first id is kept"
    assert services.store.count_calls(services.default_project.id) == 1, "still one call per vendor id"
