"""OTLP ingest throughput: spans through ``POST /v1/traces`` and calls assembled, as ratios to the store.

Two workloads, chosen with ``--workload pipecat|rag|both`` (default ``both``: one after the other, then
the ratio between them):

* **pipecat** -- Pipecat voice conversations, ``conversation`` → ``turn`` → ``stt``/``llm``/``tts`` (41
  spans with 10 turns, a few hundred bytes each).
* **rag** -- OpenInference RAG traces as ``openinference-instrumentation-langchain`` exports them, one
  trace per question of a chat session (several traces share ``session.id``, so a session assembles into
  one call). 10 spans a trace, shaped like the real chain's: a ``RunnableSequence`` CHAIN root, a
  ``RunnableParallel`` CHAIN holding the context ``RunnableSequence`` (a RETRIEVER with its EMBEDDING
  request inside, a RERANKER, the ``format_docs`` CHAIN), the PROMPT, the LLM (system message with the
  context, the question, the answer, token counts) and the output-parser CHAIN, with ``input.value`` /
  ``output.value`` as the library writes them (the retriever's output, the prompt's variables and the
  LLM's messages repeat the documents or the context). 20 documents of 200-480 characters on the
  retriever (``retrieval.documents.N.document.{id,content,score,metadata}``) and on the re-ranker's
  input, 5 on its output: about 6.7 kB a span as exported, against 240 bytes for a Pipecat span. After
  the timing, calls spread over the list (``--check-calls``) are read through the API and every agent
  turn must hold its 20 retrieved and 5 re-ranked documents, content and metadata whole (and one trace on
  the assembly-deferred server its 45 on the retriever and re-ranker spans), so a run that loses
  documents fails instead of reporting a rate.

Figures, for each workload, all from one run on the same machine:

* **store spans** -- ``ClickHouseStore.insert_spans`` of the same spans (decoded before timing) in
  batches of 512: the floor the store sets. Every span figure is divided by it.
* **store calls** -- ``ClickHouseStore.insert_calls`` of the calls the mappers make of these spans
  (assembled before timing): the reference for calls assembled per second.
* **HTTP ack** -- a real ``convoscope serve`` process; two connections POST pre-encoded protobuf exports
  of 512 spans each (in the order the spans end, several conversations or sessions interleaved). Ack = the
  200, given after the outbox commit.
* **HTTP stored** -- until the outbox is drained (every acknowledged span in the ``spans`` table); for
  RAG also as documents stored per second (those on the retriever and re-ranker spans).
* **calls assembled** -- until every conversation is a call in the calls list with all its turns
  (``otlp_settle_s`` = 0, so a call is assembled as soon as a root span of it is stored, and a RAG
  session again with each question's trace); "last ack to queryable" is the time from the last
  acknowledgement until then.
* **server CPU per span** -- CPU seconds the server process used (all its threads, from ``/proc``), from
  the first POST until every span is stored, per span: unlike the rates, it barely moves with the load
  other processes put on a shared box.
* **RAG ÷ Pipecat** (``both``) -- each rate of the RAG run divided by the Pipecat run's; the goal is that
  RAG traces ingest at the spans/s of the Pipecat load (ack ratio ≥ 0.9).

* **Phoenix** (``--phoenix``) -- the same exports posted to Arize Phoenix (``phoenix serve`` on loopback,
  telemetry off, its own working directory), one server at a time: acknowledged and stored spans per second
  (stored = its project's ``recordCount`` over GraphQL). Phoenix is installed by this script into a
  throwaway virtual environment with ``uv`` (never into the project); ``--phoenix-venv`` reuses one.

Run: ``uv run python benchmarks/otlp_ingest.py`` (several minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    ServerProcess,
    environment,
    free_port,
    listed_calls,
    post_all,
    print_environment,
    print_table,
    process_cpu_s,
    wait_healthy,
    write_json,
)
from convoscope.ingest.otlp import PriceTable, SpanLimits, decode_export, mapper_for, resolve_keys
from convoscope.model import Call, Span
from convoscope.server.worker import assign_identity
from convoscope.store.clickhouse import open_clickhouse_store

PROTOBUF = "application/x-protobuf"
PHOENIX_START_S = 180.0
"""How long Phoenix may take to answer its health check (its first start migrates its database)."""
BATCH_SPANS = 512
GOAL_SPANS_S = 20_000.0
GOAL_RAG_RATIO = 0.9
"""RAG traces are to be acknowledged at (nearly) the spans/s of the Pipecat load."""
PROJECT = "bench"
T0_NS = 1_790_000_000 * 10**9


def _value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _pb_span(
    rng: random.Random,
    trace_id: bytes,
    parent: bytes,
    name: str,
    start_s: float,
    end_s: float,
    attributes: dict[str, object],
    *,
    ok: bool = False,
) -> PbSpan:
    """A span of ``attributes``; ``ok`` sets status OK (OpenInference does on every span that succeeds)."""
    span = PbSpan(
        trace_id=trace_id,
        span_id=rng.randbytes(8),
        parent_span_id=parent,
        name=name,
        kind=PbSpan.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0_NS + int(start_s * 1e9),
        end_time_unix_nano=T0_NS + int(end_s * 1e9),
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in attributes.items()],
    )
    if ok:
        span.status.code = Status.STATUS_CODE_OK
    return span


def pipecat_spans(index: int, turns: int, rng: random.Random) -> list[PbSpan]:
    """One Pipecat conversation's spans, children before parents (the order they end)."""
    conversation = f"bench-{index}"
    trace_id = rng.randbytes(16)
    offset = index * 0.7
    root = _pb_span(
        rng,
        trace_id,
        b"",
        "conversation",
        offset,
        offset + 1 + 8 * turns,
        {"conversation.id": conversation, "conversation.type": "voice"},
    )
    spans: list[PbSpan] = []
    for n in range(turns):
        at = offset + 1 + 8 * n
        turn = _pb_span(
            rng,
            trace_id,
            root.span_id,
            "turn",
            at,
            at + 7,
            {
                "turn.number": n + 1,
                "conversation.id": conversation,
                "turn.was_interrupted": n % 5 == 4,
                "turn.user_bot_latency_seconds": 0.6 + rng.random(),
            },
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "stt",
                at,
                at + 1.5,
                {
                    "transcript": f"user says {n} " * 4,
                    "is_final": True,
                    "metrics.ttfb": 0.2,
                    "gen_ai.request.model": "nova-3",
                },
            )
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "llm",
                at + 1.6,
                at + 2.4,
                {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.operation.name": "chat",
                    "output": f"agent answers {n} " * 6,
                    "gen_ai.usage.input_tokens": 900 + n,
                    "gen_ai.usage.output_tokens": 60,
                    "metrics.ttfb": 0.3 + rng.random() / 5,
                },
            )
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "tts",
                at + 2.0,
                at + 5.0,
                {"text": f"agent answers {n} " * 6, "metrics.character_count": 90, "metrics.ttfb": 0.15},
            )
        )
        spans.append(turn)
    spans.append(root)
    return spans


RAG_SPANS = 10
"""Spans of one RAG trace (one question)."""
RAG_DOCUMENTS = 20
"""Documents the retriever returns, and the re-ranker is given."""
RAG_RERANKED = 5
"""Documents the re-ranker keeps."""
RAG_SPAN_DOCUMENTS = 2 * RAG_DOCUMENTS + RAG_RERANKED
"""Documents stored on a trace's spans: the retrieved list, the re-ranker's input and its output."""
RAG_CORPUS = 4000
RAG_QUESTION_GAP_S = 15.0
"""Between the questions of one session (one trace each)."""
RAG_SCOPE = ("openinference.instrumentation.langchain", "0.1.80")
EMBEDDING_MODEL = "text-embedding-3-small"
RERANK_MODEL = "rerank-english-v3.0"
CHAT_MODEL = "gpt-4o-mini"
SYSTEM_TEMPLATE = (
    "You are the support assistant of Acme Devices. Answer from these notes only, and say so when "
    "they do not cover the question.\n\n{context}"
)
_TOPICS = ("billing", "shipping", "returns", "warranty", "accounts", "security", "pricing", "installation")
_WORDS = tuple(
    "the a customer order invoice refund policy within days account support plan device firmware update "
    "warranty claim shipping carrier tracking label return window receipt store credit card payment "
    "subscription renewal cancel notice period technician appointment installation manual reset password "
    "two-factor code email address region tax discount bundle upgrade downgrade license seat admin portal "
    "export report must may after before each every business working request form approval".split()
)
_QUESTIONS = (
    "How long do I have to return a {w} bought with a {v}?",
    "Why was my {w} charged twice this month?",
    "Can I move my {w} to another {v} without losing it?",
    "What does the warranty cover when the {w} stops working?",
    "How do I reset the {w} on my {v}?",
    "When will my {w} ship, and which carrier takes it?",
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 15))]
    return " ".join(words).capitalize() + "."


@functools.cache
def rag_corpus() -> tuple[tuple[str, str, str], ...]:
    """The knowledge base the retriever draws from: (id, content of 200-480 characters, metadata as the
    JSON text OpenInference writes), the same in every run."""
    rng = random.Random(11)
    out = []
    for n in range(RAG_CORPUS):
        topic = _TOPICS[n % len(_TOPICS)]
        target = rng.randint(200, 480)
        text = f"{topic.capitalize()}, section {n // 8}.{n % 8}:"
        while len(text) < target:
            text += " " + _sentence(rng)
        metadata = {
            "source": f"kb/{topic}/{n // 8}.md",
            "topic": topic,
            "chunk": n % 8,
            "updated_at": f"2026-10-{1 + n % 28:02d}",
        }
        out.append((f"kb-{n:05d}", text, json.dumps(metadata)))
    return tuple(out)


def _documents(prefix: str, picked: list[tuple[tuple[str, str, str], float]]) -> dict[str, object]:
    """OpenInference's flat document attributes: ``<prefix>.N.document.{id,content,score,metadata}``."""
    attributes: dict[str, object] = {}
    for n, ((doc_id, content, metadata), score) in enumerate(picked):
        attributes[f"{prefix}.{n}.document.id"] = doc_id
        attributes[f"{prefix}.{n}.document.content"] = content
        attributes[f"{prefix}.{n}.document.score"] = score
        attributes[f"{prefix}.{n}.document.metadata"] = metadata
    return attributes


def _langchain_documents(picked: list[tuple[tuple[str, str, str], float]]) -> list[dict[str, object]]:
    """Documents as LangChain serialises them into ``input.value`` / ``output.value``."""
    return [
        {"id": doc_id, "metadata": json.loads(metadata), "page_content": content, "type": "Document"}
        for (doc_id, content, metadata), _ in picked
    ]


def _lc_message(kind: str, content: str) -> dict[str, object]:
    """A chat message as LangChain serialises it into an LLM span's ``input.value``."""
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", f"{kind}Message"],
        "kwargs": {"content": content, "type": kind.lower()},
    }


def rag_trace(session: str, at: float, rng: random.Random) -> list[PbSpan]:
    """One question of a chat session: the 10 spans OpenInference's LangChain instrumentation exports for a
    retrieve → re-rank → format → prompt → LLM → parse chain (its embedding request traced by the OpenAI
    instrumentation), parents before children; every child inside its parent's interval."""
    corpus = rag_corpus()
    trace_id = rng.randbytes(16)
    question = rng.choice(_QUESTIONS).format(w=rng.choice(_WORDS), v=rng.choice(_WORDS))
    scores = sorted((round(rng.uniform(0.45, 0.92), 4) for _ in range(RAG_DOCUMENTS)), reverse=True)
    retrieved = list(
        zip((corpus[i] for i in rng.sample(range(RAG_CORPUS), RAG_DOCUMENTS)), scores, strict=True)
    )
    kept = sorted((round(rng.uniform(0.2, 0.99), 4) for _ in range(RAG_RERANKED)), reverse=True)
    reranked = [
        (retrieved[i][0], score)
        for i, score in zip(rng.sample(range(RAG_DOCUMENTS), RAG_RERANKED), kept, strict=True)
    ]
    context = "\n\n".join(document[1] for document, _ in reranked)
    system = SYSTEM_TEMPLATE.format(context=context)
    answer = f"According to {reranked[0][0][0]} and {reranked[1][0][0]}: " + " ".join(
        _sentence(rng) for _ in range(3)
    )
    prompt_tokens, completion_tokens = len(system + question) // 4, len(answer) // 4
    llm_s = 0.9 + 1.6 * rng.random()
    parser_end = 0.470 + llm_s + 0.003
    common: dict[str, object] = {"session.id": session}
    json_in = {"input.mime_type": "application/json"}
    json_out = {"output.mime_type": "application/json"}

    def span(
        parent: PbSpan | None, name: str, start: float, end: float, kind: str, attributes: dict[str, object]
    ) -> PbSpan:
        return _pb_span(
            rng,
            trace_id,
            b"" if parent is None else parent.span_id,
            name,
            at + start,
            at + end,
            {**common, **attributes, "openinference.span.kind": kind},
            ok=True,
        )

    root = span(
        None,
        "RunnableSequence",
        0.0,
        parser_end + 0.001,
        "CHAIN",
        {"input.value": question, "output.value": answer},
    )
    parallel = span(
        root,
        "RunnableParallel<context,question>",
        0.001,
        0.460,
        "CHAIN",
        {
            "input.value": question,
            "output.value": json.dumps({"context": context, "question": question}),
            **json_out,
        },
    )
    branch = span(
        parallel,
        "RunnableSequence",
        0.002,
        0.455,
        "CHAIN",
        {"input.value": question, "output.value": context},
    )
    retriever = span(
        branch,
        "VectorStoreRetriever",
        0.003,
        0.180,
        "RETRIEVER",
        {
            "input.value": question,
            "output.value": json.dumps({"documents": _langchain_documents(retrieved)}),
            **json_out,
            **_documents("retrieval.documents", retrieved),
            "metadata": json.dumps(
                {
                    "ls_retriever_name": "vectorstore",
                    "ls_vector_store_provider": "PGVector",
                    "ls_embedding_provider": "OpenAIEmbeddings",
                }
            ),
        },
    )
    embedding = span(
        retriever,
        "CreateEmbeddings",
        0.004,
        0.120,
        "EMBEDDING",
        {
            "input.value": json.dumps(
                {"input": [question], "model": EMBEDDING_MODEL, "encoding_format": "base64"}
            ),
            **json_in,
            "embedding.model_name": EMBEDDING_MODEL,
            "embedding.invocation_parameters": json.dumps(
                {"model": EMBEDDING_MODEL, "encoding_format": "base64"}
            ),
            "embedding.embeddings.0.embedding.text": question,
            "llm.system": "openai",
            "llm.token_count.prompt": len(question) // 4,
            "llm.token_count.total": len(question) // 4,
        },
    )
    reranker = span(
        branch,
        "CohereRerank",
        0.185,
        0.440,
        "RERANKER",
        {
            "input.value": question,
            "reranker.query": question,
            "reranker.model_name": RERANK_MODEL,
            "reranker.top_k": RAG_RERANKED,
            **_documents("reranker.input_documents", retrieved),
            **_documents("reranker.output_documents", reranked),
        },
    )
    formatter = span(
        branch,
        "format_docs",
        0.445,
        0.450,
        "CHAIN",
        {
            "input.value": json.dumps(_langchain_documents(reranked)),
            **json_in,
            "output.value": context,
        },
    )
    variables = json.dumps({"context": context, "question": question})
    prompt = span(
        root,
        "ChatPromptTemplate",
        0.462,
        0.465,
        "PROMPT",
        {
            "input.value": variables,
            **json_in,
            "output.value": json.dumps(
                {"messages": [{"content": system, "type": "system"}, {"content": question, "type": "human"}]}
            ),
            **json_out,
            "llm.prompt_template.template": SYSTEM_TEMPLATE,
            "llm.prompt_template.variables": variables,
        },
    )
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    llm = span(
        root,
        "ChatOpenAI",
        0.470,
        0.470 + llm_s,
        "LLM",
        {
            "input.value": json.dumps(
                {"messages": [[_lc_message("System", system), _lc_message("Human", question)]]}
            ),
            **json_in,
            "output.value": json.dumps(
                {
                    "generations": [
                        [
                            {
                                "text": answer,
                                "generation_info": {"finish_reason": "stop"},
                                "type": "ChatGeneration",
                            }
                        ]
                    ],
                    "llm_output": {"token_usage": usage, "model_name": CHAT_MODEL},
                }
            ),
            **json_out,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": system,
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": question,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": answer,
            "llm.invocation_parameters": json.dumps(
                {
                    "model": CHAT_MODEL,
                    "model_name": CHAT_MODEL,
                    "stream": False,
                    "_type": "openai-chat",
                    "temperature": 0.0,
                }
            ),
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": CHAT_MODEL,
            "llm.token_count.prompt": prompt_tokens,
            "llm.token_count.completion": completion_tokens,
            "llm.token_count.total": prompt_tokens + completion_tokens,
            "metadata": json.dumps(
                {"ls_provider": "openai", "ls_model_name": CHAT_MODEL, "ls_model_type": "chat"}
            ),
        },
    )
    parser = span(
        root,
        "StrOutputParser",
        0.470 + llm_s + 0.001,
        parser_end,
        "CHAIN",
        {
            "input.value": json.dumps(
                {
                    "type": "ai",
                    "data": {
                        "content": answer,
                        "response_metadata": {
                            "token_usage": usage,
                            "model_name": CHAT_MODEL,
                            "finish_reason": "stop",
                        },
                    },
                }
            ),
            **json_in,
            "output.value": answer,
        },
    )
    return [root, parallel, branch, retriever, embedding, reranker, formatter, prompt, llm, parser]


def rag_spans(index: int, questions: int, rng: random.Random) -> list[PbSpan]:
    """One chat session: ``questions`` traces (one a question, 15 s apart) sharing ``session.id``."""
    session = f"rag-{index}"
    offset = index * 0.7
    return [
        span
        for number in range(questions)
        for span in rag_trace(session, offset + number * RAG_QUESTION_GAP_S, rng)
    ]


@dataclass(frozen=True)
class Workload:
    """What one run posts: each conversation's spans, and how the exports present them."""

    name: str
    title: str
    unit: str
    """What one ``spans_of`` index makes: a conversation, a chat session."""
    spans_of: Callable[[int, random.Random], list[PbSpan]]
    scope: tuple[str, str]
    """The instrumentation scope's name and version."""
    resource: dict[str, object] = field(default_factory=dict)
    turns_per_call: int | None = None
    """Turns every call must end with, where the workload fixes it (checked against the mapper's calls)."""


def pipecat_workload(turns: int) -> Workload:
    return Workload(
        "pipecat",
        "Pipecat voice conversations",
        "conversations",
        lambda index, rng: pipecat_spans(index, turns, rng),
        ("pipecat", ""),
        {"service.name": "bench-agent"},
    )


def rag_workload(questions: int) -> Workload:
    return Workload(
        "rag",
        "OpenInference LangChain RAG sessions",
        "sessions",
        lambda index, rng: rag_spans(index, questions, rng),
        RAG_SCOPE,
        {
            "service.name": "bench-rag",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.version": "1.45.2",
        },
        turns_per_call=2 * questions,
    )


def build_exports(workload: Workload, conversations: int, seed: int, *, first: int = 0) -> list[bytes]:
    """Protobuf exports of ``BATCH_SPANS`` spans, conversations interleaved in the order spans end;
    conversations are numbered from ``first``."""
    rng = random.Random(seed)
    spans = [span for i in range(first, first + conversations) for span in workload.spans_of(i, rng)]
    spans.sort(key=lambda s: s.end_time_unix_nano)
    scope_name, scope_version = workload.scope
    bodies: list[bytes] = []
    for start in range(0, len(spans), BATCH_SPANS):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            KeyValue(key=k, value=_value(v)) for k, v in workload.resource.items()
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = scope_name
        if scope_version:
            scope_spans.scope.version = scope_version
        scope_spans.spans.extend(spans[start : start + BATCH_SPANS])
        bodies.append(request.SerializeToString())
    return bodies


def _decode(bodies: list[bytes]) -> list[list[Span]]:
    return [decode_export(body, PROTOBUF, SpanLimits()).spans for body in bodies]


def _assemble(spans: list[Span]) -> list[Call]:
    """The calls the mappers make of ``spans``, as the server's worker identifies them."""
    keys = resolve_keys(spans)
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        grouped.setdefault(keys[(span.trace_id, span.span_id)], []).append(span)
    calls: list[Call] = []
    for key, members in grouped.items():
        call = mapper_for(key).assemble(key, members, started_at=None, prices=PriceTable())
        assert call is not None
        calls.append(assign_identity(PROJECT, call))
    return calls


def expected_turns(calls: list[Call]) -> dict[str, int]:
    """external id → turns, of each call: what the calls list must show once every call is assembled."""
    return {call.external_id: len(call.turns) for call in calls}


def bench_store(bodies: list[bytes], workdir: Path) -> dict[str, Any]:
    """Direct ``insert_spans`` and ``insert_calls`` of the same data, in this process."""
    batches = _decode(bodies)
    spans = [s for batch in batches for s in batch]
    calls = _assemble(spans)
    store = open_clickhouse_store(path=workdir / "store-chdb", database="otlp_bench")
    try:
        started = time.perf_counter()
        for batch in batches:
            store.insert_spans(PROJECT, batch)
        spans_s = len(spans) / (time.perf_counter() - started)
        started = time.perf_counter()
        for first in range(0, len(calls), 1000):
            store.insert_calls(PROJECT, calls[first : first + 1000], version=1)
        calls_s = len(calls) / (time.perf_counter() - started)
    finally:
        store.close()
    return {
        "spans": len(spans),
        "calls": len(calls),
        "documents": sum(len(s.documents) for s in spans),
        "bytes": sum(len(body) for body in bodies),
        "spans_s": spans_s,
        "calls_s": calls_s,
        "turns": expected_turns(calls),
    }


Check = Callable[[httpx.Client, bool], dict[str, Any]]
"""Reads the server after the timing (the client, whether calls were assembled); exits on a loss."""


def bench_http(
    bodies: list[bytes],
    spans_n: int,
    turns: dict[str, int],
    clients: int,
    workdir: Path,
    timeout_s: float,
    *,
    assemble: bool,
    warmup: tuple[list[bytes], dict[str, int]] = ([], {}),
    check: Check | None = None,
) -> dict[str, Any]:
    """POST the exports from ``clients`` connections to a real server; time ack, storage and assembly.

    ``turns`` (external id → turns) are the calls these exports make: they are assembled once each is
    listed with all its turns. Without ``assemble`` the assembly is deferred past the run (settle and idle
    times of an hour), so the figures are those of the receiver and the span storage alone, with no job
    competing for the CPU. ``warmup`` (exports of other conversations, and the calls they make) is sent and
    stored (and assembled) before the timing starts, so a fresh process's first-request costs are not in
    the rates. ``check`` runs after the timing, before the server stops.
    """
    delay = "0" if assemble else "3600"
    server = ServerProcess(data_dir=workdir / ("server-data" if assemble else "server-data-spans-only"))
    idle = "30" if assemble else "3600"
    server.start(extra_env={"CONVOSCOPE_OTLP_SETTLE_S": delay, "CONVOSCOPE_OTLP_IDLE_S": idle})
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": PROTOBUF}
    assert server.process is not None
    pid = server.process.pid
    warmup_bodies, warmup_turns = warmup
    listed = {**warmup_turns, **turns}
    checked: dict[str, Any] | None = None
    try:
        if warmup_bodies:
            _post_all(server.url, warmup_bodies, headers, clients)
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                _settle(client, warmup_turns if assemble else {}, timeout_s)
        cpu_before = process_cpu_s(pid)
        rate = _post_all(server.url, bodies, headers, clients)
        started, last_ack = rate["started"], rate["last_ack"]
        cpu_stored: float | None = None
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        ) as client:
            deadline = time.monotonic() + timeout_s
            stored = assembled = None
            while time.monotonic() < deadline:
                if stored is None and client.get("/healthz").json()["checks"]["ingest"]["pending"] == 0:
                    stored = time.perf_counter()
                    cpu_stored = process_cpu_s(pid)
                if stored is not None and (not assemble or _assembled(client, listed)):
                    assembled = time.perf_counter()
                    break
                time.sleep(0.1)
            if stored is None or assembled is None:
                raise SystemExit(f"not stored and assembled within {timeout_s}s")
            if check is not None:
                checked = check(client, assemble)
    finally:
        server.stop()
    calls_n = len(turns)
    return {
        "clients": clients,
        "ack_spans_s": spans_n / (last_ack - started),
        "stored_spans_s": spans_n / (stored - started),
        "stored_s": stored - started,
        "assembled_calls_s": calls_n / (assembled - started) if assemble else None,
        "last_ack_to_stored_s": stored - last_ack,
        "last_ack_to_queryable_s": assembled - last_ack if assemble else None,
        "server_cpu_us_per_span": _per_span_us(cpu_before, cpu_stored, spans_n),
        "check": checked,
    }


def _assembled(client: httpx.Client, turns: dict[str, int]) -> bool:
    """Whether every call of ``turns`` is listed with all its turns (a RAG session is listed after its
    first question's trace, and again with each one after)."""
    if not turns:
        return True
    listed = {item["external_id"]: item["turn_count"] for item in listed_calls(client)}
    return all(listed.get(key, -1) >= n for key, n in turns.items())


def _settle(client: httpx.Client, turns: dict[str, int], timeout_s: float) -> None:
    """Wait until the outbox is drained and every call of ``turns`` is listed with all its turns."""
    deadline = time.monotonic() + timeout_s
    while client.get("/healthz").json()["checks"]["ingest"]["pending"] or not _assembled(client, turns):
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm-up was not stored and assembled within {timeout_s}s")
        time.sleep(0.1)


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))


DOCUMENT_KEYS = ("retrieval.documents", "reranker.input_documents", "reranker.output_documents")


def _lost(what: str) -> SystemExit:
    return SystemExit(f"RAG documents lost or altered: {what}")


def _check_document(document: dict[str, Any], where: str) -> None:
    """A document the server gives back is one of the corpus's, content and metadata whole."""
    corpus = _corpus_by_id()
    known = corpus.get(document.get("id") or "")
    if known is None:
        raise _lost(f"{where}: unknown document id {document.get('id')!r}")
    content, metadata = known
    if document["content"] != content or document["content_chars"] is not None:
        raise _lost(f"{where}: document {document['id']} content differs ({len(document['content'])} chars)")
    if document["metadata"] != metadata:
        raise _lost(f"{where}: document {document['id']} metadata {document['metadata']!r}")
    if document["score"] is None:
        raise _lost(f"{where}: document {document['id']} has no score")


@functools.cache
def _corpus_by_id() -> dict[str, tuple[str, object]]:
    return {doc_id: (content, json.loads(metadata)) for doc_id, content, metadata in rag_corpus()}


def rag_check(bodies: list[bytes], questions: int, sample: int) -> Check:
    """After the timing: on the assembling server, ``sample`` calls spread over the list read through the
    API, each with ``2 * questions`` turns whose agent turns hold the 20 retrieved and 5 re-ranked
    documents; on the deferred one, the trace of the first exported span, its retriever and re-ranker
    spans holding their documents (20, and 20 + 5)."""

    def check(client: httpx.Client, assembled: bool) -> dict[str, Any]:
        if not assembled:
            first = ExportTraceServiceRequest.FromString(bodies[0]).resource_spans[0].scope_spans[0].spans[0]
            trace_hex = first.trace_id.hex()
            tree = client.get(f"/api/v1/traces/{trace_hex}").raise_for_status().json()
            nodes = list(_walk(tree["roots"]))
            kinds = {n["attributes"].get("openinference.span.kind"): n for n in nodes}
            if len(nodes) != RAG_SPANS or "RETRIEVER" not in kinds or "RERANKER" not in kinds:
                raise _lost(f"trace {trace_hex}: {len(nodes)} spans stored, kinds {sorted(map(str, kinds))}")
            expected = {
                "RETRIEVER": {"retrieved": RAG_DOCUMENTS},
                "RERANKER": {"rerank_input": RAG_DOCUMENTS, "reranked": RAG_RERANKED},
            }
            documents = 0
            for kind, stages in expected.items():
                node = kinds[kind]
                got: dict[str, int] = {}
                for document in node["documents"]:
                    got[document["stage"]] = got.get(document["stage"], 0) + 1
                    _check_document(document, f"trace {trace_hex} {kind}")
                if got != stages:
                    raise _lost(f"trace {trace_hex}: the {kind} span holds {got}, not {stages}")
                if any(k.startswith(DOCUMENT_KEYS) for k in node["attributes"]):
                    raise _lost(f"trace {trace_hex}: documents left in the {kind} span's attributes too")
                documents += len(node["documents"])
            return {"trace": trace_hex, "spans": len(nodes), "documents": documents}
        calls = listed_calls(client)
        picked = calls[:: max(1, len(calls) // max(1, sample))][: max(1, sample)]
        turns_n = documents = 0
        for summary in picked:
            call = client.get(f"/api/v1/calls/{summary['id']}").raise_for_status().json()["call"]
            where = f"call {call['external_id']}"
            turns = call["turns"]
            agent = [t for t in turns if t["role"] == "agent"]
            if len(turns) != 2 * questions or len(agent) != questions:
                raise _lost(f"{where}: {len(turns)} turns ({len(agent)} agent), not {2 * questions}")
            for number, turn in enumerate(agent):
                held = turn["documents"] or []
                retrieved = [d for d in held if d["stage"] == "retrieved"]
                reranked = [d for d in held if d["stage"] == "reranked"]
                if (len(retrieved), len(reranked), len(held)) != (
                    RAG_DOCUMENTS,
                    RAG_RERANKED,
                    RAG_DOCUMENTS + RAG_RERANKED,
                ):
                    raise _lost(
                        f"{where} answer {number}: {len(retrieved)} retrieved, {len(reranked)} re-ranked, "
                        f"{len(held)} in all"
                    )
                for document in held:
                    _check_document(document, f"{where} answer {number}")
                if not {d["id"] for d in reranked} <= {d["id"] for d in retrieved}:
                    raise _lost(f"{where} answer {number}: re-ranked documents that were not retrieved")
                documents += len(held)
            turns_n += len(agent)
        return {"calls": len(picked), "agent_turns": turns_n, "documents": documents}

    return check


def _per_span_us(before: float | None, after: float | None, spans: int) -> float | None:
    return None if before is None or after is None else 1e6 * (after - before) / spans


def _phoenix_python(venv: Path) -> Path:
    """A virtual environment with arize-phoenix, made with uv if it is not there yet (never the project's)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing arize-phoenix into {venv} (throwaway, outside the project)")
        subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "arize-phoenix"], check=True)
    return python


def _phoenix_stored(client: httpx.Client) -> int:
    query = {"query": "{ projects { edges { node { recordCount } } } }"}
    edges = client.post("/graphql", json=query).raise_for_status().json()["data"]["projects"]["edges"]
    return sum(int(edge["node"]["recordCount"]) for edge in edges)


def bench_phoenix(
    bodies: list[bytes], spans_n: int, clients: int, workdir: Path, venv: Path, timeout_s: float
) -> dict[str, Any]:
    """The same exports into Arize Phoenix on loopback; time its acks and until it has stored every span."""
    python = _phoenix_python(venv)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "CONVOSCOPE_"))},
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(workdir / "phoenix.log", "ab")
    process = subprocess.Popen(
        [str(python), "-m", "phoenix.server.main", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(process, url, timeout_s=PHOENIX_START_S, poll_s=0.5, probe_timeout_s=2):
            if process.poll() is not None:
                raise SystemExit(f"phoenix exited with {process.returncode}; see {workdir / 'phoenix.log'}")
        rate = _post_all(url, bodies, {"Content-Type": PROTOBUF}, clients)
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + timeout_s
            while _phoenix_stored(client) < spans_n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"phoenix did not store {spans_n} spans within {timeout_s}s")
                time.sleep(0.2)
            stored = time.perf_counter()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return {
        "spans": spans_n,
        "ack_spans_s": spans_n / (rate["last_ack"] - rate["started"]),
        "stored_spans_s": spans_n / (stored - rate["started"]),
        "last_ack_to_stored_s": stored - rate["last_ack"],
    }


def _post_all(url: str, bodies: list[bytes], headers: dict[str, str], clients: int) -> dict[str, float]:
    """POST every body from ``clients`` connections; the start and the last acknowledgement."""
    sent = post_all(
        url, "/v1/traces", bodies, headers, clients=clients, accepted=200, timeout_s=120, what="export"
    )
    return {"started": sent.started, "last_ack": sent.last_ack}


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x"


def report(result: dict[str, Any]) -> None:
    """One workload's figures, as ratios to its own store references."""
    store, http, alone = result["store"], result["http"], result["http_spans_only"]
    print(
        f"\n## {result['title']} (--workload {result['workload']})\n\n"
        f"{result['count']:,} {result['unit']}: {store['spans']:,} spans in {result['exports']} exports of "
        f"{BATCH_SPANS} ({store['bytes'] / 1e6:,.1f} MB, {store['bytes'] / store['spans']:,.0f} bytes a "
        f"span), {store['calls']:,} calls"
    )
    print_table(
        ["path", "rate", "vs store"],
        [
            ["store insert_spans (reference)", f"{store['spans_s']:,.0f} spans/s", "1.00x"],
            [
                "HTTP ack, assembly deferred",
                f"{alone['ack_spans_s']:,.0f} spans/s",
                _ratio(alone["ack_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP stored, assembly deferred",
                f"{alone['stored_spans_s']:,.0f} spans/s",
                _ratio(alone["stored_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP ack, assembling as spans come",
                f"{http['ack_spans_s']:,.0f} spans/s",
                _ratio(http["ack_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP stored, assembling as spans come",
                f"{http['stored_spans_s']:,.0f} spans/s",
                _ratio(http["stored_spans_s"], store["spans_s"]),
            ],
            ["store insert_calls (reference)", f"{store['calls_s']:,.0f} calls/s", "1.00x"],
            [
                "calls assembled (listed with every turn)",
                f"{http['assembled_calls_s']:,.1f} calls/s",
                _ratio(http["assembled_calls_s"], store["calls_s"]),
            ],
        ],
    )
    print(
        f"last ack -> spans stored: {http['last_ack_to_stored_s']:.2f} s; "
        f"-> every call queryable: {http['last_ack_to_queryable_s']:.2f} s"
    )
    cpu = alone["server_cpu_us_per_span"]
    if cpu is not None:
        per_cpu_s = 1e6 / cpu
        print(f"server CPU until stored, assembly deferred: {cpu:.1f} us/span ({per_cpu_s:,.0f} spans/CPU-s)")
    if store["documents"]:
        print(
            f"documents on the spans: {store['documents']:,}; stored "
            f"{store['documents'] / alone['stored_s']:,.0f} documents/s with assembly deferred, "
            f"{store['documents'] / http['stored_s']:,.0f} assembling"
        )
        calls, trace = http["check"], alone["check"]
        print(
            f"documents read back whole: {calls['documents']:,} on the {calls['agent_turns']} agent turns "
            f"of {calls['calls']} calls (assembling server); {trace['documents']} on the {trace['spans']} "
            f"spans of trace {trace['trace']} (deferred server)"
        )
    phoenix = result.get("phoenix")
    if phoenix is not None:
        ours = result["http_spans_only_phoenix_sized"]
        print(f"\nArize Phoenix, the first {phoenix['spans']:,} spans, one server at a time:")
        print_table(
            ["server", "ack spans/s", "stored spans/s", "last ack -> stored"],
            [
                [
                    "convoscope (assembly deferred)",
                    f"{ours['ack_spans_s']:,.0f}",
                    f"{ours['stored_spans_s']:,.0f}",
                    f"{ours['last_ack_to_stored_s']:.2f} s",
                ],
                [
                    "Arize Phoenix",
                    f"{phoenix['ack_spans_s']:,.0f}",
                    f"{phoenix['stored_spans_s']:,.0f}",
                    f"{phoenix['last_ack_to_stored_s']:.2f} s",
                ],
            ],
        )
        print(
            f"stored spans/s, convoscope / Phoenix: {ours['stored_spans_s'] / phoenix['stored_spans_s']:.1f}x"
        )
    if result["workload"] == "pipecat":
        goal = "meets" if alone["ack_spans_s"] >= GOAL_SPANS_S else "misses"
        print(f"goal >= {GOAL_SPANS_S:,.0f} spans/s acknowledged: {goal} it")


def compare(pipecat: dict[str, Any], rag: dict[str, Any]) -> dict[str, float]:
    """RAG's figures over Pipecat's, from the same run; prints them and the goal's verdict."""
    rows: list[list[str]] = []
    ratios: dict[str, float] = {}
    for label, server, key in (
        ("ack spans/s, assembly deferred", "http_spans_only", "ack_spans_s"),
        ("stored spans/s, assembly deferred", "http_spans_only", "stored_spans_s"),
        ("ack spans/s, assembling", "http", "ack_spans_s"),
        ("stored spans/s, assembling", "http", "stored_spans_s"),
    ):
        ours, theirs = rag[server][key], pipecat[server][key]
        ratios[f"{server}.{key}"] = ours / theirs
        rows.append([label, f"{theirs:,.0f}", f"{ours:,.0f}", _ratio(ours, theirs)])
    ours, theirs = rag["store"]["spans_s"], pipecat["store"]["spans_s"]
    rows.append(
        ["store insert_spans spans/s (reference)", f"{theirs:,.0f}", f"{ours:,.0f}", _ratio(ours, theirs)]
    )
    cpu_rag, cpu_pipecat = (r["http_spans_only"]["server_cpu_us_per_span"] for r in (rag, pipecat))
    if cpu_rag is not None and cpu_pipecat is not None:
        ratios["server_cpu_us_per_span"] = cpu_rag / cpu_pipecat
        rows.append(
            [
                "server CPU us/span, deferred",
                f"{cpu_pipecat:.1f}",
                f"{cpu_rag:.1f}",
                _ratio(cpu_rag, cpu_pipecat),
            ]
        )
    size_rag, size_pipecat = (r["store"]["bytes"] / r["store"]["spans"] for r in (rag, pipecat))
    rows.append(
        [
            "bytes a span (protobuf)",
            f"{size_pipecat:,.0f}",
            f"{size_rag:,.0f}",
            _ratio(size_rag, size_pipecat),
        ]
    )
    mb_rag, mb_pipecat = (
        r["store"]["bytes"] / r["store"]["spans"] * r["http_spans_only"]["ack_spans_s"] / 1e6
        for r in (rag, pipecat)
    )
    rows.append(
        ["ack MB/s, assembly deferred", f"{mb_pipecat:,.1f}", f"{mb_rag:,.1f}", _ratio(mb_rag, mb_pipecat)]
    )
    print("\n## RAG against Pipecat, same run\n")
    print_table(["figure", "pipecat", "rag", "rag / pipecat"], rows)
    deferred, assembling = ratios["http_spans_only.ack_spans_s"], ratios["http.ack_spans_s"]
    goal = "meets" if min(deferred, assembling) >= GOAL_RAG_RATIO else "misses"
    print(
        f"goal: RAG ack spans/s >= {GOAL_RAG_RATIO:.1f} x Pipecat's (assembly deferred {deferred:.2f}, "
        f"assembling {assembling:.2f}): {goal} it"
    )
    return ratios


def run_workload(
    workload: Workload,
    count: int,
    warmup_count: int,
    args: argparse.Namespace,
    root: Path,
    check: Callable[[list[bytes]], Check | None],
) -> dict[str, Any]:
    """Every figure of one workload: the store references, both servers, Phoenix when asked."""
    workdir = root / workload.name
    bodies = build_exports(workload, count, seed=7)
    warmup_bodies = build_exports(workload, warmup_count, seed=8, first=count)
    warmup_turns = expected_turns(_assemble([s for batch in _decode(warmup_bodies) for s in batch]))
    store = bench_store(bodies, workdir)
    turns = store.pop("turns")
    if workload.turns_per_call is not None:
        odd = [(k, n) for k, n in {**warmup_turns, **turns}.items() if n != workload.turns_per_call]
        if odd:
            raise SystemExit(f"the mapper made calls without {workload.turns_per_call} turns: {odd[:3]}")
    spans_only, http = (
        bench_http(
            bodies,
            store["spans"],
            turns,
            args.clients,
            workdir,
            args.timeout,
            assemble=assemble,
            warmup=(warmup_bodies, warmup_turns),
            check=check(bodies),
        )
        for assemble in (False, True)
    )
    result: dict[str, Any] = {
        "workload": workload.name,
        "title": workload.title,
        "unit": workload.unit,
        "count": count,
        "warmup": warmup_count,
        "exports": len(bodies),
        "store": store,
        "http_spans_only": spans_only,
        "http": http,
    }
    if args.phoenix:
        subset = bodies[: args.phoenix_exports]
        subset_spans = sum(len(batch) for batch in _decode(subset))
        result["http_spans_only_phoenix_sized"] = bench_http(
            subset, subset_spans, {}, args.clients, workdir / "small", args.timeout, assemble=False
        )
        venv = args.phoenix_venv or root / "phoenix-venv"
        result["phoenix"] = bench_phoenix(subset, subset_spans, args.clients, workdir, venv, args.timeout)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=("pipecat", "rag", "both"), default="both")
    parser.add_argument("--conversations", type=int, default=1000, help="Pipecat conversations")
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation (4 spans each, + root)")
    parser.add_argument("--sessions", type=int, default=800, help="RAG chat sessions (one call each)")
    parser.add_argument(
        "--questions",
        type=int,
        default=5,
        help=f"questions per RAG session (a trace of {RAG_SPANS} spans each)",
    )
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 conversations, 80 sessions")
    parser.add_argument(
        "--warmup", type=int, default=50, help="Pipecat conversations sent and stored before timing (0: none)"
    )
    parser.add_argument(
        "--rag-warmup", type=int, default=40, help="RAG sessions sent and stored before timing (0: none)"
    )
    parser.add_argument(
        "--check-calls", type=int, default=20, help="RAG calls read back through the API after the run"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--phoenix", action="store_true", help="also measure Arize Phoenix (throwaway venv)")
    parser.add_argument("--phoenix-venv", type=Path, default=None, help="reuse this Phoenix venv")
    parser.add_argument("--phoenix-exports", type=int, default=8, help="exports of 512 spans sent to Phoenix")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.sessions = 100, 80
    env = environment()
    print_environment(env)
    names = ("pipecat", "rag") if args.workload == "both" else (args.workload,)
    workdir = Path(tempfile.mkdtemp(prefix="convoscope-bench-otlp-"))
    results: dict[str, Any] = {"environment": env, "args": vars(args) | {"json": str(args.json)}}
    try:
        for name in names:
            if name == "pipecat":
                result = run_workload(
                    pipecat_workload(args.turns),
                    args.conversations,
                    args.warmup,
                    args,
                    workdir,
                    lambda _: None,
                )
            else:
                result = run_workload(
                    rag_workload(args.questions),
                    args.sessions,
                    args.rag_warmup,
                    args,
                    workdir,
                    lambda bodies: rag_check(bodies, args.questions, args.check_calls),
                )
            results[name] = result
            report(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if "pipecat" in results and "rag" in results:
        results["rag_vs_pipecat"] = compare(results["pipecat"], results["rag"])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
