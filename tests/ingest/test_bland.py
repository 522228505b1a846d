"""Bland adapter: the immediate and corrected webhooks, their merge by call_id, the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _vendor_json import json_values, only_payload_errors, vendor_payload
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.config import Settings
from convoscope.errors import PayloadError, SignatureError
from convoscope.ingest.bland import SOURCE
from convoscope.model import Direction, EndReason, Role
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore

STARTED = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    return vendor_payload("bland", name)


def test_identify_tells_the_two_webhooks_apart() -> None:
    immediate, corrected = SOURCE.identify(load("immediate")), SOURCE.identify(load("corrected"))
    assert immediate.external_id == corrected.external_id == "c1234567-89ab-cdef-0123-456789abcdef"
    assert (immediate.event_type, corrected.event_type) == ("immediate", "corrected")
    assert immediate.event_key != corrected.event_key
    assert SOURCE.identify(load("immediate")).event_key == immediate.event_key


def test_immediate_webhook_maps_every_field() -> None:
    assembled = SOURCE.assemble([load("immediate")])
    call = assembled.call
    assert call.source == "bland"
    assert call.external_id == "c1234567-89ab-cdef-0123-456789abcdef"
    assert call.agent_id == "pw-dental-reschedule"
    assert call.direction is Direction.OUTBOUND
    assert call.started_at == STARTED
    assert call.duration_s == pytest.approx(45.0)  # call_length is in minutes
    assert call.ended_at == datetime(2024, 1, 15, 10, 30, 45, tzinfo=UTC)
    assert call.end_reason is EndReason.USER_HANGUP and call.end_reason_raw == "USER"

    # created_at → seconds from started_at; each turn ends where the next starts, the last at the end.
    assert [t.start_s for t in call.turns] == [1.0, 5.5, 9.0, 10.0]
    assert [t.end_s for t in call.turns] == [5.5, 9.0, 10.0, 45.0]
    assert [t.role for t in call.turns] == [Role.AGENT, Role.USER, Role.SYSTEM, Role.AGENT]
    assert call.turns[1].text == "I am calling about my recent order."
    assert call.metadata["turn_end_s"] == "next turn's start"

    assert [(c.product, c.amount, c.currency, c.quantity, c.unit) for c in call.cost] == [
        ("call", pytest.approx(0.0675), "USD", pytest.approx(0.75), "minute")
    ]
    assert call.usage.audio_s == pytest.approx(45.0)
    [recording] = call.recordings
    assert recording.source_url == "https://server.aws.dialpad.example/recordings/c1234567.mp3"
    assert recording.channel_map == {}  # Bland documents no channel layout
    assert call.vendor_analysis == {
        "summary": "The customer asked about a recent order.",
        "analysis": {"order_found": True},
        "disposition_tag": "Resolved",
    }
    bland = call.metadata["bland"]
    assert isinstance(bland, dict)
    for key in ("c_id", "batch_id", "to", "from", "answered_by", "queue_status", "status", "completed"):
        assert bland[key] == load("immediate")[key]
    assert bland["variables"] == {"order_id": "A-1001"}
    assert bland["metadata"] == {"crm_id": "lead-77"}
    assert bland["request_data"] == {"phone_number": "+15551234567"}
    assert bland["corrected_duration"] == 45
    assert bland["raw_roles"] == {"2": "agent-action"}
    assert call.tool_calls == [], "pathway_logs in no documented shape maps to no tool call"
    assert assembled.warnings == ()


def test_corrected_webhook_completes_the_call() -> None:
    merged = SOURCE.assemble([load("immediate"), load("corrected")]).call
    # The corrected transcript wins, with its own times in seconds.
    assert [(t.role, t.start_s, t.end_s) for t in merged.turns] == [
        (Role.AGENT, 0.5, 3.2),
        (Role.USER, 3.9, 5.6),
        (Role.AGENT, 9.8, 11.4),
    ]
    assert merged.turns[1].text == "I'm calling about my recent order."
    assert "turn_end_s" not in merged.metadata
    assert (
        merged.vendor_analysis["summary"] == "The customer asked about order A-1001, which shipped yesterday."
    )
    assert merged.vendor_analysis["citations"] == load("corrected")["citations"]
    # Fields only the immediate webhook has are kept, and a later null does not erase a value.
    assert merged.cost[0].amount == pytest.approx(0.0675)
    assert merged.recordings[0].source_url is not None
    assert merged.vendor_analysis["disposition_tag"] == "Resolved"
    assert merged.started_at == STARTED
    # A retried immediate webhook arriving after the corrected one does not undo the correction.
    replayed = SOURCE.assemble([load("immediate"), load("corrected"), load("immediate")]).call
    assert replayed.turns == merged.turns and replayed.vendor_analysis == merged.vendor_analysis


def with_pathway_events(name: str) -> dict[str, Any]:
    """The webhook ``name`` with the documented pathway events as its ``pathway_logs``."""
    return load(name) | {"pathway_logs": load("pathway_events")["events"]}


def test_pathway_events_become_tool_calls_linked_to_their_results() -> None:
    assembled = SOURCE.assemble([with_pathway_events("immediate")])
    webhook, sms, transfer = assembled.call.tool_calls
    # Paired by operation_id = the invoke's sequence, in sequence order whatever the listing order.
    assert (webhook.id, webhook.name, webhook.turn_index) == ("pathway-6", "webhook:node_order_lookup", 1)
    assert webhook.arguments == {
        "method": "POST",
        "url": "https://crm.example/orders/lookup",
        "body": {"order_id": "A-1001"},
    }
    assert webhook.result == {"status_code": 200, "response": {"order_id": "A-1001", "status": "shipped"}}
    assert webhook.success is True, "a warning (a retry) does not make the operation fail"
    assert (webhook.start_s, webhook.end_s) == (pytest.approx(6.1), pytest.approx(7.4))
    assert (sms.name, sms.turn_index, sms.success) == ("send_confirmation_sms", 3, False)
    assert sms.arguments == {"name": "send_confirmation_sms", "input": {"to": "+15551234567"}}
    assert sms.result == {"message": "SMS provider timed out", "timeout_ms": 5000}
    assert (sms.start_s, sms.end_s) == (pytest.approx(10.5), pytest.approx(15.5))
    assert (transfer.name, transfer.success, transfer.result, transfer.end_s) == (
        "transfer:node_transfer",
        None,
        None,
        None,
    ), "an invocation nothing answered"
    assert assembled.warnings == ()


def test_tool_calls_are_placed_on_the_corrected_turns() -> None:
    merged = SOURCE.assemble([load("immediate"), with_pathway_events("corrected")]).call
    assert [(t.name, t.turn_index) for t in merged.tool_calls] == [
        ("webhook:node_order_lookup", 1),
        ("send_confirmation_sms", 2),
        ("transfer:node_transfer", 2),
    ]


def test_pathway_event_oddities_are_warnings() -> None:
    events = load("pathway_events")["events"]
    events.append({"sequence": 20, "event_type": "operation.result", "operation_id": 99, "payload": {}})
    events.append({"event_type": "webhook.invoke", "payload": {}})
    events[1]["created_at"] = "2024-01-15T10:30:05.000Z"  # the webhook's result, before its invoke
    events.append({"sequence": 0, "event_type": "tool.invoke", "created_at": "2024-01-15T10:29:59.000Z"})
    assembled = SOURCE.assemble([load("immediate") | {"pathway_logs": events}])
    early, webhook, _, _ = assembled.call.tool_calls
    assert (early.start_s, early.turn_index) == (0.0, None), "before the first turn"
    assert webhook.end_s == webhook.start_s
    text = " | ".join(assembled.warnings)
    for expected in (
        "operation 99, which has no invoke event",
        "event without a sequence",
        "answers operation 6 before it was invoked",
        "before the call started",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("event", "where"),
    [
        ({"event_type": "tool.invoke", "sequence": "one"}, "sequence"),
        ({"event_type": "tool.invoke", "sequence": 1, "created_at": "yesterday"}, "created_at"),
        ({"event_type": "operation.result", "sequence": 2, "operation_id": 1.5}, "operation_id"),
    ],
)
def test_malformed_pathway_event_names_its_field(event: dict[str, Any], where: str) -> None:
    with pytest.raises(PayloadError, match=rf"pathway_logs\[0\]\.{where}"):
        SOURCE.assemble([load("immediate") | {"pathway_logs": [event]}])


def test_corrected_alone_needs_a_start_time() -> None:
    with pytest.raises(PayloadError, match="started_at"):
        SOURCE.assemble([load("corrected")])


@pytest.mark.parametrize(
    ("changes", "expected", "raw"),
    [
        ({"answered_by": "voicemail"}, EndReason.VOICEMAIL, "answered_by:voicemail"),
        ({"transferred_to": "+15550000"}, EndReason.TRANSFER, "transferred_to:USER"),
        ({"call_ended_by": "ASSISTANT"}, EndReason.AGENT_HANGUP, "ASSISTANT"),
        ({"call_ended_by": "SYSTEM"}, EndReason.OTHER, "SYSTEM"),
        ({"call_ended_by": None, "error_message": "No answer"}, EndReason.ERROR, "error_message"),
        ({"call_ended_by": None}, EndReason.UNKNOWN, None),
    ],
)
def test_end_reason(changes: dict[str, Any], expected: EndReason, raw: str | None) -> None:
    payload = load("immediate") | changes
    call = SOURCE.assemble([payload]).call
    assert (call.end_reason, call.end_reason_raw) == (expected, raw)


def test_inbound_and_missing_direction() -> None:
    assert SOURCE.assemble([load("immediate") | {"inbound": True}]).call.direction is Direction.INBOUND
    payload = load("immediate")
    del payload["inbound"]
    assert SOURCE.assemble([payload]).call.direction is Direction.UNKNOWN


def test_recoverable_oddities_are_warnings() -> None:
    payload = load("immediate")
    payload["transcripts"][0]["created_at"] = "2024-01-15T10:29:59.000Z"  # before the call started
    payload["transcripts"][3]["created_at"] = "2024-01-15T10:30:08.000Z"  # before the entry above it
    payload["transcripts"][2]["user"] = "narrator"
    payload["started_at"] = "2024-01-15T10:30:00"  # no offset
    assembled = SOURCE.assemble([payload])
    call = assembled.call
    assert call.turns[0].start_s == 0.0
    assert call.turns[2].role is Role.SYSTEM
    assert call.turns[2].end_s == call.turns[2].start_s  # no negative span
    text = " | ".join(assembled.warnings)
    for expected in ("before the call started", "transcripts[3]", "'narrator'", "no UTC offset"):
        assert expected in text


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ([], r"\(body\)"),
        ({"summary": "x"}, "call_id"),
        ({"call_id": 7}, "call_id"),
    ],
)
def test_identify_names_the_problem(payload: Any, where: str) -> None:
    with pytest.raises(PayloadError, match=where):
        SOURCE.identify(payload)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"started_at": "yesterday"}, "started_at"),
        ({"transcripts": [{"text": "hi", "user": "user"}]}, r"transcripts\[0\].created_at"),
        ({"price": "cheap"}, "price"),
        ({"call_length": "long"}, "call_length"),
    ],
)
def test_assemble_names_the_problem(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(PayloadError, match=where):
        SOURCE.assemble([load("immediate") | changes])


def test_events_of_two_calls_are_refused() -> None:
    other = load("corrected") | {"call_id": "another"}
    with pytest.raises(PayloadError, match="different calls"):
        SOURCE.assemble([load("immediate"), other])


SECRET = "bland_signing_secret"
BODY = json.dumps(load("immediate")).encode()


def test_signature_accepted() -> None:
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    SOURCE.verify({"x-webhook-signature": digest}, BODY, SECRET, now=datetime.now(UTC))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        ({"x-webhook-signature": "00" * 32}, "does not match"),
        ({"x-webhook-signature": hmac.new(b"other", BODY, hashlib.sha256).hexdigest()}, "does not match"),
    ],
)
def test_signature_rejected(headers: dict[str, str], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        SOURCE.verify(headers, BODY, SECRET, now=datetime.now(UTC))


FIELDS = [
    "call_id",
    "pathway_logs",
    "started_at",
    "created_at",
    "call_length",
    "inbound",
    "price",
    "transcripts",
    "corrected_transcript",
    "answered_by",
    "call_ended_by",
    "recording_url",
    "transferred_to",
]


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.tuples(st.sampled_from(FIELDS), json_values, st.booleans())))
def test_fuzz_only_payload_errors(case: Any) -> None:
    if isinstance(case, tuple):
        field, value, corrected = case
        events = [load("immediate") | {field: value}]
        if corrected:
            events.append(load("corrected") | {field: value})
    else:
        events = [case]
    only_payload_errors(SOURCE, *events)


PATHWAY_EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(["webhook.invoke", "operation.result", "operation.error", "x"]),
            "sequence": st.one_of(st.integers(-3, 3), json_values),
            "operation_id": st.one_of(st.integers(-3, 3), json_values),
            "node_id": json_values,
            "payload": json_values,
            "created_at": st.one_of(st.just("2024-01-15T10:30:01Z"), json_values),
        }
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(PATHWAY_EVENTS)
def test_fuzz_pathway_events_only_payload_errors(events: list[dict[str, Any]]) -> None:
    try:
        SOURCE.assemble([load("immediate") | {"pathway_logs": events}])
    except PayloadError:
        pass


@pytest.fixture
def app_client(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[tuple[TestClient, Services]]:
    services = open_services(
        Settings(data_dir=tmp_path / "data", init_api_key=API_KEY), store=clickhouse_store
    )
    yield TestClient(create_app(services, run_worker=False)), services
    services.meta.close()


API_KEY = "cvs_test_key_bland_round_trip_0001"


def test_round_trip_through_the_webhook_endpoint(app_client: tuple[TestClient, Services]) -> None:
    """Both webhooks, posted as Bland posts them (key in the URL, signed), become one stored call."""
    client, services = app_client
    project_id = services.meta.ensure_project("default").id
    services.meta.update_project_settings(project_id, ("sources", "bland", "secret"), SECRET)
    ids = set()
    for name in ("immediate", "corrected"):
        body = json.dumps(load(name)).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        unsigned = client.post(f"/api/v1/ingest/bland?key={API_KEY}", content=body)
        assert unsigned.status_code == 401
        answer = client.post(
            f"/api/v1/ingest/bland?key={API_KEY}", content=body, headers={"x-webhook-signature": signature}
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["event_type"] == name
        ids.add(answer.json()["id"])
        while services.worker.drain_once():
            pass
    [call_id] = ids
    stored = client.get(f"/api/v1/calls/{call_id}", headers={"Authorization": f"Bearer {API_KEY}"})
    call = stored.json()["call"]
    assert [t["text"] for t in call["turns"]][1] == "I'm calling about my recent order."
    assert call["turns"][0]["start_s"] == 0.5
    assert call["cost"][0]["amount"] == pytest.approx(0.0675)
    assert call["vendor_analysis"]["citations"][0]["value"] == "A-1001"
    assert call["started_at"].startswith("2024-01-15T10:30:00")


def test_tool_calls_round_trip_through_the_webhook_endpoint(app_client: tuple[TestClient, Services]) -> None:
    client, services = app_client
    body = json.dumps(with_pathway_events("immediate")).encode()
    answer = client.post(f"/api/v1/ingest/bland?key={API_KEY}", content=body)
    assert answer.status_code == 202, answer.text
    while services.worker.drain_once():
        pass
    stored = client.get(
        f"/api/v1/calls/{answer.json()['id']}", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    tools = stored.json()["call"]["tool_calls"]
    assert [(t["name"], t["turn_index"], t["success"]) for t in tools] == [
        ("webhook:node_order_lookup", 1, True),
        ("send_confirmation_sms", 3, False),
        ("transfer:node_transfer", 3, None),
    ]
    assert tools[0]["result"]["response"]["status"] == "shipped"


def test_invalid_json_like_blands_docs_sample_is_a_400(app_client: tuple[TestClient, Services]) -> None:
    client, _ = app_client
    broken = json.dumps(load("immediate")).replace('"order_id": "A-1001"}', '"order_id": "A-1001" "x": 1}')
    answer = client.post(f"/api/v1/ingest/bland?key={API_KEY}", content=broken.encode())
    assert answer.status_code == 400 and "JSON" in answer.text
