"""LiveKit Agents' span vocabulary (``agent_session``, ``user_turn``, ``agent_turn``, ...) as a call.

Mapper version ``livekit-1``: the names of ``livekit.agents.telemetry.trace_types``, verified against the
spans of a real livekit-agents 1.8.9 session. A conversation is the id LiveKit gives it: inside a job every
span carries ``gen_ai.conversation.id`` (the room sid, also ``lk.room_sid`` on ``agent_session``), so a
session's spans are one call whichever trace and export they come in, and so are the sessions of several
jobs in one room (a job dispatched again to the room, each job its own trace): the call runs from the
first ``agent_session``'s start to the last one's end. A session-level span without it
names its job (``lk.job_id``) or room name. A session run outside any job (a console or test run) exports
no id at all: its ``agent_session`` roots one trace, which then names it. The id is the call's
``external_id``. ``user_turn`` spans give the user turns (transcript from ``lk.pii.user_transcript``, or
the older ``lk.user_transcript``); a reply to text input has no ``user_turn``, and its ``agent_turn``'s
``lk.pii.user_input`` is the user's line. ``agent_turn`` spans give the agent turns (one per reply, the
tool calls it made and the LLM runs after them included) with ``lk.interrupted`` and
``lk.e2e_latency``; its end-of-turn delay and transcription delay (``lk.end_of_turn_delay``,
``lk.transcription_delay``), the ``lk.response.ttft`` of its LLM and the ``lk.response.ttfb`` of its TTS
are its components. A voice run of 1.8.9 (VAD, STT and TTS, audio in and out) has no ``eou_detection``
span: it writes both delays on the ``agent_turn`` and on the ``user_turn`` it answers, so they are read
there first, and from the ``eou_detection`` before the turn only for releases that still emit one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ...model import Call, CallSource, Role, Span, ToolCall, Turn
from .common import (
    PriceTable,
    SpanTree,
    attr_bool,
    attr_float,
    attr_str,
    genai_tool_call,
    is_genai_tool,
    json_value,
    offset_s,
    trace_call,
    usage_from,
)

__all__ = ["LiveKitMapper"]

_SESSION_SPANS = ("agent_session", "job_entrypoint")
_CONVERSATION = "gen_ai.conversation.id"
_KEY_ATTRIBUTES = (_CONVERSATION, "lk.room_sid", "lk.job_id", "lk.pii.room_name")
_SCOPE = "livekit"
_TRANSCRIPT = ("lk.pii.user_transcript", "lk.user_transcript")
_LLM = ("llm_node", "llm_request")
_TTS = ("tts_node", "tts_request")
_EOU_DELAY = "lk.end_of_turn_delay"
_STT_DELAY = "lk.transcription_delay"


class LiveKitMapper:
    """LiveKit Agents sessions, keyed by job, else room."""

    prefix = "livekit"
    version = "livekit-1"

    def own_key(self, span: Span) -> str | None:
        if span.name in _SESSION_SPANS:
            ident = next((v for v in (attr_str(span, n) for n in _KEY_ATTRIBUTES) if v), None)
            return f"{self.prefix}:{ident or span.trace_id}"
        conversation = attr_str(span, _CONVERSATION) if span.scope_name.startswith(_SCOPE) else None
        return f"{self.prefix}:{conversation}" if conversation else None

    def is_root(self, span: Span) -> bool:
        return span.name == "agent_session"

    def assemble(
        self, key: str, spans: Sequence[Span], *, started_at: datetime | None, prices: PriceTable
    ) -> Call | None:
        tree = SpanTree(list(spans))
        sessions = tree.named("agent_session")
        session = sessions[0] if sessions else None
        user_spans = tree.named("user_turn")
        agent_spans = tree.named("agent_turn")
        if session is None and not user_spans and not agent_spans:
            return None
        start = started_at or (session.start if session is not None else tree.first_start)
        eous = tree.named("eou_detection")
        events = sorted([*user_spans, *agent_spans], key=lambda s: (s.start, s.name))
        turns: list[Turn] = []
        agent_index: dict[str, int] = {}
        answered: Span | None = None  # the user turn the next agent turn answers
        for span in events:
            if span.name == "user_turn":
                turns.append(self._user_turn(tree, span, start, len(turns)))
                answered = span
                continue
            typed = attr_str(span, "lk.pii.user_input")
            if typed and (not turns or turns[-1].role == Role.AGENT):
                turns.append(_typed_turn(typed, span, start, len(turns)))
            agent_index[span.span_id] = len(turns)
            eou = _last_before(eous, span)
            turns.append(self._agent_turn(tree, span, answered, eou, start, len(turns)))
            answered = None
        tools: list[ToolCall] = []
        for tool_span in tree.spans:
            owner = tree.ancestor(tool_span, "agent_turn") or _last_before(agent_spans, tool_span)
            tool = _tool_call(tool_span, start, agent_index.get(owner.span_id) if owner else None)
            if tool is not None:
                tools.append(tool)
        llm = [s for s in tree.named("llm_request") if "gen_ai.usage.input_tokens" in s.attributes]
        tts = [(s, len(attr_str(s, "lk.pii.input_text") or "")) for s in tree.named("tts_request")]
        usage, cost = usage_from(llm, tts, [], prices)
        # A room's conversation may hold several sessions, one per job (a job dispatched again to the
        # room, each its own trace): the call runs from the first one's start to the last one's end.
        end = max((s.end or s.start for s in sessions), default=tree.last_end)
        metadata: dict[str, object] = {"mapper": self.version, "conversation_open": session is None}
        agent_name = None
        if session is not None:
            agent_name = attr_str(session, "lk.agent_name")
            metadata["session"] = {k: v for k, v in session.attributes.items() if not k.startswith("lk.pii.")}
        return trace_call(
            CallSource.LIVEKIT,
            key,
            agent_id=agent_name,
            start=start,
            end=end,
            turns=turns,
            tools=tools,
            usage=usage,
            cost=cost,
            metadata=metadata,
        )

    def _user_turn(self, tree: SpanTree, span: Span, start: datetime, index: int) -> Turn:
        text = attr_str(span, *_TRANSCRIPT)
        if not text:
            texts = [attr_str(e, *_TRANSCRIPT) for e in tree.descendants(span, "eou_detection")]
            text = " ".join(t for t in texts if t)
        begin = offset_s(span.start, start)
        return Turn(
            index=index,
            role=Role.USER,
            text=text or "",
            start_s=begin,
            end_s=max(begin, offset_s(span.end or span.start, start)),
        )

    def _agent_turn(
        self, tree: SpanTree, span: Span, user: Span | None, eou: Span | None, start: datetime, index: int
    ) -> Turn:
        # Node spans first: they time what the user waited for; the request spans inside are the fallback.
        llm = [s for name in _LLM for s in tree.descendants(span, name)]
        tts = [s for name in _TTS for s in tree.descendants(span, name)]
        text = (attr_str(span, "lk.pii.response.text") or "").strip() or " ".join(
            t.strip()
            for t in (attr_str(s, "lk.pii.response.text") for s in tree.descendants(span, "llm_node"))
            if t and t.strip()
        )
        if not text:
            text = " ".join(
                t for t in (attr_str(s, "lk.pii.input_text") for s in tree.descendants(span, "tts_node")) if t
            )
        begin = offset_s(span.start, start)
        return Turn(
            index=index,
            role=Role.AGENT,
            text=text,
            start_s=begin,
            end_s=max(begin, offset_s(span.end or span.start, start)),
            interrupted=bool(attr_bool(span, "lk.interrupted")),
            e2e_s=attr_float(span, "lk.e2e_latency"),
            eou_s=_delay(_EOU_DELAY, span, user, eou),
            stt_s=_delay(_STT_DELAY, span, user, eou),
            llm_ttft_s=_first(llm, "lk.response.ttft"),
            tts_ttfb_s=_first(tts, "lk.response.ttfb"),
        )


def _typed_turn(text: str, agent_turn: Span, start: datetime, index: int) -> Turn:
    """The user's line a reply answers when no ``user_turn`` came before it (text input): it was
    given when the reply began."""
    begin = offset_s(agent_turn.start, start)
    return Turn(index=index, role=Role.USER, text=text, start_s=begin, end_s=begin)


def _delay(name: str, *spans: Span | None) -> float | None:
    """The first of ``spans`` (the agent turn, the user turn it answers, an ``eou_detection``) that
    reports the delay ``name``."""
    return _first([s for s in spans if s is not None], name)


def _first(spans: Sequence[Span], name: str) -> float | None:
    for span in spans:
        value = attr_float(span, name)
        if value is not None:
            return value
    return None


def _last_before(spans: Sequence[Span], turn: Span) -> Span | None:
    """The latest span that started before ``turn``: the end-of-turn decision that led to it."""
    before = [s for s in spans if s.start <= turn.start]
    return before[-1] if before else None


def _tool_call(span: Span, start: datetime, turn_index: int | None) -> ToolCall | None:
    if span.name != "function_tool":
        return genai_tool_call(span, start, turn_index) if is_genai_tool(span) else None
    name = attr_str(span, "lk.function_tool.name", "gen_ai.tool.name")
    if name is None:
        return None
    is_error = attr_bool(span, "lk.function_tool.is_error")
    return ToolCall(
        id=attr_str(span, "lk.function_tool.id", "gen_ai.tool.call.id") or span.span_id,
        turn_index=turn_index,
        name=name,
        arguments=json_value(span.attributes.get("lk.pii.function_tool.arguments")),
        result=json_value(span.attributes.get("lk.pii.function_tool.output")),
        success=None if is_error is None else not is_error,
        start_s=offset_s(span.start, start),
        end_s=offset_s(span.end or span.start, start),
    )
