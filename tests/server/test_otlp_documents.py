"""Retrieved and re-ranked documents through the live receiver: each convention's form, their own
bounds (a cut is said in the OTLP answer), and the turn they are placed on.

The spans are recorded with the OpenTelemetry SDK under the names and attributes each convention
documents (GenAI ``gen_ai.retrieval.documents``, OpenInference's re-ranker lists, OpenLLMetry's
``db.query.result`` events); the RAG chain of a real library is in ``test_otlp_rag.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from test_otlp_kit import T0, LiveServer, Recorder, otlp_json, otlp_settings, serve

from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

CONVERSATION = "rag-chat-1"
MAX_CHARS = 1000
MAX_DOCUMENTS = 5


@pytest.fixture
def live(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    settings = otlp_settings(tmp_path, otlp_max_document_chars=MAX_CHARS, otlp_max_documents=MAX_DOCUMENTS)
    services = open_services(settings, store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


def _ns(offset_s: float) -> int:
    return int(round((T0 + offset_s) * 1e9))


def _messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]} for role, text in pairs])


def _chat(recorder: Recorder, parent: trace.Span, at_s: float, question: str, answer: str) -> None:
    recorder.emit(
        "app",
        "chat gpt-4o-mini",
        at_s,
        at_s + 0.5,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.input.messages": _messages(("user", question)),
            "gen_ai.output.messages": _messages(("assistant", answer)),
        },
        parent=parent,
    )


def _call(live: LiveServer) -> dict[str, Any]:
    live.process()
    (call_id,) = live.call_ids()
    call: dict[str, Any] = live.call(call_id)["call"]
    return call


def test_each_convention_s_documents_land_on_the_answer_they_fed(live: LiveServer) -> None:
    """Two requests in one conversation: the first fed by a GenAI retrieval (one document longer than
    the bound) and an OpenInference re-ranker, the second by a vector store traced by OpenLLMetry with
    more results than the per-span bound. The answer says what was cut; each answer holds its own."""
    recorder = Recorder(service="rag-app")
    root = recorder.provider.get_tracer("app").start_span(
        "chat session", attributes={"gen_ai.conversation.id": CONVERSATION}, start_time=_ns(0.0)
    )
    long_text = "refund policy " * 200  # 2,800 chars
    retrieved = [
        {"id": "kb-1", "score": 0.91, "content": long_text, "metadata": {"source": "policies.md"}},
        {"id": "kb-2", "score": 0.74, "content": "Refunds take five days.", "metadata": {"source": "faq.md"}},
        {"id": "kb-3", "score": 0.40, "content": "Parking is free.", "metadata": {"source": "faq.md"}},
    ]
    recorder.emit(
        "app",
        "retrieval kb",
        0.1,
        0.2,
        {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": json.dumps(retrieved)},
        parent=root,
    )
    rerank: dict[str, Any] = {"openinference.span.kind": "RERANKER", "reranker.query": "refunds?"}
    for i, doc in enumerate(retrieved):
        rerank[f"reranker.input_documents.{i}.document.id"] = doc["id"]
        rerank[f"reranker.input_documents.{i}.document.content"] = doc["content"]
    for i, (doc_id, score) in enumerate([("kb-2", 0.98), ("kb-1", 0.55)]):
        rerank[f"reranker.output_documents.{i}.document.id"] = doc_id
        rerank[f"reranker.output_documents.{i}.document.score"] = score
        rerank[f"reranker.output_documents.{i}.document.content"] = next(
            d["content"] for d in retrieved if d["id"] == doc_id
        )
        rerank[f"reranker.output_documents.{i}.document.metadata"] = json.dumps({"rank": i})
    recorder.emit("app", "rerank", 0.2, 0.3, rerank, parent=root)
    _chat(recorder, root, 0.3, "How long do refunds take?", "Five days.")

    tracer = recorder.provider.get_tracer("opentelemetry.instrumentation.chromadb")
    query = tracer.start_span("chroma.query", context=trace.set_span_in_context(root), start_time=_ns(1.0))
    for n in range(8):
        query.add_event(
            "db.query.result",
            {
                "db.query.result.id": f"chunk-{n}",
                "db.query.result.distance": 0.1 * (n + 1),
                "db.query.result.document": f"chunk {n} about parking",
                "db.query.result.metadata": json.dumps({"page": n}),
            },
            timestamp=_ns(1.05),
        )
    query.add_event("db.query.embeddings", {"db.query.embeddings.vector": "[0.1]"}, timestamp=_ns(1.02))
    query.end(end_time=_ns(1.1))
    _chat(recorder, root, 1.2, "Is parking free?", "Yes.")
    root.end(end_time=_ns(2.0))

    answer = live.post(otlp_json(recorder.spans()), "application/json")
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert "rejectedSpans" not in partial  # nothing refused: these are warnings
    message = partial["errorMessage"]
    assert f"gen_ai.retrieval.documents[0] content cut to {MAX_CHARS} of {len(long_text)} chars" in message
    assert "3 documents left out (at most 5 are kept per span)" in message

    call = _call(live)
    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "How long do refunds take?"),
        ("agent", "Five days."),
        ("user", "Is parking free?"),
        ("agent", "Yes."),
    ]
    assert turns[0]["documents"] is None and turns[2]["documents"] is None
    first = turns[1]["documents"]
    # The re-ranker's input repeats the retrieved list, so only the retrieved and re-ranked lists show.
    assert [(d["stage"], d["id"], d["score"]) for d in first] == [
        ("retrieved", "kb-1", 0.91),
        ("retrieved", "kb-2", 0.74),
        ("retrieved", "kb-3", 0.40),
        ("reranked", "kb-2", 0.98),
        ("reranked", "kb-1", 0.55),
    ]
    assert first[0]["content"] == long_text[:MAX_CHARS] and first[0]["content_chars"] == len(long_text)
    assert first[0]["metadata"] == {"source": "policies.md"}
    assert first[1]["content"] == "Refunds take five days." and first[1]["content_chars"] is None
    assert first[3]["metadata"] == {"rank": 0}
    second = turns[3]["documents"]
    assert [(d["id"], d["distance"], d["score"], d["content"], d["metadata"]) for d in second] == [
        (f"chunk-{n}", pytest.approx(0.1 * (n + 1)), None, f"chunk {n} about parking", {"page": n})
        for n in range(MAX_DOCUMENTS)
    ]

    spans = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    nodes = {node["name"]: node for node in _walk(spans["roots"])}
    query_node = nodes["chroma.query"]
    # The result events became documents; the other events stay events.
    assert [e["name"] for e in query_node["events"]] == ["db.query.embeddings"]
    assert len(query_node["documents"]) == MAX_DOCUMENTS
    assert "gen_ai.retrieval.documents" not in nodes["retrieval kb"]["attributes"]
    assert [d["stage"] for d in nodes["rerank"]["documents"]] == ["rerank_input"] * 3 + ["reranked"] * 2


def test_documents_that_cannot_be_read_stay_attributes(live: LiveServer) -> None:
    """A documents attribute that is not a list of documents is kept as it came, and the call is
    assembled without documents instead of failing."""
    recorder = Recorder(service="rag-app")
    root = recorder.provider.get_tracer("app").start_span(
        "chat session", attributes={"gen_ai.conversation.id": CONVERSATION}, start_time=_ns(0.0)
    )
    recorder.emit(
        "app",
        "retrieval kb",
        0.1,
        0.2,
        {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.documents": "[{not json"},
        parent=root,
    )
    _chat(recorder, root, 0.3, "Hello?", "Hi.")
    root.end(end_time=_ns(1.0))
    answer = live.post(otlp_json(recorder.spans()), "application/json")
    assert answer.status_code == 200 and answer.json() == {}

    call = _call(live)
    assert [t["documents"] for t in call["turns"]] == [None, None]
    spans = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    retrieval = next(n for n in _walk(spans["roots"]) if n["name"] == "retrieval kb")
    assert retrieval["attributes"]["gen_ai.retrieval.documents"] == "[{not json"
    assert retrieval["documents"] == []


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))
