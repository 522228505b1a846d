"""A chat app on the real ``openai`` SDK, traced by one instrumentation library, and the model it talks to.

The model is a loopback server speaking the OpenAI chat-completions protocol, plain and streamed, with
tool calls (``convoscope.testing.openai_server`` answers plain text only, never streamed): it answers a
request whose last message is a user line from :data:`SCRIPT`, either with text or with a ``check_slots``
tool call, and a request that carries the tool's result with the text that uses it. Every answer names
fixed token counts, so a test can check the usage the instrumentation recorded.

The app runs as its own process (``python llm_apps_kit.py '<AppRun as JSON>'``): the three libraries patch
the same SDK, and each keeps process-wide state (a tracer provider, wrapped methods, settings read from
the environment when it instruments), so one process per library is what keeps them apart, as it keeps
apart the deployed app and the server it exports to. It instruments the SDK the way each library's
documentation says, names the conversation the way that library does, and exports with the real OTLP
HTTP exporter. Log records (where some instrumentations put message content) go out through the real
OTLP HTTP log exporter when ``AppRun.logs_endpoint`` is set, and are also kept in memory and written to
``AppRun.logs_path`` as JSON for the test to read.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from convoscope.testing.http_server import serve_http

MODEL = "gpt-4o-mini"
SYSTEM = "You are the clinic's assistant. Book cleanings."
TOOL_NAME = "check_slots"
TOOL_ARGUMENTS = {"day": "tuesday"}
TOOL_RESULT = {"free": ["9:00", "14:30"]}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Free cleaning slots on a day.",
            "parameters": {
                "type": "object",
                "properties": {"day": {"type": "string"}},
                "required": ["day"],
            },
        },
    }
]


@dataclass(frozen=True)
class Line:
    """A user line and what the model answers to it: text, or a tool call and then ``after_tool``."""

    user: str
    agent: str
    tool: bool = False
    after_tool: str = ""
    usage: tuple[int, int] = (0, 0)
    tool_usage: tuple[int, int] = (0, 0)
    """Tokens of the request that carries the tool's result."""


SCRIPT: tuple[Line, ...] = (
    Line("Hi, can I book a cleaning?", "Sure, which day suits you?", usage=(101, 11)),
    Line(
        "Tuesday, please.",
        "",
        tool=True,
        after_tool="Tuesday at nine or half past two is free. Which one?",
        usage=(131, 17),
        tool_usage=(173, 19),
    ),
    Line("Nine, thanks.", "Booked: Tuesday at nine. See you then!", usage=(211, 13)),
)
"""Three user lines, one tool round trip: four requests, each resending the whole history."""


_SMALL_TALK = re.compile(r"^One more thing \((\d+)\)\.$")


def _small_talk(n: int) -> Line:
    return Line(f"One more thing ({n}).", f"Noted, thing {n}.", usage=(300 + n, 5))


def script(small_talk: int = 0) -> tuple[Line, ...]:
    """The chat: :data:`SCRIPT`, with ``small_talk`` more lines after the tool round trip (a long chat)."""
    return (*SCRIPT[:2], *(_small_talk(n) for n in range(small_talk)), *SCRIPT[2:])


def _line_for(said: object) -> Line | None:
    found = _SMALL_TALK.match(said) if isinstance(said, str) else None
    if found:
        return _small_talk(int(found.group(1)))
    return next((line for line in SCRIPT if line.user == said), None)


def expected_tokens(lines: tuple[Line, ...] = SCRIPT) -> tuple[int, int]:
    """Prompt and completion tokens the model's answers name, over the whole chat."""
    pairs = [line.usage for line in lines] + [line.tool_usage for line in lines if line.tool]
    return sum(p for p, _ in pairs), sum(c for _, c in pairs)


# -- the model ------------------------------------------------------------------------------------------


@dataclass
class ToolChatModel:
    """What the fake model was asked (each request body), and how it answers."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message and usage for a request (a 200 body without the envelope)."""
        with self.lock:
            self.requests.append(body)
            self.counter += 1
            number = self.counter
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            line = next(line for line in SCRIPT if line.tool)
            message: dict[str, Any] = {"role": "assistant", "content": line.after_tool}
            usage, finish = line.tool_usage, "stop"
        else:
            said = last.get("content")
            line = _line_for(said)
            if line is None:
                raise LookupError(f"no scripted answer to {said!r}")
            usage = line.usage
            if line.tool and body.get("tools"):
                call = {
                    "id": f"call_{number:04d}",
                    "type": "function",
                    "function": {"name": TOOL_NAME, "arguments": json.dumps(TOOL_ARGUMENTS)},
                }
                message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
            else:
                message, finish = {"role": "assistant", "content": line.agent}, "stop"
        return {
            "id": f"chatcmpl-fake-{number}",
            "model": body.get("model", MODEL),
            "message": message,
            "finish_reason": finish,
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            },
        }


def _completion(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": answer["id"],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer["model"],
        "choices": [{"index": 0, "message": answer["message"], "finish_reason": answer["finish_reason"]}],
        "usage": answer["usage"],
    }


def _chunks(answer: dict[str, Any], include_usage: bool) -> Iterator[dict[str, Any]]:
    """The answer as ``chat.completion.chunk`` events: the role, the text word by word or the tool call
    in two argument pieces, the finish reason, then the usage when the client asked for it."""
    base = {"id": answer["id"], "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = answer["model"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    message = answer["message"]
    yield chunk({"role": "assistant", "content": ""})
    for call in message.get("tool_calls") or []:
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": arguments[:half]},
                    }
                ]
            }
        )
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]})
    words = (message.get("content") or "").split(" ")
    for i, word in enumerate(w for w in words if w):
        yield chunk({"content": word if i == 0 else f" {word}"})
    yield chunk({}, answer["finish_reason"])
    if include_usage:
        yield {**base, "choices": [], "usage": answer["usage"]}


@contextmanager
def serve_model() -> Iterator[tuple[str, ToolChatModel]]:
    """The fake model on loopback: yields its base URL (ending in ``/v1``) and its record."""
    model = ToolChatModel()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            try:
                answer = model.answer(body)
            except LookupError as missing:
                self._json(500, {"error": {"message": str(missing), "type": "server_error"}})
                return
            if not body.get("stream"):
                self._json(200, _completion(answer))
                return
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in _chunks(answer, include_usage):
                self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve_http(Handler) as url:
        yield f"{url}/v1", model


# -- the app --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppRun:
    """What one app process does: which library traces it, where it exports, which conversation."""

    library: str
    """``openinference``, ``openllmetry`` or ``genai`` (``opentelemetry-instrumentation-openai-v2``)."""
    model_url: str
    endpoint: str
    api_key: str
    session_id: str
    logs_path: str
    stream: bool = False
    small_talk: int = 0
    parent: str = "conversation"
    """Spans around the requests: ``conversation`` (one for the whole chat), ``turn`` (one per user
    line), or ``none`` (each request is a trace of its own)."""
    logs_endpoint: str = ""
    """Where the OTLP HTTP log exporter sends the log records too (none when empty)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _instrument(run: AppRun, provider: Any, logs: Any) -> None:
    if run.library == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=provider)
    elif run.library == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

        OpenLLMetry().instrument(tracer_provider=provider)
    elif run.library == "genai":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as GenAI

        GenAI().instrument(tracer_provider=provider, logger_provider=logs)
    else:
        raise ValueError(f"unknown library {run.library!r}")


def _session(run: AppRun) -> AbstractContextManager[object]:
    """How each library's users name a conversation for the whole chat (``nullcontext`` where the
    conversation is named on the app's own spans instead)."""
    if run.library == "openinference":
        from openinference.instrumentation import using_session

        return using_session(run.session_id)
    return nullcontext()


def _parent_attributes(run: AppRun) -> dict[str, str]:
    """The conversation named on the app's own span: GenAI's ``gen_ai.conversation.id``, and for
    OpenLLMetry the attribute ``Traceloop.set_association_properties`` writes (the traceloop-sdk that
    owns that call is not installed here, so the app writes the attribute itself, as it would on a span
    of its own)."""
    if run.library == "genai":
        return {"gen_ai.conversation.id": run.session_id}
    if run.library == "openllmetry":
        return {"traceloop.association.properties.session_id": run.session_id}
    return {}


def main(run: AppRun) -> None:
    """The chat, as an app on the SDK would hold it: the history resent with every request, a tool
    call answered with the tool's result and a request more."""
    from openai import OpenAI
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        BatchLogRecordProcessor,
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: f"clinic-chat-{run.library}"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=run.endpoint, headers={"Authorization": f"Bearer {run.api_key}"})
        )
    )
    logs = LoggerProvider(resource=resource)
    kept = InMemoryLogRecordExporter()
    logs.add_log_record_processor(SimpleLogRecordProcessor(kept))
    if run.logs_endpoint:
        logs.add_log_record_processor(
            BatchLogRecordProcessor(
                OTLPLogExporter(
                    endpoint=run.logs_endpoint, headers={"Authorization": f"Bearer {run.api_key}"}
                )
            )
        )
    _instrument(run, provider, logs)
    tracer = provider.get_tracer("clinic-chat")
    client = OpenAI(base_url=run.model_url, api_key="sk-test", max_retries=0)

    def ask(messages: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """One request: what the app appends to its history, and the tool calls asked for. A plain
        answer goes back as the SDK's own message object (as OpenAI's cookbook does), a streamed one as
        the dict the app put together from the chunks."""
        if not run.stream:
            reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
            said = reply.choices[0].message
            asked = [
                {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                for c in said.tool_calls or []
                if c.type == "function"
            ]
            return said, asked
        text, calls = "", {}
        for chunk in client.chat.completions.create(
            model=MODEL, messages=messages, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        ):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for piece in choice.delta.tool_calls or []:
                    call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = piece.id or call["id"]
                    if piece.function is not None:
                        call["name"] += piece.function.name or ""
                        call["arguments"] += piece.function.arguments or ""
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in calls.values()
            ]
        return message, list(calls.values())

    def span(name: str) -> AbstractContextManager[object]:
        return tracer.start_as_current_span(name, attributes=_parent_attributes(run))

    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    whole = span("chat session") if run.parent == "conversation" else nullcontext()
    with _session(run), whole:
        for line in script(run.small_talk):
            with span("chat turn") if run.parent == "turn" else nullcontext():
                messages.append({"role": "user", "content": line.user})
                answer, calls = ask(messages)
                messages.append(answer)
                for call in calls:
                    assert (call["name"], json.loads(call["arguments"])) == (TOOL_NAME, TOOL_ARGUMENTS)
                    messages.append(
                        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps(TOOL_RESULT)}
                    )
                if calls:
                    messages.append(ask(messages)[0])
    assert provider.force_flush(10_000), "the spans were not exported"
    provider.shutdown()
    assert logs.force_flush(10_000), "the log records were not exported"
    logs.shutdown()
    with open(run.logs_path, "w") as out:
        json.dump([_log(record) for record in kept.get_finished_logs()], out)


def _log(data: Any) -> dict[str, Any]:
    """A log record as plain JSON: its event name, body, attributes and the span it belongs to."""
    record = getattr(data, "log_record", data)
    return {
        "event_name": getattr(record, "event_name", None),
        "body": record.body,
        "attributes": dict(record.attributes or {}),
        "trace_id": f"{record.trace_id:032x}" if record.trace_id else None,
        "span_id": f"{record.span_id:016x}" if record.span_id else None,
    }


if __name__ == "__main__":
    main(AppRun(**json.loads(sys.argv[1])))
