"""Traces and sessions found without their ids, over the API, from real OTLP/JSON exports.

Three traces are exported through ``POST /v1/traces`` as an app would send them (a RAG chain whose
session sits on its LLM span only, a failed chat request, another service's chat) and stored by the
worker; each filter must find exactly the traces it describes, and pages must not repeat or skip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

T0 = 1_788_000_000_000_000_000  # ns: 2026-08-29 10:40:00 UTC


def _value(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": str(value)}


def _span(
    trace: str, span: str, parent: str | None, name: str, at_s: float, error: bool = False, **attrs: object
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(T0 + int(at_s * 1e9)),
        "endTimeUnixNano": str(T0 + int((at_s + 0.5) * 1e9)),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attrs.items()],
        "status": {"code": 2, "message": "upstream 503"} if error else {"code": 1},
    }
    if parent is not None:
        body["parentSpanId"] = parent
    return body


def _export(service: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {
        "resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "app"}, "spans": spans}]}]
    }


RAG, FAILED, OTHER = "a" * 32, "b" * 32, "c" * 32


def test_traces_and_sessions_are_listed_and_searched(
    client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    first_token = {
        "timeUnixNano": str(T0 + 400_000_000),
        "name": "First Token Stream Event",
        "attributes": [],
    }
    rag = [
        _span(RAG, "1" * 16, None, "rag chain", 0.0),
        _span(
            RAG,
            "2" * 16,
            "1" * 16,
            "retrieve",
            0.1,
            **{"openinference.span.kind": "RETRIEVER", "input.value": "refund policy"},
        ),
        _span(
            RAG,
            "3" * 16,
            "1" * 16,
            "llm",
            0.3,
            **{"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "session.id": "s-1"},
        ),
    ]
    failed = [
        _span(
            FAILED,
            "4" * 16,
            None,
            "chat gpt-4o",
            10.0,
            error=True,
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.conversation.id": "c-2",
            },
        )
    ]
    other = [
        _span(
            OTHER,
            "5" * 16,
            None,
            "chat gpt-4o",
            20.0,
            **{"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"},
        )
    ]
    for service, spans in (("rag-app", rag), ("chat-app", failed), ("billing-bot", other)):
        assert client.post("/v1/traces", json=_export(service, spans), headers=auth).status_code == 200
    drain()

    def found(**params: object) -> list[str]:
        answer = client.get("/api/v1/traces", params=params, headers=auth)
        assert answer.status_code == 200, answer.text
        return [item["trace_id"] for item in answer.json()["items"]]

    assert found() == [OTHER, FAILED, RAG]  # newest first
    assert found(model="gpt-4o") == [OTHER, FAILED] and found(model="gpt-4o-mini") == [RAG]
    assert found(status="error") == [FAILED]
    assert found(service="rag-app") == [RAG]
    assert found(text="REFUND") == [RAG]
    assert found(attribute="session.id=s-1") == [RAG]
    assert found(since="2026-08-29T10:40:15Z") == [OTHER]
    assert found(conversation="genai:s-1") == [RAG]

    rag[2]["events"] = [first_token]
    rag[2]["links"] = [{"traceId": FAILED, "spanId": "4" * 16, "attributes": []}]
    assert client.post("/v1/traces", json=_export("rag-app", rag), headers=auth).status_code == 200
    drain()
    (rag_item,) = client.get("/api/v1/traces", params={"service": "rag-app"}, headers=auth).json()["items"]
    assert (
        rag_item["root_name"] == "rag chain" and rag_item["span_count"] == 3 and rag_item["error_count"] == 0
    )
    assert rag_item["models"] == ["gpt-4o-mini"] and rag_item["conversation_id"] == "genai:s-1"
    # The whole trace took the session its LLM span named: the root and the retriever too.
    tree = client.get(f"/api/v1/traces/{RAG}", headers=auth).json()
    assert tree["roots"][0]["conversation_id"] == "genai:s-1"
    assert {c["conversation_id"] for c in tree["roots"][0]["children"]} == {"genai:s-1"}
    (llm,) = [c for c in tree["roots"][0]["children"] if c["name"] == "llm"]
    assert llm["events"] == [
        {"name": "First Token Stream Event", "time_unix_nano": T0 + 400_000_000, "attributes": {}}
    ]
    assert llm["links"] == [{"trace_id": FAILED, "span_id": "4" * 16, "attributes": {}}]

    first = client.get("/api/v1/traces", params={"limit": 2}, headers=auth).json()
    assert [i["trace_id"] for i in first["items"]] == [OTHER, FAILED] and first["next_cursor"]
    rest = client.get(
        "/api/v1/traces", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [i["trace_id"] for i in rest["items"]] == [RAG] and rest["next_cursor"] is None

    sessions = client.get("/api/v1/sessions", headers=auth).json()["items"]
    assert [s["conversation_id"] for s in sessions] == ["genai:c-2", "genai:s-1"]
    assert sessions[0]["error_count"] == 1 and sessions[1]["span_count"] == 3
    errors = client.get("/api/v1/sessions", params={"status": "error"}, headers=auth).json()["items"]
    assert [s["conversation_id"] for s in errors] == ["genai:c-2"]


def test_bad_search_parameters_are_refused_naming_the_field(client: TestClient, auth: dict[str, str]) -> None:
    for params, field in (
        ({"attribute": "no-equals-sign"}, "attribute"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": f"9999999999999999999.{'a' * 32}"}, "cursor"),
        ({"text": "x" * 257}, "text"),
        ({"since": "yesterday"}, "since"),
        ({"status": "slow"}, "status"),
        ({"limit": 0}, "limit"),
    ):
        answer = client.get("/api/v1/traces", params=params, headers=auth)
        assert answer.status_code == 422, (params, answer.text)
        assert field in answer.text
