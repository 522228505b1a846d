"""The connector protocol: what the simulation runner asks of any agent under test.

A conversation is kept by the runner as OpenAI-style messages (``role`` system/user/assistant/tool,
``content``, ``tool_calls``, ``tool_call_id``), because that is the lingua franca of chat agents. A
stateless connector (an OpenAI-compatible endpoint, an HTTP webhook) sends the whole history each turn; a
stateful one (a WebSocket) sends only what is new. Both are given both, and choose.

**The agent's opening line.** ``respond(history, new=[])`` with nothing new asks the agent to speak first
(a greeting): ``history`` holds only what precedes the first line (a system message, or nothing). A
stateless connector sends that history as it is; a stateful one returns the greeting the agent sent on
connect, waiting for it up to ``timeout_s``. A reply with ``text=None`` and no tool calls means the agent
had nothing to say first. A runner that does not ask still loses nothing: a greeting a stateful agent sent
unasked comes back in :attr:`AgentReply.unsolicited` of the reply to the caller's first line.

Failures of the agent are not crashes of the run: a connector raises :class:`AgentError` (unreachable,
a reply that never comes, a malformed reply, an HTTP error), and the runner records the conversation as
an infrastructure failure with that reason and goes on with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...errors import ConvoscopeError

__all__ = [
    "AgentError",
    "AgentReply",
    "AgentSession",
    "AgentTimeout",
    "AgentUnreachable",
    "Connector",
    "MalformedReply",
    "Message",
    "ToolCallRequest",
]

Message = dict[str, Any]
"""One OpenAI-style chat message."""


class AgentError(ConvoscopeError):
    """The agent under test failed to answer (the conversation becomes an infrastructure failure)."""

    kind = "agent_error"


class AgentUnreachable(AgentError):
    """No connection could be made, or it broke, or the agent answered an HTTP error."""

    kind = "unreachable"


class AgentTimeout(AgentError):
    """The agent did not answer within the persona's patience."""

    kind = "timeout"


class MalformedReply(AgentError):
    """The agent answered something that is not a reply of its protocol."""

    kind = "malformed_reply"


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call the agent asks for; the runner answers it (a scenario's mock, or passed through)."""

    id: str
    name: str
    arguments: Mapping[str, Any]
    raw_arguments: str = ""
    """The arguments exactly as the agent sent them (JSON text), for the transcript's evidence."""


@dataclass(frozen=True)
class AgentReply:
    """One answer of the agent: what it said, the tools it called, and how long it took."""

    text: str | None
    tool_calls: Sequence[ToolCallRequest] = ()
    latency_s: float = 0.0
    end_call: bool = False
    """The agent hung up (a connector whose protocol can say so)."""
    usage: Mapping[str, int] = field(default_factory=dict)
    unsolicited: Sequence[AgentReply] = ()
    """Replies the agent sent before this one without being asked (a greeting on connect when the runner
    let the caller speak first), oldest first, so the transcript can show them where they were said."""


class AgentSession(Protocol):
    """One simulated conversation with the agent."""

    async def respond(
        self, history: Sequence[Message], new: Sequence[Message], *, timeout_s: float
    ) -> AgentReply:
        """The agent's next reply, given the whole conversation so far (``history``, which ends with
        ``new``) and the messages added since its last reply (``new``: the caller's line, or tool results).
        Raises :class:`AgentError` subclasses, never anything else for the agent's own faults."""
        ...

    async def close(self) -> None:
        """End the conversation (hang up)."""
        ...


class Connector(Protocol):
    """A way to reach one agent under test; shared by every conversation of a run (pooled connections)."""

    async def open(self, conversation_id: str) -> AgentSession:
        """Start a conversation; ``conversation_id`` is unique per simulated conversation."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections at the end of the run."""
        ...
