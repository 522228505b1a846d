"""Property: every request answered 202 ends stored or dead-lettered with a reason, never left pending,
and a valid call sent after it is stored, on the canonical, vendor and OTLP paths.

Inputs are generated up to and past every bound of the model and the store: indexes at and over
``UInt32``, times at and outside the store's range, JSON nested at and over the depth limit, identifiers
at and over their length, unknown enum values, big integers and odd text. Whatever the edge accepts must
be storable; whatever it cannot store it must refuse with a 4xx naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convoscope.config import Settings
from convoscope.model.bounds import MAX_JSON_DEPTH, MAX_SHORT_TEXT, MAX_TAGS, UINT32_MAX
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.base import CallFilter
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import call_payload

KEY = "cvs_test_key_properties_project_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "fixtures"

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    settings_ = Settings(
        data_dir=tmp_path / "data", init_api_key=KEY, otlp_settle_s=0.0, outbox_max_attempts=1
    )
    opened = open_services(settings_, store=clickhouse_store)
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services, run_worker=False))


@pytest.fixture
def settle(services: Services, client: TestClient) -> Callable[[list[int]], None]:
    """Drain the outbox, then check that each acknowledged request ended done or failed with a reason."""

    def run(ingest_ids: list[int]) -> None:
        while services.worker.drain_once():
            pass
        for ingest_id in ingest_ids:
            status = client.get(f"/api/v1/ingest/{ingest_id}", headers=AUTH).json()
            assert status["status"] in ("done", "failed"), status
            if status["status"] == "failed":
                assert status["error"], status

    return run


def _stored(services: Services, external_id: str) -> bool:
    page = services.store.list_calls(services.default_project.id, CallFilter(), limit=1000, cursor=None)
    return any(item.external_id == external_id for item in page.items)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return value


_edge_ints = st.sampled_from([0, 1, UINT32_MAX - 1, UINT32_MAX, UINT32_MAX + 1, 2**63 - 1, 2**63, 2**64, -1])
_edge_times = st.sampled_from(
    [
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00Z",
        "2026-11-24T09:30:00+05:30",
        "2299-12-31T23:59:59Z",
        "2300-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ]
)
_edge_depth = st.sampled_from([1, 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 200, 254, 400])
_edge_length = st.sampled_from([0, 1, MAX_SHORT_TEXT, MAX_SHORT_TEXT + 1])
_odd_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Z", "Cc", "Co"]), max_size=40
)
_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324])
)


@st.composite
def canonical_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A call with one or more fields pushed to or past a bound."""
    body = call_payload(
        external_id="prop-" + draw(st.text(alphabet="abcdef0123456789", min_size=8, max_size=8))
    )
    edits = draw(
        st.lists(
            st.sampled_from(
                [
                    "turn_index",
                    "tool_turn_index",
                    "started_at",
                    "ended_at",
                    "metadata_depth",
                    "args_depth",
                    "agent_id",
                    "tags",
                    "text",
                    "floats",
                    "usage",
                    "enum",
                    "end_before_start",
                ]
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    if "turn_index" in edits:
        body["turns"] = [{"index": draw(_edge_ints), "role": "agent", "text": "hi", "start_s": 0, "end_s": 1}]
    if "tool_turn_index" in edits:
        body["tool_calls"] = [{"id": "t1", "name": "lookup", "turn_index": draw(_edge_ints), "success": True}]
    if "started_at" in edits:
        body["started_at"] = draw(_edge_times)
    if "ended_at" in edits:
        body["ended_at"] = draw(_edge_times)
    if "metadata_depth" in edits:
        body["metadata"] = {"deep": _nested(draw(_edge_depth))}
    if "args_depth" in edits:
        body["tool_calls"] = [{"id": "t2", "name": "f", "arguments": _nested(draw(_edge_depth))}]
    if "agent_id" in edits:
        body["agent_id"] = "a" * draw(_edge_length)
    if "tags" in edits:
        body["tags"] = ["t"] * draw(st.sampled_from([0, MAX_TAGS, MAX_TAGS + 1]))
    if "text" in edits:
        body["turns"][0]["text"] = draw(_odd_text)
        body["metadata"] = {draw(_odd_text): draw(_odd_text)}
    if "floats" in edits:
        body["duration_s"] = abs(draw(_floats))
        body["cost"] = [{"product": "llm", "amount": draw(_floats), "quantity": draw(_floats)}]
    if "usage" in edits:
        body["usage"] = {"llm_prompt_tokens": draw(_edge_ints), "extra": {"x": draw(_floats)}}
    if "enum" in edits:
        body["end_reason"] = draw(st.sampled_from(["user_hangup", "not-a-reason", ""]))
    if "end_before_start" in edits:
        body["turns"][0] = {**body["turns"][0], "start_s": 5.0, "end_s": 1.0}
    return body


@PROPERTY
@given(call=canonical_calls())
def test_canonical_calls_are_stored_or_refused_never_left_pending(
    services: Services, client: TestClient, settle: Callable[[list[int]], None], call: dict[str, Any]
) -> None:
    response = client.post("/api/v1/calls", content=json.dumps(call), headers=AUTH)
    behind = call_payload(external_id="behind-" + call["external_id"])
    follow = client.post("/api/v1/calls", json=behind, headers=AUTH)
    assert follow.status_code == 202
    if response.status_code == 202:
        settle([response.json()["ingest_id"], follow.json()["ingest_id"]])
        status = client.get(f"/api/v1/ingest/{response.json()['ingest_id']}", headers=AUTH).json()
        # The edge accepted it, so the store must hold it: a dead letter here is a missing bound.
        assert status["status"] == "done", status
        assert _stored(services, call["external_id"])
    else:
        assert response.status_code in (413, 422), response.text
        error = response.json()["error"]
        assert error["details"] and all(detail["loc"] for detail in error["details"])
        settle([follow.json()["ingest_id"]])
    assert _stored(services, behind["external_id"])


def _retell(mutate: Callable[[dict[str, Any]], None], call_id: str) -> bytes:
    document = json.loads((FIXTURES / "retell" / "call_ended.json").read_text())
    document.pop("_comment", None)
    document["call"]["call_id"] = call_id
    mutate(document["call"])
    return json.dumps(document).encode()


@st.composite
def retell_mutations(draw: st.DrawFn) -> Callable[[dict[str, Any]], None]:
    """Edits of a Retell ``call_ended`` event: unknown enums, timestamps the store cannot hold, odd sizes."""
    field = draw(
        st.sampled_from(
            [
                "call_status",
                "disconnection_reason",
                "direction",
                "start_timestamp",
                "end_timestamp",
                "duration_ms",
                "agent_version",
                "metadata",
                "transcript_object",
                "agent_id",
            ]
        )
    )
    value: Any
    if field in ("start_timestamp", "end_timestamp", "duration_ms"):
        value = draw(st.sampled_from([0, -1, 2**31, 10**13, 10**15, 2**63 - 1, 2**64, 1.5e300]))
    elif field == "metadata":
        value = {"deep": _nested(draw(_edge_depth))}
    elif field == "transcript_object":
        value = [{"role": draw(st.sampled_from(["agent", "user", "robot", ""])), "content": draw(_odd_text)}]
    elif field == "agent_id":
        value = "a" * draw(_edge_length)
    elif field == "agent_version":
        value = draw(st.sampled_from([0, -1, 2**64, "v1", None]))
    else:
        value = draw(st.sampled_from(["ended", "weird_new_value", "", "x" * (MAX_SHORT_TEXT + 1)]))

    def mutate(call: dict[str, Any]) -> None:
        call[field] = value

    return mutate


@PROPERTY
@given(mutate=retell_mutations(), suffix=st.integers(min_value=0, max_value=10**9))
def test_vendor_events_are_stored_or_refused_never_left_pending(
    services: Services,
    client: TestClient,
    settle: Callable[[list[int]], None],
    mutate: Callable[[dict[str, Any]], None],
    suffix: int,
) -> None:
    call_id = f"prop_{suffix}"
    response = client.post("/api/v1/ingest/retell", content=_retell(mutate, call_id), headers=AUTH)
    follow = client.post(
        "/api/v1/ingest/retell", content=_retell(lambda call: None, f"behind_{suffix}"), headers=AUTH
    )
    assert follow.status_code == 202, follow.text
    assert response.status_code < 500, response.text
    ids = [follow.json()["ingest_id"]]
    if response.status_code == 202:
        ids.append(response.json()["ingest_id"])
    else:
        assert response.status_code in (400, 413, 422), response.text
        assert response.json()["error"]["message"]
    settle(ids)
    if response.status_code == 202:
        status = client.get(f"/api/v1/ingest/{response.json()['ingest_id']}", headers=AUTH).json()
        assert status["status"] == "done", status
        assert _stored(services, call_id)
    assert _stored(services, f"behind_{suffix}")


DEEP = "(deep value)"
"""Stands for a deeply nested value in a document until it is encoded (``_otlp_document``'s ``deep``)."""


def _otlp_document(
    trace_id: str, attributes: list[dict[str, Any]], start: Any, end: Any, kind: Any, deep: str = "null"
) -> bytes:
    span = {
        "traceId": trace_id,
        "spanId": "00f067aa0ba902b7",
        "name": "conversation",
        "kind": kind,
        "startTimeUnixNano": start,
        "endTimeUnixNano": end,
        "attributes": [
            {"key": "conversation.id", "value": {"stringValue": f"conv-{trace_id[:8]}"}},
            *attributes,
        ],
        "status": {"code": kind if isinstance(kind, int) else 0},
    }
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "agent"}}]},
                "scopeSpans": [{"scope": {"name": "pipecat"}, "spans": [span]}],
            }
        ]
    }
    return orjson.dumps(document).replace(b'"' + DEEP.encode() + b'"', deep.encode())


def _any_value(depth: int) -> str:
    """An OTLP/JSON ``AnyValue`` nesting ``depth`` values deep, as text (deeper than any encoder allows)."""
    text = '{"stringValue": "leaf"}'
    for level in range(depth - 1):
        if level % 2:
            text = '{"arrayValue": {"values": [' + text + "]}}"
        else:
            text = '{"kvlistValue": {"values": [{"key": "k", "value": ' + text + "}]}}"
    return text


@st.composite
def otlp_spans(draw: st.DrawFn) -> dict[str, Any]:
    """Span parts at and past their bounds: nesting, 64-bit integers, timestamps, unknown enums.

    Nesting is drawn as a depth and built in the test, so a failing example prints short.
    """
    nanos = st.sampled_from(
        ["0", "1767607200000000000", str(2**63 - 1), str(2**64 - 1), str(2**64), "-5", "x"]
    )
    return {
        "depth": draw(_edge_depth),
        "int": str(draw(_edge_ints)),
        "double": draw(_floats),
        "key": draw(_odd_text) or "k",
        "text": draw(_odd_text),
        "start": draw(nanos),
        "end": draw(nanos),
        "kind": draw(st.sampled_from([0, 1, 2, 5, 6, 99, -1, "SPAN_KIND_SERVER", "SPAN_KIND_WHATEVER"])),
    }


@PROPERTY
@given(parts=otlp_spans(), seed=st.integers(min_value=1, max_value=2**64 - 1))
def test_otlp_exports_are_stored_or_refused_never_left_pending(
    services: Services,
    client: TestClient,
    settle: Callable[[list[int]], None],
    parts: dict[str, Any],
    seed: int,
) -> None:
    attributes = [
        {"key": "deep", "value": DEEP},
        {"key": "int", "value": {"intValue": parts["int"]}},
        {"key": "double", "value": {"doubleValue": parts["double"]}},
        {"key": parts["key"], "value": {"stringValue": parts["text"]}},
    ]
    trace_id = f"{seed:032x}"
    headers = {**AUTH, "content-type": "application/json"}
    sent = _otlp_document(
        trace_id, attributes, parts["start"], parts["end"], parts["kind"], _any_value(parts["depth"])
    )
    response = client.post("/v1/traces", content=sent, headers=headers)
    assert response.status_code < 500, response.text
    valid_trace = f"{seed ^ (1 << 100):032x}"
    good = _otlp_document(valid_trace, [], "1767607200000000000", "1767607201000000000", 1)
    follow = client.post("/v1/traces", content=good, headers=headers)
    assert follow.status_code == 200, follow.text
    settle([])
    assert services.meta.pending_count() == 0
    spans = f"`{services.store.database}`.spans"
    rows = services.store.query(
        f"SELECT trace_id FROM {spans} WHERE trace_id IN ({{a:String}}, {{b:String}})",
        {"a": trace_id, "b": valid_trace},
    )
    stored = {row[0] for row in rows}
    assert valid_trace in stored
    answer = orjson.loads(response.content) if response.status_code == 200 else {}
    if response.status_code == 200 and not answer.get("partialSuccess", {}).get("rejectedSpans"):
        assert trace_id in stored, "a span the receiver accepted was not stored"
