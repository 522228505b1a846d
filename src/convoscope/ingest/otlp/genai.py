"""OpenTelemetry GenAI semantic conventions (``gen_ai.*``) for any other agent framework.

Mapper version ``genai-3``. LLM spans, in whichever convention each speaks (:mod:`.llm_messages`:
GenAI current or legacy, OpenInference), are diffed request by request into the conversation's turns
and tool calls (:mod:`.chat_history`); tool spans (``execute_tool``, OpenInference ``TOOL``) complete
the tool calls they ran. The call is trace-only and a text chat (``metadata.modality``), so
no voice-only metric runs on it. An LLM span with status error makes the call end in ``error`` and is
listed in ``metadata.errors`` (``genai-1`` showed a failed request as a normal call).
A conversation is ``gen_ai.conversation.id`` (or OpenInference's ``session.id``, or OpenLLMetry's
``traceloop.association.properties.session_id``), found on any span of the trace, else the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ...model import Call, CallSource, EndReason, Modality, Role, Span, ToolCall, Turn
from ...model.modality import MODALITY_KEY
from .chat_history import diff_history
from .common import (
    PriceTable,
    SpanTree,
    attr_str,
    genai_tool_call,
    is_genai_tool,
    json_value,
    offset_s,
    trace_call,
    usage_from,
)
from .documents import place_documents
from .llm_messages import exchange_of, is_llm_span

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
    version = "genai-3"

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
        llm = [s for s in tree.spans if is_llm_span(s)]
        tool_spans = [s for s in tree.spans if _is_tool(s)]
        if not llm and not tool_spans:
            return None
        roots = [s for s in tree.spans if s.parent_span_id is None]
        start = started_at or tree.first_start
        exchanges = [exchange_of(s) for s in llm]
        history = diff_history(exchanges, start)
        turns = place_documents(history.turns, tree.spans, start)
        tools = _with_tool_spans(history.tool_calls, tool_spans, turns, start)
        usage, cost = usage_from([*llm, *(s for s in tree.spans if _is_embedding(s))], [], [], prices)
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
                "errors": [{"span_id": s.span_id, "name": s.name, "message": _failure(s)} for s in failed],
                "conventions": sorted({e.convention for e in exchanges}),
                "system_prompts": history.system_prompts,
                "malformed_messages": [
                    {"span_id": e.span.span_id, "attribute": name} for e in exchanges for name in e.malformed
                ],
                "rewritten_histories": history.rewritten,
            },
            end_reason=EndReason.ERROR if failed else None,
        )


def _failure(span: Span) -> str:
    """Why a request failed: its status message, else its exception event's message."""
    if span.status_message:
        return span.status_message
    for event in span.events:
        if isinstance(event, dict) and event.get("name") == "exception":
            attributes = event.get("attributes")
            if isinstance(attributes, dict):
                return str(attributes.get("exception.message") or attributes.get("exception.type") or "")
    return ""


def _is_tool(span: Span) -> bool:
    kind = attr_str(span, "openinference.span.kind")
    return is_genai_tool(span) or (kind is not None and kind.upper() == "TOOL")


def _is_embedding(span: Span) -> bool:
    kind = attr_str(span, "openinference.span.kind")
    return attr_str(span, "gen_ai.operation.name") == "embeddings" or (
        kind is not None and kind.upper() == "EMBEDDING"
    )


def _with_tool_spans(
    requested: list[ToolCall], spans: Sequence[Span], turns: Sequence[Turn], start: datetime
) -> list[ToolCall]:
    """The tool calls the model asked for, completed by the spans that ran them (matched by tool call
    id: result, success and timing come from the run); a run nobody was seen asking for is its own call,
    on the agent turn said last before it."""
    tools = list(requested)
    position = {call.id: i for i, call in enumerate(tools)}
    for span in spans:
        ran = _tool_run(span, start)
        if ran is None:
            continue
        if ran.id in position:
            asked = tools[position[ran.id]]
            tools[position[ran.id]] = asked.model_copy(
                update={
                    "result": ran.result if ran.result is not None else asked.result,
                    "arguments": asked.arguments if asked.arguments is not None else ran.arguments,
                    "success": ran.success,
                    "start_s": ran.start_s,
                    "end_s": ran.end_s,
                }
            )
            continue
        index = max(
            (t.index for t in turns if t.role == Role.AGENT and t.start_s <= (ran.start_s or 0.0)),
            default=None,
        )
        tools.append(ran.model_copy(update={"turn_index": index}))
    return tools


def _tool_run(span: Span, start: datetime) -> ToolCall | None:
    """A tool execution span as a tool call (GenAI ``execute_tool``, or OpenInference ``TOOL``)."""
    if is_genai_tool(span):
        return genai_tool_call(span, start, None)
    name = attr_str(span, "tool.name") or span.name
    return ToolCall(
        id=attr_str(span, "tool_call.id", "tool.call_id") or span.span_id,
        name=name,
        arguments=json_value(span.attributes.get("tool.parameters") or span.attributes.get("input.value")),
        result=json_value(span.attributes.get("output.value")),
        success=span.status_code != "error",
        start_s=offset_s(span.start, start),
        end_s=offset_s(span.end or span.start, start),
    )
