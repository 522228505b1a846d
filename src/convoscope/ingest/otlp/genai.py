"""OpenTelemetry GenAI semantic conventions (``gen_ai.*``) for any other agent framework.

Mapper version ``genai-2``. LLM spans (``gen_ai.operation.name`` chat, text completion, content
generation) become a user turn (the last user message of ``gen_ai.input.messages``) and an agent turn
(``gen_ai.output.messages``, with ``gen_ai.response.time_to_first_chunk`` as its LLM TTFT); tool spans
(``execute_tool``) become tool calls. The call is trace-only and a text chat (``metadata.modality``), so
no voice-only metric runs on it. An LLM span with status error makes the call end in ``error`` and is
listed in ``metadata.errors`` (``genai-1`` showed a failed request as a normal call).
A conversation is ``gen_ai.conversation.id`` (or OpenInference's ``session.id``, or OpenLLMetry's
``traceloop.association.properties.session_id``), found on any span of the trace, else the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

from ...model import Call, CallSource, EndReason, Modality, Role, Span, ToolCall, Turn
from ...model.modality import MODALITY_KEY
from .common import (
    PriceTable,
    SpanTree,
    attr_float,
    attr_str,
    genai_tool_call,
    is_genai_tool,
    json_value,
    offset_s,
    trace_call,
    usage_from,
)

__all__ = ["GenAIMapper"]

_LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
CONVERSATION_ATTRIBUTES = (
    "gen_ai.conversation.id",
    "session.id",
    "traceloop.association.properties.session_id",
)
"""Where a conversation's key is found: the GenAI convention, OpenInference's ``session.id``, and
OpenLLMetry's association property (``Traceloop.set_association_properties({"session_id": ...})``)."""


class GenAIMapper:
    """Trace-only calls from GenAI semantic-convention spans."""

    prefix = "genai"
    version = "genai-2"

    def own_key(self, span: Span) -> str | None:
        conversation = attr_str(span, *CONVERSATION_ATTRIBUTES)
        return f"{self.prefix}:{conversation}" if conversation else None

    def is_root(self, span: Span) -> bool:
        return span.parent_span_id is None

    def assemble(
        self, key: str, spans: Sequence[Span], *, started_at: datetime | None, prices: PriceTable
    ) -> Call | None:
        if any(s.scope_name.startswith("livekit") for s in spans):
            return None  # a LiveKit session's spans before its agent_session: that mapper's, when it comes
        tree = SpanTree(list(spans))
        llm = [s for s in tree.spans if attr_str(s, "gen_ai.operation.name") in _LLM_OPERATIONS]
        tool_spans = [s for s in tree.spans if is_genai_tool(s)]
        if not llm and not tool_spans:
            return None
        roots = [s for s in tree.spans if s.parent_span_id is None]
        start = started_at or tree.first_start
        turns: list[Turn] = []
        for span in llm:
            turns.extend(_turns(span, start, len(turns)))
        tools: list[ToolCall] = []
        for span in tool_spans:
            index = max(
                (t.index for t in turns if t.role == Role.AGENT and t.start_s <= offset_s(span.start, start)),
                default=None,
            )
            tool = genai_tool_call(span, start, index)
            if tool is not None:
                tools.append(tool)
        usage, cost = usage_from(llm, [], [], prices)
        service = tree.spans[0].resource_attributes.get("service.name")
        failed = [s for s in llm if s.status_code == "error"]
        return trace_call(
            CallSource.GENERIC,
            key,
            agent_id=attr_str(roots[0], "gen_ai.agent.name") if roots else None,
            start=start,
            end=tree.last_end,
            turns=turns,
            tools=tools,
            usage=usage,
            cost=cost,
            metadata={
                "mapper": self.version,
                MODALITY_KEY: Modality.CHAT.value,
                "conversation_open": not roots,
                "service": service if isinstance(service, str) else None,
                "errors": [
                    {"span_id": s.span_id, "name": s.name, "message": s.status_message} for s in failed
                ],
            },
            end_reason=EndReason.ERROR if failed else None,
        )


def _message_text(message: JsonValue) -> str:
    """Text of one semconv message: ``content`` or the text ``parts``."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = message.get("parts")
    if isinstance(parts, list):
        texts = [p.get("content") for p in parts if isinstance(p, dict) and p.get("type", "text") == "text"]
        return " ".join(t for t in texts if isinstance(t, str))
    return ""


def _messages(span: Span, name: str) -> list[JsonValue]:
    value = json_value(span.attributes.get(name))
    return value if isinstance(value, list) else []


def _turns(span: Span, start: datetime, index: int) -> list[Turn]:
    begin = offset_s(span.start, start)
    end = max(begin, offset_s(span.end or span.start, start))
    out: list[Turn] = []
    users = [
        m for m in _messages(span, "gen_ai.input.messages") if isinstance(m, dict) and m.get("role") == "user"
    ]
    if users:
        out.append(
            Turn(index=index, role=Role.USER, text=_message_text(users[-1]), start_s=begin, end_s=begin)
        )
    outputs = _messages(span, "gen_ai.output.messages")
    text = " ".join(t for t in (_message_text(m) for m in outputs) if t)
    out.append(
        Turn(
            index=index + len(out),
            role=Role.AGENT,
            text=text,
            start_s=begin,
            end_s=end,
            llm_ttft_s=attr_float(span, "gen_ai.response.time_to_first_chunk"),
        )
    )
    return out
