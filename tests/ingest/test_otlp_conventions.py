"""One chat, three conventions: the GenAI attributes (current and legacy/OpenLLMetry) and OpenInference's.

A 3-turn conversation with one tool round trip is exported the way each convention writes it, each
request resending the whole history. Whatever the convention, the call must hold each line once, in
order; the tool call the model asked for, with its arguments, on the agent turn that follows it, with the
result the tool span returned; the system prompt kept on the call, not as a turn; tokens counted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _otlp_spans import span as _span

from convoscope.ingest.otlp import PriceTable, mapper_for, resolve_keys
from convoscope.model import Role, Span

SYSTEM = "You are the clinic's assistant."
HI, WHICH_DAY, TUESDAY = "Hi, can I book a cleaning?", "Sure, which day?", "Tuesday please."
FREE = "Tuesday at nine is free. Shall I book it?"
CALL = {"id": "call_1", "name": "check_slots", "arguments": {"day": "tuesday"}}
RESULT = {"free": ["9:00"]}

# The three requests: (history sent, answer), in a neutral form each convention writes its own way.
REQUESTS: list[tuple[list[dict[str, Any]], dict[str, Any]]] = [
    (
        [{"role": "system", "text": SYSTEM}, {"role": "user", "text": HI}],
        {"role": "assistant", "text": WHICH_DAY},
    ),
    (
        [
            {"role": "system", "text": SYSTEM},
            {"role": "user", "text": HI},
            {"role": "assistant", "text": WHICH_DAY},
            {"role": "user", "text": TUESDAY},
        ],
        {"role": "assistant", "text": "", "calls": [CALL]},
    ),
    (
        [
            {"role": "system", "text": SYSTEM},
            {"role": "user", "text": HI},
            {"role": "assistant", "text": WHICH_DAY},
            {"role": "user", "text": TUESDAY},
            {"role": "assistant", "text": "", "calls": [CALL]},
            {"role": "tool", "text": json.dumps(RESULT), "answers": "call_1"},
        ],
        {"role": "assistant", "text": FREE},
    ),
]


def _genai(messages: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, object]:
    def parts(m: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"type": "text", "content": m["text"]}] if m["text"] else []
        out += [{"type": "tool_call", **call} for call in m.get("calls", [])]
        if "answers" in m:
            out = [{"type": "tool_call_response", "id": m["answers"], "response": json.loads(m["text"])}]
        return out

    system = [m for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system[0]["text"]}]),
        "gen_ai.input.messages": json.dumps([{"role": m["role"], "parts": parts(m)} for m in rest]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": parts(answer)}]),
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }


def _genai_inline(messages: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, object]:
    """As OpenLLMetry (0.62) and ``opentelemetry-instrumentation-openai-v2`` (2.4b0, ``span_only``) export
    it: the system prompt is the first of ``gen_ai.input.messages`` (no ``gen_ai.system_instructions``),
    a tool's result is the JSON string the app sent (``response``), and each output names its
    ``finish_reason``."""

    def parts(m: dict[str, Any]) -> list[dict[str, Any]]:
        if "answers" in m:
            return [{"type": "tool_call_response", "id": m["answers"], "response": m["text"]}]
        out: list[dict[str, Any]] = [{"content": m["text"], "type": "text"}] if m["text"] else []
        return out + [{"type": "tool_call", **call} for call in m.get("calls", [])]

    finish = "tool_calls" if answer.get("calls") else "stop"
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": [finish],
        "gen_ai.input.messages": json.dumps([{"role": m["role"], "parts": parts(m)} for m in messages]),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": parts(answer), "finish_reason": finish}]
        ),
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }


def _flat(
    messages: list[dict[str, Any]], answer: dict[str, Any], *, inp: str, out: str, f: dict[str, str]
) -> dict[str, object]:
    attributes: dict[str, object] = {}
    for prefix, items in ((inp, messages), (out, [answer])):
        for i, m in enumerate(items):
            attributes[f"{prefix}{i}.{f['role']}"] = m["role"]
            if m["text"]:
                attributes[f"{prefix}{i}.{f['content']}"] = m["text"]
            for j, call in enumerate(m.get("calls", [])):
                base = f"{prefix}{i}.{f['calls']}{j}."
                attributes[base + f["id"]] = call["id"]
                attributes[base + f["name"]] = call["name"]
                attributes[base + f["arguments"]] = json.dumps(call["arguments"])
            if "answers" in m:
                attributes[f"{prefix}{i}.{f['answers']}"] = m["answers"]
    return attributes


def _legacy(messages: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, object]:
    fields = {
        "role": "role",
        "content": "content",
        "calls": "tool_calls.",
        "id": "id",
        "name": "name",
        "arguments": "arguments",
        "answers": "tool_call_id",
    }
    return {
        "llm.request.type": "chat",
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 10,
        **_flat(messages, answer, inp="gen_ai.prompt.", out="gen_ai.completion.", f=fields),
    }


def _openinference(messages: list[dict[str, Any]], answer: dict[str, Any]) -> dict[str, object]:
    fields = {
        "role": "message.role",
        "content": "message.content",
        "calls": "message.tool_calls.",
        "id": "tool_call.id",
        "name": "tool_call.function.name",
        "arguments": "tool_call.function.arguments",
        "answers": "message.tool_call_id",
    }
    return {
        "openinference.span.kind": "LLM",
        "llm.token_count.prompt": 100,
        "llm.token_count.completion": 10,
        "llm.model_name": "gpt-4o-mini",
        **_flat(messages, answer, inp="llm.input_messages.", out="llm.output_messages.", f=fields),
    }


def _tool_span(convention: str) -> Span:
    if convention == "openinference":
        attributes: dict[str, object] = {
            "openinference.span.kind": "TOOL",
            "tool.name": "check_slots",
            "tool_call.id": "call_1",
            "output.value": json.dumps(RESULT),
        }
    else:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "check_slots",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.result": json.dumps(RESULT),
        }
    return _span(9, "execute_tool check_slots", 4.2, 4.4, parent=1, **attributes)


WRITERS = {
    "genai": (_genai, "genai"),
    "genai-inline-system": (_genai_inline, "genai"),
    "genai-legacy": (_legacy, "genai-legacy"),
    "openinference": (_openinference, "openinference"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_chat_with_a_tool_round_trip_reads_the_same_in_every_convention(writer: str) -> None:
    write, convention = WRITERS[writer]
    root = _span(1, "agent run", 0.0, 9.0, **{"session.id": "chat-1"})
    llm = [
        _span(2 + i, "chat", 3.0 * i, 3.0 * i + 1.0, parent=1, **write(messages, answer))
        for i, (messages, answer) in enumerate(REQUESTS)
    ]
    spans = [root, *llm, _tool_span(convention)]
    keys = resolve_keys(spans)
    assert set(keys.values()) == {"genai:chat-1"}
    call = mapper_for("genai:chat-1").assemble("genai:chat-1", spans, started_at=None, prices=PriceTable())
    assert call is not None
    assert [(t.role, t.text) for t in call.turns] == [
        (Role.USER, HI),
        (Role.AGENT, WHICH_DAY),
        (Role.USER, TUESDAY),
        (Role.AGENT, FREE),
    ]
    (tool,) = call.tool_calls
    assert (tool.id, tool.name, tool.arguments, tool.result) == (
        "call_1",
        "check_slots",
        CALL["arguments"],
        RESULT,
    )
    assert tool.turn_index == 3 and tool.success is True
    assert tool.start_s == pytest.approx(4.2) and tool.end_s == pytest.approx(4.4)
    assert call.metadata["system_prompts"] == [SYSTEM]
    assert call.metadata["conventions"] == [convention] and call.metadata["rewritten_histories"] == 0
    assert call.usage.llm_prompt_tokens == 300 and call.usage.llm_completion_tokens == 30


def test_malformed_message_json_is_kept_and_flagged_never_a_failed_assembly() -> None:
    broken = _span(
        2,
        "chat",
        0.0,
        1.0,
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.conversation.id": "c",
            "gen_ai.input.messages": "[{not json",
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "Hi!"}]),
        },
    )
    call = mapper_for("genai:c").assemble("genai:c", [broken], started_at=None, prices=PriceTable())
    assert call is not None and [t.text for t in call.turns] == ["Hi!"]
    assert call.metadata["malformed_messages"] == [
        {"span_id": broken.span_id, "attribute": "gen_ai.input.messages"}
    ]


def test_a_rewritten_history_is_read_from_where_it_differs() -> None:
    first = _span(2, "chat", 0.0, 1.0, **_genai(*REQUESTS[0]), **{"session.id": "s"})
    trimmed = [
        {"role": "system", "text": SYSTEM},
        {"role": "user", "text": "Summary: wants a cleaning."},
        {"role": "user", "text": TUESDAY},
    ]
    second = _span(
        3, "chat", 2.0, 3.0, **_genai(trimmed, {"role": "assistant", "text": FREE}), **{"session.id": "s"}
    )
    call = mapper_for("genai:s").assemble("genai:s", [first, second], started_at=None, prices=PriceTable())
    assert call is not None and call.metadata["rewritten_histories"] == 1
    assert [t.text for t in call.turns] == [HI, WHICH_DAY, "Summary: wants a cleaning.", TUESDAY, FREE]


def test_an_openinference_history_whose_oldest_attributes_were_dropped_is_read_by_position() -> None:
    """The OpenTelemetry SDK keeps 128 attributes a span by default and drops the oldest past that, so a
    long chat's late OpenInference spans name their history from message N on: here the last request
    lost messages 0 and 1 and the role of message 2 (its content is left). Those messages are neither new
    nor a rewrite, and message 2, cut part way, is not read as a message."""
    spans = [_span(1, "chat session", 0.0, 9.0, **{"session.id": "chat-1"})]
    for i, (messages, answer) in enumerate(REQUESTS):
        attributes = _openinference(messages, answer)
        if i == len(REQUESTS) - 1:
            attributes = {
                name: value
                for name, value in attributes.items()
                if not name.startswith(("llm.input_messages.0.", "llm.input_messages.1."))
                and name != "llm.input_messages.2.message.role"
            }
            assert attributes["llm.input_messages.2.message.content"] == WHICH_DAY
        spans.append(_span(2 + i, "ChatCompletion", 3.0 * i, 3.0 * i + 1.0, parent=1, **attributes))
    call = mapper_for("genai:chat-1").assemble("genai:chat-1", spans, started_at=None, prices=PriceTable())
    assert call is not None and call.metadata["rewritten_histories"] == 0
    assert [(t.role, t.text) for t in call.turns] == [
        (Role.USER, HI),
        (Role.AGENT, WHICH_DAY),
        (Role.USER, TUESDAY),
        (Role.AGENT, FREE),
    ]
    (tool,) = call.tool_calls
    assert (tool.id, tool.result, tool.turn_index) == ("call_1", RESULT, 3)


def test_a_request_whose_history_was_dropped_from_its_start_still_adds_what_is_new() -> None:
    """The first span seen of a conversation may itself name its history from part way: what it names
    is all new, and a later request that names the whole history again adds only what follows."""
    first = {
        **{
            k: v for k, v in _openinference(*REQUESTS[1]).items() if not k.startswith("llm.input_messages.0.")
        },
        "session.id": "s",
    }
    second = {**_openinference(*REQUESTS[2]), "session.id": "s"}
    spans = [_span(2, "ChatCompletion", 0.0, 1.0, **first), _span(3, "ChatCompletion", 2.0, 3.0, **second)]
    call = mapper_for("genai:s").assemble("genai:s", spans, started_at=None, prices=PriceTable())
    assert call is not None and call.metadata["rewritten_histories"] == 0
    assert [t.text for t in call.turns] == [HI, WHICH_DAY, TUESDAY, FREE]
    assert call.metadata["system_prompts"] == [SYSTEM]


def test_openinference_content_parts_are_read_in_part_order() -> None:
    """Parts are numbered (``message.contents.K``): part 10 follows part 9, not part 1."""
    words = [f"w{k}" for k in range(12)]
    parts = {
        f"llm.input_messages.0.message.contents.{k}.message_content.{field}": value
        for k, word in enumerate(words)
        for field, value in (("type", "text"), ("text", word))
    }
    attributes = {
        "openinference.span.kind": "LLM",
        "session.id": "p",
        "llm.input_messages.0.message.role": "user",
        **parts,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "ok",
    }
    call = mapper_for("genai:p").assemble(
        "genai:p", [_span(2, "ChatCompletion", 0.0, 1.0, **attributes)], started_at=None, prices=PriceTable()
    )
    assert call is not None and [t.text for t in call.turns] == [" ".join(words), "ok"]
