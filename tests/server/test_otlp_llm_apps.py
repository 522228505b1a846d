"""Chat apps traced by the instrumentation libraries people install, exporting to a live server.

A chat app on the real ``openai`` SDK talks to a loopback model (a 3-line chat with one ``check_slots``
tool round trip, four requests each resending the history) with one library's instrumentation on:
OpenInference (``openinference-instrumentation-openai``), OpenLLMetry (Traceloop's
``opentelemetry-instrumentation-openai``) or OpenTelemetry's own
(``opentelemetry-instrumentation-openai-v2``).
Its spans, and its log records where the library puts the messages there, go out through the real OTLP
HTTP exporters; the call is read back through the API. Nothing here writes an LLM span: when a release
changes what its spans say, these tests fail, where the tests in ``tests/ingest/test_otlp_conventions.py``
(hand-written spans) would not notice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from llm_apps_kit import (
    MODEL,
    SCRIPT,
    SYSTEM,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    TOOL_RESULT,
    AppRun,
    Line,
    ToolChatModel,
    expected_tokens,
    script,
    serve_model,
)
from test_otlp_kit import KEY, LiveServer, otlp_settings, serve

from convoscope.ingest.otlp.genai import GenAIMapper
from convoscope.server.services import open_services
from convoscope.store.clickhouse import ClickHouseStore

APP = Path(__file__).with_name("llm_apps_kit.py")
PRICE = (0.15, 0.60)
APP_TIMEOUT_S = 60


@pytest.fixture
def live(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[LiveServer]:
    services = open_services(otlp_settings(tmp_path, llm_prices={MODEL: PRICE}), store=clickhouse_store)
    try:
        yield from serve(services)
    finally:
        services.meta.close()


@pytest.fixture
def model() -> Iterator[tuple[str, ToolChatModel]]:
    with serve_model() as served:
        yield served


@dataclass(frozen=True)
class Setup:
    """One library as its users set it up."""

    library: str
    convention: str
    parent: str
    env: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    small_talk: int = 0

    @property
    def lines(self) -> tuple[Line, ...]:
        return script(self.small_talk)


OPENINFERENCE = Setup("openinference", "openinference", parent="none")
"""``using_session`` around the chat, no span of the app's own: each request is a trace of its own."""
OPENLLMETRY = Setup("openllmetry", "genai", parent="turn", env={"TRACELOOP_TRACE_CONTENT": "true"})
"""A span per user line carrying the association property; content on by default (said here anyway)."""
GENAI_SPANS = Setup(
    "genai",
    "genai",
    parent="conversation",
    env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"},
)
"""``gen_ai.conversation.id`` on one span around the chat; messages captured on the spans."""
GENAI_EVENTS = Setup(
    "genai",
    "genai",
    parent="conversation",
    env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only"},
)
"""The same, but the messages go to log records only (the spans carry none), sent to ``/v1/logs``."""


@dataclass(frozen=True)
class Exported:
    """What one app run left: the call, the requests the model saw, and the log records it emitted."""

    call: dict[str, Any]
    requests: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    spans: dict[str, Any]


def chat(live: LiveServer, model: tuple[str, ToolChatModel], setup: Setup, tmp_path: Path) -> Exported:
    """Run the app in its own process to its end (it flushes its spans), assemble, read the one call."""
    url, fake = model
    run = AppRun(
        library=setup.library,
        model_url=url,
        endpoint=f"{live.url}/v1/traces",
        api_key=KEY,
        session_id=f"chat-{uuid.uuid4().hex[:12]}",
        logs_path=str(tmp_path / "logs.json"),
        logs_endpoint=f"{live.url}/v1/logs",
        stream=setup.stream,
        small_talk=setup.small_talk,
        parent=setup.parent,
    )
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "OPENAI_"))
    }
    done = subprocess.run(
        [sys.executable, str(APP), run.to_json()],
        capture_output=True,
        text=True,
        timeout=APP_TIMEOUT_S,
        check=False,
        env={**environment, **setup.env},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    live.process()
    page = live.get("/api/v1/calls?source=generic&limit=100").json()
    (item,) = page["items"]
    call: dict[str, Any] = live.call(item["id"])["call"]
    assert call["external_id"] == run.session_id
    spans = live.get(f"/api/v1/calls/{call['id']}/spans").json()
    logs = json.loads(Path(run.logs_path).read_text())
    return Exported(call, list(fake.requests), logs, spans)


def assert_structure(exported: Exported, setup: Setup) -> None:
    """What a call is whatever carries the messages: one chat call holding every request of the session,
    its tokens and cost, and the conventions it was read from."""
    call = exported.call
    lines = setup.lines
    requests = len(lines) + 1  # each line, and the request that carried the tool's result
    assert len(exported.requests) == requests
    assert call["source"] == "generic"
    metadata = call["metadata"]
    assert metadata["modality"] == "chat" and metadata["mapper"] == GenAIMapper.version
    assert metadata["conventions"] == [setup.convention]
    assert metadata["errors"] == [] and metadata["malformed_messages"] == []
    assert metadata["service"] == f"clinic-chat-{setup.library}"
    prompt, completion = expected_tokens(lines)
    usage = call["usage"]
    assert (usage["llm_prompt_tokens"], usage["llm_completion_tokens"]) == (prompt, completion)
    costs = {(line["product"], line["unit"]): line["amount"] for line in call["cost"]}
    assert costs == pytest.approx(
        {
            (f"llm:{MODEL}", "input_tokens"): prompt * PRICE[0] / 1e6,
            (f"llm:{MODEL}", "output_tokens"): completion * PRICE[1] / 1e6,
        },
        abs=1e-9,
    )
    llm_spans = [s for s in _walk(exported.spans["roots"]) if s["name"] not in ("chat session", "chat turn")]
    assert len(llm_spans) == requests
    traces = {"none": requests, "turn": len(lines), "conversation": 1}[setup.parent]
    assert len(exported.spans["trace_ids"]) == traces


def assert_conversation(exported: Exported, setup: Setup) -> None:
    """The chat line by line: each user and agent line once and in order, the tool call the model asked
    for (name, arguments, the result the app sent back) on the agent turn that followed it, and the system
    prompt kept on the call, not said in it."""
    call = exported.call
    expected: list[tuple[str, str]] = []
    for line in setup.lines:
        expected += [("user", line.user), ("agent", line.after_tool if line.tool else line.agent)]
    assert [(t["role"], t["text"]) for t in call["turns"]] == expected
    assert [t["index"] for t in call["turns"]] == list(range(len(expected)))
    starts = [t["start_s"] for t in call["turns"]]
    assert starts == sorted(starts)
    (tool,) = call["tool_calls"]
    asked = next(m for m in exported.requests[2]["messages"] if m.get("tool_calls"))
    assert tool["id"] == asked["tool_calls"][0]["id"]
    assert (tool["name"], tool["arguments"], tool["result"]) == (TOOL_NAME, TOOL_ARGUMENTS, TOOL_RESULT)
    after = next(i for i, line in enumerate(setup.lines) if line.tool)
    assert tool["turn_index"] == 2 * after + 1 and call["turns"][tool["turn_index"]]["role"] == "agent"
    assert call["metadata"]["system_prompts"] == [SYSTEM]
    assert call["metadata"]["rewritten_histories"] == 0


def _walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _walk(node.get("children", []))


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(OPENINFERENCE, id="openinference"),
        pytest.param(Setup(**{**OPENINFERENCE.__dict__, "stream": True}), id="openinference-streamed"),
        pytest.param(OPENLLMETRY, id="openllmetry"),
        pytest.param(Setup(**{**OPENLLMETRY.__dict__, "stream": True}), id="openllmetry-streamed"),
        pytest.param(GENAI_SPANS, id="genai-span-only"),
        pytest.param(Setup(**{**GENAI_SPANS.__dict__, "stream": True}), id="genai-span-only-streamed"),
    ],
)
def test_a_traced_chat_app_becomes_one_chat_call(
    live: LiveServer, model: tuple[str, ToolChatModel], setup: Setup, tmp_path: Path
) -> None:
    """Each library as its documentation sets it up, plain and streamed: the session named where that
    library names it (on every LLM span, on a span per turn, on one span around the chat), the messages
    in its own convention, and the same call out of all of them."""
    exported = chat(live, model, setup, tmp_path)
    assert_structure(exported, setup)
    assert_conversation(exported, setup)
    assert exported.logs == []  # the messages came on the spans, nowhere else


LONG_CHAT = Setup("openinference", "openinference", parent="conversation", small_talk=40)
"""Forty more lines: past the 128 attributes the OpenTelemetry SDK keeps on a span by default."""


def test_a_long_chat_whose_oldest_messages_the_tracer_dropped_is_still_read_once(
    live: LiveServer, model: tuple[str, ToolChatModel], tmp_path: Path
) -> None:
    """The SDK drops a span's oldest attributes past its count limit, so the late requests' spans name
    their history from message N on, without the system prompt, the tool round trip or ``session.id``
    (``using_session`` puts it on the span first). Read by position, that history is neither new nor a
    rewrite; the conversation is kept whole by the trace (one span of the app's around the chat: without
    it, a late request that lost its ``session.id`` would be a call of its own)."""
    exported = chat(live, model, LONG_CHAT, tmp_path)
    llm_spans = [s for s in _walk(exported.spans["roots"]) if s["name"] == "ChatCompletion"]
    last = max(llm_spans, key=lambda s: s["start"])["attributes"]
    assert "llm.input_messages.0.message.role" not in last and "session.id" not in last
    assert last["llm.output_messages.0.message.content"] == LONG_CHAT.lines[-1].agent
    assert_structure(exported, LONG_CHAT)
    assert_conversation(exported, LONG_CHAT)


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(GENAI_EVENTS, id="genai-event-only"),
        pytest.param(Setup(**{**GENAI_EVENTS.__dict__, "stream": True}), id="genai-event-only-streamed"),
    ],
)
def test_genai_messages_sent_as_log_events_make_the_turns(
    live: LiveServer, model: tuple[str, ToolChatModel], setup: Setup, tmp_path: Path
) -> None:
    """With content captured as events only, the spans carry the requests (model, tokens, finish
    reasons) and the messages go out as one log record per request, tied to its span by trace and span
    id, through the OTLP HTTP log exporter to ``/v1/logs``: the records are joined to their spans when the
    call is assembled, and the call is the same chat line by line as when the spans carry the messages."""
    exported = chat(live, model, setup, tmp_path)
    assert_structure(exported, setup)
    llm_spans = sorted(
        (s for s in _walk(exported.spans["roots"]) if s["name"] == f"chat {MODEL}"), key=lambda s: s["start"]
    )
    # The stored spans stay as the app sent them: the messages are read from the records, not copied.
    assert all("gen_ai.input.messages" not in s["attributes"] for s in llm_spans)
    events = exported.logs
    assert [e["event_name"] for e in events] == ["gen_ai.client.inference.operation.details"] * len(llm_spans)
    assert [(e["trace_id"], e["span_id"]) for e in events] == [
        (s["trace_id"], s["span_id"]) for s in llm_spans
    ]
    assert all(e["body"] is None for e in events)
    last = events[-1]["attributes"]
    # Structured values (OTLP kvlist/array), not the JSON strings the span attributes hold.
    assert last["gen_ai.input.messages"][0] == {
        "role": "system",
        "parts": [{"content": SYSTEM, "type": "text"}],
    }
    assert last["gen_ai.input.messages"][-1]["parts"] == [{"content": SCRIPT[-1].user, "type": "text"}]
    assert last["gen_ai.output.messages"][0]["parts"] == [{"content": SCRIPT[-1].agent, "type": "text"}]
    assert last["gen_ai.usage.input_tokens"] == SCRIPT[-1].usage[0]
    assert_conversation(exported, setup)
    assert live.services.otlp_logs.stored_records == len(llm_spans)
