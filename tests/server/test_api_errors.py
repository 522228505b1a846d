"""One error shape everywhere, and the OpenAPI document and the handlers agreeing on what is valid.

Each test reproduces a finding of the contract fuzzer (``tests/integration/test_api_contract.py``) on
its own: errors the framework raised answered in its ``{"detail": ...}`` shape, statuses the document
did not declare, valid requests refused, invalid ones accepted, an ``Allow`` naming one method of a
path that takes two.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from convoscope.testing import call_payload


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The response is ``status`` with the API's error body of type ``kind``; returns that body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message", "details"}
    assert body["error"]["type"] == kind
    return dict(body["error"])


def test_unreadable_multipart_bodies_answer_in_the_error_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    no_boundary = client.post(
        "/api/v1/calls", content=b"--x\r\n", headers={**auth, "Content-Type": "multipart/form-data"}
    )
    error = _error(no_boundary, 400, "PayloadError")
    assert error["message"].startswith("invalid multipart/form-data body")
    assert error["details"][0]["loc"] == "body"
    broken = client.post(
        "/api/v1/calls",
        content=b"--b\r\n[{}]--b--\r\n",
        headers={**auth, "Content-Type": "multipart/form-data; boundary=b"},
    )
    _error(broken, 400, "PayloadError")
    too_many = client.post(
        "/api/v1/calls",
        files={f"extra{i}": (None, "x") for i in range(9)},
        headers=auth,
    )
    assert "Too many fields" in _error(too_many, 400, "PayloadError")["message"]


def test_unknown_paths_and_methods_answer_in_the_error_shape(
    client: TestClient, auth: dict[str, str]
) -> None:
    assert _error(client.get("/api/v1/nothing", headers=auth), 404, "NotFound")["message"] == (
        "no route for GET /api/v1/nothing"
    )
    options = client.options("/api/v1/calls", headers=auth)
    _error(options, 405, "MethodNotAllowed")
    assert options.headers["allow"] == "GET, POST"  # both routes of the path, not the first one matched
    assert client.options("/api/v1/agents/a/profile", headers=auth).headers["allow"] == "GET, PUT"


def test_ingest_ids_and_vendor_names_route_apart(client: TestClient, auth: dict[str, str]) -> None:
    posted = client.post("/api/v1/ingest/17", json={}, headers=auth)
    _error(posted, 405, "MethodNotAllowed")
    assert posted.headers["allow"] == "GET"
    got = client.get("/api/v1/ingest/retell", headers=auth)
    _error(got, 405, "MethodNotAllowed")
    assert got.headers["allow"] == "POST"
    _error(client.post("/api/v1/ingest/nosuch", json={}, headers=auth), 404, "NotFound")


def test_an_empty_cursor_is_the_first_page(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    assert client.post("/api/v1/calls", json=[call_payload(external_id="a")], headers=auth).status_code == 202
    drain()
    first = client.get("/api/v1/calls", headers=auth).json()
    assert client.get("/api/v1/calls?cursor=", headers=auth).json() == first
    error = _error(client.get("/api/v1/calls?cursor=garbage", headers=auth), 422, "PayloadError")
    assert error["details"][0]["loc"] == "query.cursor"


@pytest.mark.parametrize("value", ["0", "0.5", "2025-01-31", "2025-01-31T09:30:00"])
def test_timestamps_are_rfc3339_with_an_offset(client: TestClient, auth: dict[str, str], value: str) -> None:
    calls = client.get("/api/v1/calls", params={"since": value}, headers=auth)
    assert _error(calls, 422, "PayloadError")["details"][0]["loc"] == "query.since"
    series = client.get("/api/v1/metrics/timeseries", params={"field": "calls", "until": value}, headers=auth)
    assert _error(series, 422, "PayloadError")["details"][0]["loc"] == "query.until"


@pytest.mark.parametrize("since", [0, 1.5, "0", "2025-01-31"])
def test_evaluation_since_must_be_a_timestamp(
    client: TestClient, auth: dict[str, str], since: object
) -> None:
    for route in ("/api/v1/jobs/evals.run", "/api/v1/jobs/audio.analyze"):
        refused = client.post(route, json={"since": since}, headers=auth)
        assert _error(refused, 422, "PayloadError")["details"][0]["loc"] == "body.since"
    accepted = client.post(
        "/api/v1/jobs/evals.run", json={"since": "2025-01-31T00:00:00+02:00"}, headers=auth
    )
    assert accepted.status_code == 202, accepted.text


def test_trace_ids_are_declared_and_checked_as_32_hex_digits(
    client: TestClient, auth: dict[str, str]
) -> None:
    error = _error(client.get("/api/v1/traces/0", headers=auth), 422, "PayloadError")
    assert error["details"][0]["loc"] == "path.trace_id"
    _error(client.get(f"/api/v1/traces/{'0' * 32}", headers=auth), 404, "NotFound")
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/traces/{trace_id}"]["get"]
    (param,) = [p for p in operation["parameters"] if p["name"] == "trace_id"]
    assert param["schema"]["pattern"] == "^[0-9a-f]{32}$"


def test_series_of_a_metric_nobody_scored_is_empty(client: TestClient, auth: dict[str, str]) -> None:
    for field in ("metric:nobody_scored_this", "passed:nor_this"):
        response = client.get("/api/v1/metrics/timeseries", params={"field": field}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["points"] == []
    backwards = client.get(
        "/api/v1/metrics/timeseries",
        params={"field": "calls", "since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        headers=auth,
    )
    assert backwards.status_code == 200 and backwards.json()["points"] == []
    unknown = client.get("/api/v1/metrics/timeseries", params={"field": ""}, headers=auth)
    assert _error(unknown, 422, "PayloadError")["details"][0]["loc"] == "query.field"


def test_otlp_asks_for_a_key_before_a_content_type(client: TestClient) -> None:
    response = client.post("/v1/traces", content=b"")
    assert response.status_code == 401
    assert response.json()["code"] == 16  # google.rpc.Status UNAUTHENTICATED, as OTLP/HTTP requires


def test_openapi_declares_every_error_status_with_the_error_body(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "Error" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A project API key (`convoscope keys create`).",
    }
    paths = document["paths"]
    get_call = paths["/api/v1/calls/{call_id}"]["get"]
    assert {"401", "404", "503"} <= set(get_call["responses"])
    assert "422" not in get_call["responses"]  # a plain string id cannot fail validation
    assert get_call["security"] == [{"bearer": []}]
    ingest = paths["/api/v1/calls"]["post"]
    assert {"400", "401", "413", "422", "503"} <= set(ingest["responses"])
    assert set(ingest["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    for receiver in ("/v1/traces", "/v1/logs"):
        assert set(paths[receiver]["post"]["requestBody"]["content"]) == {
            "application/x-protobuf",
            "application/json",
        }
    assert "405" in paths["/api/v1/ingest/{source}"]["post"]["responses"]
    for path, item in paths.items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and path not in ("/v1/traces", "/v1/logs", "/healthz"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_an_unsatisfiable_range_answers_in_the_error_shape(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    wav = _wav_bytes()
    posted = client.post(
        "/api/v1/calls",
        files={"call": (None, _call_json()), "recording": ("r.wav", wav, "audio/wav")},
        headers=auth,
    )
    assert posted.status_code == 202, posted.text
    drain()
    call_id = posted.json()["ids"][0]
    response = client.get(f"/api/v1/calls/{call_id}/recording", headers={**auth, "Range": "bytes=99999999-"})
    _error(response, 416, "RangeNotSatisfiable")
    assert response.headers["content-range"] == f"bytes */{len(wav)}"


def _call_json() -> str:
    return orjson.dumps(call_payload(external_id="ranged")).decode()


def _wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 8000)
    return buffer.getvalue()


def test_multipart_parts_are_the_declared_ones(
    client: TestClient, auth: dict[str, str], services: Any
) -> None:
    declared = client.get("/openapi.json").json()["paths"]["/api/v1/calls"]["post"]["requestBody"]
    form_schema = declared["content"]["multipart/form-data"]["schema"]
    assert form_schema["additionalProperties"] is False
    files = {"call": (None, orjson.dumps(call_payload()), "application/json"), "notes": (None, b"hi")}
    response = client.post("/api/v1/calls", files=files, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"loc": "notes", "msg": "unknown part"}]
    assert services.meta.pending_count() == 0
