"""A RAG chain traced by OpenInference, exporting to a live server: the retrieved documents on the turn.

The app (``rag_app_kit.py``, its own process) is LangChain's documented RAG chain over an in-memory store
with OpenInference's LangChain instrumentation; its spans go out through the real OTLP HTTP exporter.
What the retriever returned is computed here with the same library and store, not written down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rag_app_kit import (
    MODEL,
    QUESTIONS,
    TOP_K,
    RagModel,
    RagRun,
    answer_for,
    corpus,
    serve_model,
    usage_for,
    vector_store,
)
from test_otlp_kit import KEY, LiveServer, otlp_settings, serve

from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

APP = Path(__file__).with_name("rag_app_kit.py")
PRICE = (0.15, 0.60)


@pytest.fixture
def live(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    services = open_services(otlp_settings(tmp_path, llm_prices={MODEL: PRICE}), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


@pytest.fixture
def model() -> Iterator[tuple[str, RagModel]]:
    with serve_model() as served:
        yield served


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))


def run_app(live: LiveServer, model_url: str) -> dict[str, Any]:
    run = RagRun(
        model_url=model_url,
        endpoint=f"{live.url}/v1/traces",
        api_key=KEY,
        session_id=f"rag-{uuid.uuid4().hex[:10]}",
    )
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "OPENAI_", "LANGCHAIN_", "LANGSMITH_"))
    }
    done = subprocess.run(
        [sys.executable, str(APP), run.to_json()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    live.process()
    (item,) = live.get("/api/v1/calls?source=generic&limit=100").json()["items"]
    call: dict[str, Any] = live.call(item["id"])["call"]
    assert call["external_id"] == run.session_id
    return call


def test_a_langchain_rag_chain_traced_by_openinference_keeps_its_documents_on_the_turn(
    live: LiveServer, model: tuple[str, RagModel]
) -> None:
    """Each question is a user turn and its answer an agent turn holding the documents the retriever
    returned for it (content and metadata, in the retriever's order, tagged with the retriever span),
    read out of the span's attributes; tokens and cost add up over the requests."""
    url, fake = model
    call = run_app(live, url)
    assert len(fake.requests) == len(QUESTIONS)
    turns = call["turns"]
    assert [(t["role"], t["text"]) for t in turns] == [
        pair for q in QUESTIONS for pair in (("user", q), ("agent", answer_for(q)))
    ]
    spans = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    retrievers = sorted(
        (n for n in _walk(spans["roots"]) if n["attributes"].get("openinference.span.kind") == "RETRIEVER"),
        key=lambda n: n["start"],
    )
    assert len(retrievers) == len(QUESTIONS)
    store = vector_store()
    by_text = {text: meta for _, text, meta in corpus()}
    for question, user, agent, retriever in zip(QUESTIONS, turns[::2], turns[1::2], retrievers, strict=True):
        expected = store.similarity_search(question, k=TOP_K)
        assert user["documents"] is None
        documents = agent["documents"]
        assert [(d["content"], d["metadata"]) for d in documents] == [
            (doc.page_content, doc.metadata) for doc in expected
        ]
        assert all(by_text[d["content"]]["topic"] == d["metadata"]["topic"] for d in documents)
        assert {(d["stage"], d["span_id"], d["content_chars"]) for d in documents} == {
            ("retrieved", retriever["span_id"], None)
        }
        assert retriever["attributes"]["input.value"] == question
        # Kept once, as documents: not also as attributes under the span's caps.
        assert not any(k.startswith("retrieval.documents") for k in retriever["attributes"])
        assert [d["content"] for d in retriever["documents"]] == [d["content"] for d in documents]
    # Each step says what it was, what it took and gave, and what it cost.
    nodes = list(_walk(spans["roots"]))
    llm_steps = sorted((n for n in nodes if n["step"] == "llm"), key=lambda n: n["start"])
    for question, step in zip(QUESTIONS, llm_steps, strict=True):
        tokens = usage_for(question)
        assert (step["input_tokens"], step["output_tokens"]) == tokens
        assert step["cost_usd"] == pytest.approx(
            (tokens[0] * PRICE[0] + tokens[1] * PRICE[1]) / 1e6, abs=1e-9
        )
        # LangChain's LLMResult, as OpenInference writes the LLM step's output.
        assert json.loads(step["output"])["generations"][0][0]["text"] == answer_for(question)
    assert {n["step"] for n in nodes} >= {"chain", "retriever", "prompt", "llm"}
    assert all(n["cost_usd"] is None for n in nodes if n["step"] != "llm")
    prompt = sum(usage_for(q)[0] for q in QUESTIONS)
    completion = sum(usage_for(q)[1] for q in QUESTIONS)
    usage = call["usage"]
    assert (usage["llm_prompt_tokens"], usage["llm_completion_tokens"]) == (prompt, completion)
    assert sum(line["amount"] for line in call["cost"]) == pytest.approx(
        (prompt * PRICE[0] + completion * PRICE[1]) / 1e6, abs=1e-9
    )
    metadata = call["metadata"]
    assert metadata["modality"] == "chat" and metadata["conventions"] == ["openinference"]
    assert metadata["service"] == "clinic-rag" and metadata["errors"] == []
    # Each request's system prompt holds its own context, so every later request rewrites the history.
    assert metadata["rewritten_histories"] == len(QUESTIONS) - 1
    assert len(metadata["system_prompts"]) == len(QUESTIONS)
