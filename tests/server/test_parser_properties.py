"""Property: bodies no parser can read get a 4xx with a message from the real endpoints, never a 5xx.

Through the app over real stores: OTLP trace and log exports (random bytes, truncated or corrupted
protobuf, gzip of either, mutated JSON) and every vendor webhook (its recorded payload edited, or nested
far deeper than any encoder writes). A 4xx must carry a message (the google.rpc ``Status`` for protobuf,
the JSON error otherwise) and leave nothing in the outbox; whatever is answered 2xx must be committed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore

KEY = "cvs_test_key_parser_properties_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "fixtures"
PROTOBUF = "application/x-protobuf"

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    opened = open_services(
        Settings(data_dir=tmp_path / "data", init_api_key=KEY, otlp_settle_s=0.0), store=clickhouse_store
    )
    yield opened
    opened.meta.close()


@pytest.fixture
def client(services: Services) -> TestClient:
    # raise_server_exceptions: an unhandled exception fails the example outright, with its traceback.
    return TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


def _valid_export() -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index in range(2):
        span = scope.spans.add()
        span.trace_id, span.span_id = bytes(range(1, 17)), bytes([index + 1] * 8)
        span.name = "llm"
        span.start_time_unix_nano, span.end_time_unix_nano = (
            1_767_607_200_000_000_000,
            1_767_607_201_000_000_000,
        )
        attribute = span.attributes.add()
        attribute.key = "conversation.id"
        attribute.value.string_value = "conv-properties"
    return request.SerializeToString()


VALID = _valid_export()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    damage = draw(st.sampled_from(["cut", "flip", "append", "random"]))
    if damage == "cut":
        return VALID[: draw(st.integers(1, len(VALID) - 1))]
    if damage == "flip":
        at = draw(st.integers(0, len(VALID) - 1))
        return VALID[:at] + bytes([VALID[at] ^ draw(st.integers(1, 255))]) + VALID[at + 1 :]
    if damage == "append":
        return VALID + draw(st.binary(min_size=1, max_size=16))
    return draw(st.binary(min_size=1, max_size=64))


def _message(response: Any) -> str:
    if response.headers["content-type"].startswith(PROTOBUF):
        status = status_pb2.Status()
        status.ParseFromString(response.content)
        return str(status.message)
    body = response.json()
    message = body.get("message") or body.get("error", {}).get("message")
    return str(message or "")


@PROPERTY
@given(
    path=st.sampled_from(["/v1/traces", "/v1/logs"]),
    body=damaged(),
    media=st.sampled_from([PROTOBUF, "application/json"]),
    gzipped=st.booleans(),
)
def test_damaged_otlp_exports_get_a_4xx_with_a_message(
    services: Services, client: TestClient, path: str, body: bytes, media: str, gzipped: bool
) -> None:
    headers = {**AUTH, "content-type": media}
    if gzipped:
        body, headers["content-encoding"] = gzip.compress(body), "gzip"
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 413, 415), response.status_code
        assert _message(response).strip()
        assert services.meta.pending_count() == 0
    else:
        # What was committed must be storable: the worker takes it out of the outbox.
        assert response.status_code == 200
        while services.worker.drain_once():
            pass
        assert services.meta.pending_count() == 0


# -- vendor webhooks -----------------------------------------------------------------------------------


def _payload(vendor: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / vendor / f"{name}.json").read_text())
    document.pop("_comment", None)
    return document


VENDORS = {
    "retell": _payload("retell", "call_ended"),
    "vapi": _payload("vapi", "end_of_call_report"),
    "elevenlabs": _payload("elevenlabs", "post_call_transcription"),
    "bland": _payload("bland", "immediate"),
    "webex": _payload("webex", "capture"),
    "generic": _payload("generic", "call"),
}


def _nested_text(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@st.composite
def vendor_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A vendor's recorded payload with one top-level field nested deep, dropped or given odd JSON."""
    vendor = draw(st.sampled_from(sorted(VENDORS)))
    document = dict(VENDORS[vendor])
    key = draw(st.sampled_from(sorted(document)))
    edit = draw(st.sampled_from(["deep", "drop", "odd"]))
    if edit == "drop":
        del document[key]
        return vendor, orjson.dumps(document)
    if edit == "odd":
        document[key] = draw(st.sampled_from([None, [], {}, -1, 1.8446744073709552e19, "\u0000", "x" * 5000]))
        return vendor, orjson.dumps(document)
    document[key] = "DEEP"
    depth = draw(st.sampled_from([64, 254, 256, 1000]))
    return vendor, orjson.dumps(document).replace(b'"DEEP"', _nested_text(depth))


@PROPERTY
@given(case=vendor_bodies())
# Found by the adapter property: a body nested past 255 levels failed re-encoding for its event key (500).
@example(case=("bland", orjson.dumps(VENDORS["bland"]).replace(b"}", b',"x":' + _nested_text(300) + b"}", 1)))
def test_vendor_webhooks_answer_a_4xx_with_a_message_or_commit(
    services: Services, client: TestClient, case: tuple[str, bytes]
) -> None:
    vendor, body = case
    before = services.meta.pending_count()
    response = client.post(
        f"/api/v1/ingest/{vendor}", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.status_code in (400, 413, 422), response.text
        assert _message(response).strip()
        assert services.meta.pending_count() == before
    elif response.json().get("accepted", True):
        assert response.status_code == 202, response.text
        assert services.meta.pending_count() == before + 1
