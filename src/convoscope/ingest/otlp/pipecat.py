"""Pipecat's span vocabulary (``conversation`` → ``turn`` → ``stt`` | ``llm`` | ``tts``) as a call.

Mapper version ``pipecat-1``: the names and attributes of ``pipecat.utils.tracing`` (turn trace observer,
service decorators and attributes). Each Pipecat turn becomes a user turn (the STT transcript, timed by
the STT span, which Pipecat back-dates to the start of speech) and an agent turn (the TTS text, else the
LLM output) that carries the latency components: end to end from ``turn.user_bot_latency_seconds``, STT,
LLM and TTS time to first byte from each service's ``metrics.ttfb``.

Verified against the spans of a real Pipecat 1.14 pipeline. Pipecat closes the turn still open when the
pipeline ends with ``turn.was_interrupted = true`` (its turn tracker on ``EndFrame``/``CancelFrame``, or
the conversation span's end, which also sets ``turn.ended_by_conversation_end``), even when the agent had
finished speaking. A barge-in always opens a next turn, so the last turn of an ended conversation was
never cut off by the caller: its agent turn is ``interrupted`` only when a TTS span says so
(``tts.interrupted``, Pipecat 1.x).

A conversation may come in several traces: Pipecat opens a ``conversation`` span (a new trace) per
pipeline and numbers its turns from 1, so a conversation taken up again by a new pipeline with the same
``conversation.id`` (a caller reconnecting to a restarted bot) repeats its turn numbers. Turns are
ordered pipeline by pipeline (each trace by its first span), then by number; each pipeline's last turn
was closed by its own end; the call runs from the first ``conversation`` span's start to the last one's
end. Ordering by number alone interleaved the two pipelines' turns.

Pipecat traces no span for a function call: the calls are read from the ``input`` messages of the
``llm`` spans (``messages.message_tool_calls``), placed in the agent turn of the LLM run that asked for
them. GenAI ``execute_tool`` spans, where an application adds its own, are taken as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

from ...model import Call, CallSource, Role, Span, ToolCall, Turn
from .common import (
    PriceTable,
    SpanTree,
    attr_bool,
    attr_float,
    attr_int,
    attr_str,
    genai_tool_call,
    is_genai_tool,
    json_value,
    offset_s,
    trace_call,
    usage_from,
)
from .messages import message_tool_calls

__all__ = ["PipecatMapper"]

_SERVICES = ("stt", "llm", "tts")


class PipecatMapper:
    """Pipecat conversations, keyed by ``conversation.id``."""

    prefix = "pipecat"
    version = "pipecat-1"

    def own_key(self, span: Span) -> str | None:
        if span.name not in ("conversation", "turn") and not span.scope_name.startswith("pipecat"):
            return None
        conversation = attr_str(span, "conversation.id")
        return f"{self.prefix}:{conversation}" if conversation else None

    def is_root(self, span: Span) -> bool:
        return span.name == "conversation"

    def assemble(
        self, key: str, spans: Sequence[Span], *, started_at: datetime | None, prices: PriceTable
    ) -> Call | None:
        tree = SpanTree(list(spans))
        roots = tree.named("conversation")
        root = roots[0] if roots else None
        turn_spans = _in_order(tree)
        if root is None and not turn_spans:
            return None
        start = started_at or (root.start if root is not None else tree.first_start)
        root_of = {r.trace_id: r for r in roots}
        last_of = {s.trace_id: s for s in turn_spans}  # each pipeline's (trace's) last turn
        turns: list[Turn] = []
        tools: list[ToolCall] = []
        agent_of: dict[str, int] = {}
        for turn_span in turn_spans:
            closed_by_end = _closed_by_conversation_end(
                turn_span, last=last_of[turn_span.trace_id] is turn_span, root=root_of.get(turn_span.trace_id)
            )
            turns.extend(self._turns(tree, turn_span, start, len(turns), closed_by_end=closed_by_end))
            agent_index = turns[-1].index if turns and turns[-1].role == Role.AGENT else None
            if agent_index is not None:
                agent_of[turn_span.span_id] = agent_index
            for tool_span in (s for s in tree.descendants(turn_span) if is_genai_tool(s)):
                tool = genai_tool_call(tool_span, start, agent_index)
                if tool is not None:
                    tools.append(tool)

        def turn_of(span: Span) -> int | None:
            owner = tree.ancestor(span, "turn")
            return agent_of.get(owner.span_id) if owner is not None else None

        known = {tool.id for tool in tools}
        tools.extend(
            tool
            for tool in message_tool_calls(tree.named("llm"), _input_messages, turn_of, start)
            if tool.id not in known
        )
        tools.sort(key=lambda t: (t.start_s if t.start_s is not None else t.end_s or 0.0, t.id))
        tts = [
            (s, attr_int(s, "metrics.character_count") or len(attr_str(s, "text") or ""))
            for s in tree.named("tts")
        ]
        stt = [(s, attr_float(s, "metrics.audio_seconds") or 0.0) for s in tree.named("stt")]
        usage, cost = usage_from(tree.named("llm"), tts, stt, prices)
        end = max((r.end or r.start for r in roots), default=tree.last_end)
        # Open while a pipeline that traced turns has not ended its conversation span.
        is_open = root is None or any(t not in root_of for t in last_of)
        metadata: dict[str, object] = {"mapper": self.version, "conversation_open": is_open}
        if root is not None:
            metadata["conversation"] = {
                k: v for k, v in root.attributes.items() if k not in ("conversation.id",)
            }
        service = root.resource_attributes.get("service.name") if root is not None else None
        return trace_call(
            CallSource.PIPECAT,
            key,
            agent_id=service if isinstance(service, str) else None,
            start=start,
            end=end,
            turns=turns,
            tools=tools,
            usage=usage,
            cost=cost,
            metadata=metadata,
        )

    def _turns(
        self, tree: SpanTree, turn_span: Span, start: datetime, index: int, *, closed_by_end: bool
    ) -> list[Turn]:
        services = {name: tree.descendants(turn_span, name) for name in _SERVICES}
        out: list[Turn] = []
        stt_spans = [s for s in services["stt"] if attr_str(s, "transcript")]
        finals = [s for s in stt_spans if attr_bool(s, "is_final") is not False] or stt_spans
        if finals:
            out.append(
                Turn(
                    index=index,
                    role=Role.USER,
                    text=" ".join(attr_str(s, "transcript") or "" for s in finals).strip(),
                    start_s=offset_s(finals[0].start, start),
                    end_s=offset_s(max(s.end or s.start for s in finals), start),
                )
            )
        spoken = [attr_str(s, "text") or "" for s in services["tts"]]
        text = " ".join(t for t in spoken if t).strip()
        if not text:
            text = " ".join(attr_str(s, "output") or "" for s in services["llm"]).strip()
        if not services["tts"] and not services["llm"]:
            return out
        first_speech = services["tts"][0] if services["tts"] else services["llm"][0]
        agent_start = offset_s(first_speech.start, start)
        agent_end = offset_s(turn_span.end or tree.last_end, start)
        out.append(
            Turn(
                index=index + len(out),
                role=Role.AGENT,
                text=text,
                start_s=agent_start,
                end_s=max(agent_start, agent_end),
                interrupted=(
                    any(attr_bool(s, "tts.interrupted") for s in services["tts"])
                    if closed_by_end
                    else bool(attr_bool(turn_span, "turn.was_interrupted"))
                ),
                e2e_s=attr_float(turn_span, "turn.user_bot_latency_seconds"),
                stt_s=_ttfb(finals[-1:] if finals else services["stt"][-1:]),
                llm_ttft_s=_ttfb(services["llm"]),
                tts_ttfb_s=_ttfb(services["tts"]),
            )
        )
        return out


def _in_order(tree: SpanTree) -> list[Span]:
    """The turn spans in the order they were spoken: pipeline by pipeline (a trace each, by its first
    span), and by ``turn.number`` within one, which a new pipeline starts again from 1."""
    trace_start: dict[str, datetime] = {}
    for span in tree.spans:  # by start time: the first span of a trace is its earliest
        trace_start.setdefault(span.trace_id, span.start)
    return sorted(
        tree.named("turn"),
        key=lambda s: (trace_start[s.trace_id], attr_int(s, "turn.number") or 0, s.start),
    )


def _closed_by_conversation_end(turn_span: Span, *, last: bool, root: Span | None) -> bool:
    """Whether Pipecat closed the turn because the conversation ended (its interruption flag then says
    nothing about the caller): it says so, or it is the last turn of a pipeline whose conversation span
    (``root``, of the turn's trace) has ended."""
    return bool(attr_bool(turn_span, "turn.ended_by_conversation_end")) or (last and root is not None)


def _input_messages(span: Span) -> list[JsonValue]:
    """The messages an ``llm`` span sent (``input``, a JSON list in the provider's format)."""
    value = json_value(span.attributes.get("input"))
    return value if isinstance(value, list) else []


def _ttfb(spans: Sequence[Span]) -> float | None:
    """The first service span's ``metrics.ttfb`` (the one the user waited for)."""
    for span in spans:
        value = attr_float(span, "metrics.ttfb")
        if value is not None:
            return value
    return None
