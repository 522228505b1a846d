"""A LangChain RAG app traced by OpenInference, run in its own process by ``test_otlp_rag.py``.

The chain is the usual one from LangChain's documentation: a retriever over an in-memory vector store
(deterministic fake embeddings, so no model is needed to embed), the documents formatted into the system
prompt, ``ChatOpenAI`` against the loopback model, and a string output parser. Every question is one
chain invocation (one trace) inside ``using_session``, as Phoenix's documentation names a conversation.
The corpus and the retrieval are importable, so the test computes what the retriever must have returned
with the same library instead of writing it down.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from convoscope.testing.http_server import serve_http

MODEL = "gpt-4o-mini"
TOP_K = 4
EMBEDDING_SIZE = 64
QUESTIONS = (
    "What are the clinic's opening hours on Saturday?",
    "Can I bring my dog to the waiting room?",
    "How do I cancel an appointment?",
)
TOPICS = (
    ("hours", "The clinic opens at {h}:00 on weekdays and at {s}:00 on Saturday; it is closed on Sunday."),
    ("pets", "Assistance dogs are welcome; other pets wait outside. Room {h} has a water bowl."),
    ("cancel", "Cancel by phone or in the app at least {h} hours ahead; late cancellations cost {s} EUR."),
    ("parking", "Parking level {h} is free for patients for {s} hours with a validated ticket."),
    ("billing", "Invoices are sent after {h} days; card and transfer are accepted, code {s}."),
)


def corpus() -> list[tuple[str, str, dict[str, Any]]]:
    """Thirty documents: (id, text, metadata), the metadata the app stores with each."""
    out = []
    for n in range(30):
        topic, text = TOPICS[n % len(TOPICS)]
        out.append(
            (f"doc-{n:02d}", text.format(h=7 + n % 5, s=10 + n), {"topic": topic, "source": f"faq/{n}.md"})
        )
    return out


def vector_store() -> Any:
    """The app's store, filled with the corpus (the same in the app and in the test)."""
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=EMBEDDING_SIZE))
    store.add_documents(
        [Document(id=i, page_content=text, metadata=meta) for i, text, meta in corpus()],
        ids=[i for i, _, _ in corpus()],
    )
    return store


def answer_for(question: str) -> str:
    return f"From the clinic's notes, the answer to {question!r} is in the documents."


def usage_for(question: str) -> tuple[int, int]:
    return 200 + len(question), 20 + len(question) % 7


# -- the model ------------------------------------------------------------------------------------------


@dataclass
class RagModel:
    """The loopback chat model: answers the last user message, records every request body."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.requests.append(body)
            number = len(self.requests)
        question = str(body["messages"][-1]["content"])
        prompt, completion = usage_for(question)
        return {
            "id": f"chatcmpl-rag-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer_for(question)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }


@contextmanager
def serve_model() -> Iterator[tuple[str, RagModel]]:
    """The fake model on loopback: its base URL (ending in ``/v1``) and its record."""
    model = RagModel()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            data = json.dumps(model.answer(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve_http(Handler) as url:
        yield f"{url}/v1", model


# -- the app --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RagRun:
    model_url: str
    endpoint: str
    api_key: str
    session_id: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def main(run: RagRun) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_openai import ChatOpenAI
    from openinference.instrumentation import using_session
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "clinic-rag"}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=run.endpoint, headers={"Authorization": f"Bearer {run.api_key}"})
        )
    )
    LangChainInstrumentor().instrument(tracer_provider=provider)
    retriever = vector_store().as_retriever(search_kwargs={"k": TOP_K})
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from these notes only:\n{context}"), ("human", "{question}")]
    )
    llm = ChatOpenAI(model=MODEL, base_url=run.model_url, api_key="sk-test", max_retries=0)  # type: ignore[arg-type]

    def format_docs(documents: list[Any]) -> str:
        return "\n".join(document.page_content for document in documents)

    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    with using_session(run.session_id):
        for question in QUESTIONS:
            said = chain.invoke(question)
            assert said == answer_for(question), said
    assert provider.force_flush(10_000), "the spans were not exported"
    provider.shutdown()


if __name__ == "__main__":
    main(RagRun(**json.loads(sys.argv[1])))
