"""One simulated conversation: the caller and the agent take turns until one hangs up, then a ``Call``.

The engine keeps the conversation as OpenAI-style messages (what chat connectors speak) and as the
canonical call's turns and tool calls (what the evaluators read). Tool calls the agent makes are
answered by the scenario (:mod:`.tools`) and sent back before the caller speaks again, as a real tool
backend would be. Times are seconds since the conversation started, measured on a monotonic clock; an
agent turn's ``e2e_s`` is how long the agent took to answer the message before it.

An agent that fails (unreachable, malformed reply, HTTP error) or stays silent past the persona's
patience (after one "are you there?" when the persona prompts) does not crash the run: the conversation
ends as an *errored* call with the reason, which the run reports apart from failures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import JsonValue

from ..model import Call, CallSource, EndReason, Role, SimulationRef, ToolCall, Turn
from .callers import Caller, Line
from .connectors.base import AgentError, AgentReply, AgentSession, AgentTimeout, Connector, Message
from .definitions import AgentSpec, IdleBehaviour, Persona, Scenario
from .tools import ToolAnswerer, UnmatchedTool

__all__ = ["ARE_YOU_THERE", "MAX_TOOL_ROUNDS", "Conversation", "Outcome", "converse"]

MAX_TOOL_ROUNDS = 8
"""Tool round trips allowed before the agent must say something (a tool loop is an agent failure)."""
ARE_YOU_THERE = "Hello? Are you there?"

Status = Literal["completed", "errored"]


@dataclass
class Outcome:
    """What one conversation became: its call, and whether it completed or errored (with why)."""

    call: Call
    status: Status
    error: str | None = None
    error_kind: str | None = None
    audio: bytes | None = None
    """A voice call's stereo recording (WAV), until the runner stores it and names it on the call."""


@dataclass
class Conversation:
    """The state of one conversation while it runs."""

    scenario: Scenario
    persona: Persona
    agent: AgentSpec
    run_id: str
    iteration: int
    caller_kind: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock0: float = field(default_factory=time.monotonic)
    history: list[Message] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    end_reason: EndReason = EndReason.UNKNOWN
    ending: EndReason | None = None
    """Set when the agent called a transfer or hang-up tool: the call ends after its next line."""

    def now(self) -> float:
        """Seconds since the conversation started."""
        return round(time.monotonic() - self.clock0, 6)

    def say_user(self, text: str) -> Message:
        at = self.now()
        message: Message = {"role": "user", "content": text}
        self.history.append(message)
        self.lines.append(Line("user", text))
        self.turns.append(Turn(index=len(self.turns), role=Role.USER, text=text, start_s=at, end_s=at))
        return message

    def agent_said(self, reply: AgentReply) -> int | None:
        """Record what the agent said (nothing for a reply with only tool calls); returns its turn index."""
        if reply.text is None or not reply.text.strip():
            return None
        at = self.now()
        self.lines.append(Line("agent", reply.text))
        self.turns.append(
            Turn(
                index=len(self.turns),
                role=Role.AGENT,
                text=reply.text,
                # A chat message arrives whole: it has a time, not a speaking duration (which would
                # make words-per-minute metrics of a chat meaningless); its wait is ``e2e_s``.
                start_s=at,
                end_s=at,
                e2e_s=round(reply.latency_s, 6),
            )
        )
        return len(self.turns) - 1

    def agent_said_before(self, reply: AgentReply, pending: int) -> None:
        """Record a line the agent said before the last ``pending`` messages reached it (a greeting sent on
        connect while the caller spoke first): it goes before them in the transcript and the history."""
        if reply.text is None or not reply.text.strip():
            return
        position = len(self.turns) - pending if pending else len(self.turns)
        at = self.turns[position].start_s if position < len(self.turns) else self.now()
        turn = Turn(index=position, role=Role.AGENT, text=reply.text, start_s=at, end_s=at)
        later = [t.model_copy(update={"index": t.index + 1}) for t in self.turns[position:]]
        self.turns[position:] = [turn, *later]
        self.lines.insert(
            len(self.lines) - pending if pending else len(self.lines), Line("agent", reply.text)
        )
        self.history.insert(len(self.history) - pending if pending else len(self.history), _said(reply))

    def note_ending(self, tool: str, succeeded: bool) -> None:
        """A successful transfer or hang-up tool call ends the conversation after the agent's next line."""
        if succeeded and tool in self.agent.transfer_tools:
            self.ending = EndReason.TRANSFER
        elif tool in self.agent.hangup_tools:
            self.ending = self.ending or EndReason.AGENT_HANGUP

    def agent_ended(self, reply: AgentReply) -> bool:
        """Whether the agent's reply ended the call (its protocol said so, or it called an ending tool)."""
        if reply.end_call or self.ending is not None:
            self.end_reason = self.ending or EndReason.AGENT_HANGUP
            return True
        return False

    def attach_tool_calls(self, first: int, turn_index: int) -> None:
        """Tool calls made since ``first`` belong to the agent turn that followed them."""
        self.tool_calls[first:] = [
            call if call.turn_index is not None else call.model_copy(update={"turn_index": turn_index})
            for call in self.tool_calls[first:]
        ]

    def external_id(self) -> str:
        return f"{self.run_id}:{self.scenario.id}:{self.persona.id}:{self.iteration}"

    def to_call(self, error: str | None, error_kind: str | None) -> Call:
        """The canonical call, with the scenario's checks and the run's coordinates in its metadata."""
        ended = self.now()
        scenario: dict[str, JsonValue] = {
            "id": self.scenario.id,
            "persona": self.persona.id,
            "iteration": self.iteration,
            "caller": self.caller_kind,
            "goal": self.scenario.goal,
            "checks": self.scenario.checks.model_dump(mode="json", exclude_defaults=True),
        }
        if self.scenario.expected_outcome:
            scenario["expected_outcome"] = self.scenario.expected_outcome
        if error is not None:
            scenario["error"] = error
            scenario["error_kind"] = error_kind
        return Call(
            source=CallSource.SIMULATION,
            external_id=self.external_id(),
            agent_id=self.agent.id,
            agent_version=self.agent.version or None,
            started_at=self.started_at,
            duration_s=ended,
            end_reason=EndReason.ERROR if error is not None else self.end_reason,
            turns=self.turns,
            tool_calls=self.tool_calls,
            tags=list(dict.fromkeys([*self.scenario.tags, "simulation"])),
            metadata={"scenario": scenario},
            simulation=SimulationRef(
                run_id=self.run_id, scenario_id=self.scenario.id, persona_id=self.persona.id
            ),
        )


async def _ask(
    conversation: Conversation,
    session: AgentSession,
    new: Sequence[Message],
    tools: ToolAnswerer,
    *,
    timeout_s: float,
) -> AgentReply:
    """The agent's answer to ``new``, with its tool calls answered and sent back until it speaks."""
    pending: list[Message] = list(new)
    first_tool = len(conversation.tool_calls)
    for _ in range(MAX_TOOL_ROUNDS + 1):
        reply = await session.respond(list(conversation.history), pending, timeout_s=timeout_s)
        for greeting in reply.unsolicited:  # said before the caller's line reached it (a WebSocket greeting)
            conversation.agent_said_before(greeting, len(pending))
        spoke = conversation.agent_said(reply)
        if spoke is not None:
            conversation.attach_tool_calls(first_tool, spoke)
        if not reply.tool_calls:
            return reply
        conversation.history.append(_assistant_message(reply))
        pending = []
        for request in reply.tool_calls:
            answer = await tools.answer(request)
            conversation.tool_calls.append(
                ToolCall(
                    id=request.id,
                    name=request.name,
                    arguments=_json(request.arguments),
                    result=_json(answer.result),
                    success=answer.success,
                    start_s=round(answer.started_s, 6),
                    end_s=round(answer.ended_s, 6),
                )
            )
            message: Message = {
                "role": "tool",
                "tool_call_id": request.id,
                "content": orjson.dumps(answer.result).decode(),
            }
            conversation.history.append(message)
            pending.append(message)
            conversation.note_ending(request.name, answer.success)
        if reply.end_call:
            return reply
    raise AgentError(f"the agent called tools {MAX_TOOL_ROUNDS} times in a row without saying anything")


def _said(reply: AgentReply) -> Message:
    return {"role": "assistant", "content": reply.text}


def _assistant_message(reply: AgentReply) -> Message:
    message: Message = {"role": "assistant", "content": reply.text}
    message["tool_calls"] = [
        {
            "id": request.id,
            "type": "function",
            "function": {
                "name": request.name,
                "arguments": request.raw_arguments or orjson.dumps(dict(request.arguments)).decode(),
            },
        }
        for request in reply.tool_calls
    ]
    return message


def _json(value: Any) -> JsonValue:
    """A value as plain JSON (tool arguments and results come from the wire, so they already are)."""
    return orjson.loads(orjson.dumps(value, default=str))  # type: ignore[no-any-return]


async def _agent_turn(
    conversation: Conversation, session: AgentSession, new: Sequence[Message], tools: ToolAnswerer
) -> AgentReply:
    """The agent's reply; silence past the persona's patience gets one "are you there?" if it prompts."""
    patience = conversation.persona.patience_s
    try:
        reply = await _ask(conversation, session, new, tools, timeout_s=patience)
    except AgentTimeout:
        if conversation.persona.idle_behaviour is not IdleBehaviour.PROMPT:
            raise
        prompt = conversation.say_user(ARE_YOU_THERE)
        reply = await _ask(conversation, session, [prompt], tools, timeout_s=patience)
    if reply.text and not reply.tool_calls:
        conversation.history.append({"role": "assistant", "content": reply.text})
    return reply


async def converse(
    connector: Connector,
    agent: AgentSpec,
    scenario: Scenario,
    persona: Persona,
    caller: Caller,
    tools: ToolAnswerer,
    *,
    run_id: str,
    iteration: int,
    caller_kind: str,
) -> Outcome:
    """Run one conversation to its end; never raises for the agent's faults (they make it errored)."""
    conversation = Conversation(scenario, persona, agent, run_id, iteration, caller_kind)
    session: AgentSession | None = None
    try:
        session = await connector.open(conversation.external_id())
        new: list[Message] = []
        if agent.speaks_first:
            reply = await _agent_turn(conversation, session, [], tools)
            if conversation.agent_ended(reply):
                return Outcome(conversation.to_call(None, None), "completed")
        for _ in range(scenario.max_turns):
            turn = await caller.next_turn(conversation.lines)
            if turn.text:
                new = [conversation.say_user(turn.text)]
            if turn.hang_up:
                conversation.end_reason = EndReason.USER_HANGUP
                return Outcome(conversation.to_call(None, None), "completed")
            reply = await _agent_turn(conversation, session, new, tools)
            if conversation.agent_ended(reply):
                return Outcome(conversation.to_call(None, None), "completed")
        conversation.end_reason = EndReason.MAX_DURATION
        return Outcome(conversation.to_call(None, None), "completed")
    except (AgentError, UnmatchedTool) as exc:
        kind = getattr(exc, "kind", "unmatched_tool")
        reason = str(exc) or type(exc).__name__
        return Outcome(conversation.to_call(reason, kind), "errored", reason, kind)
    finally:
        if session is not None:
            try:
                await session.close()
            except AgentError:
                pass
