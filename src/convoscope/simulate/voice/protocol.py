"""What the telephone side of a call says to an agent, and what the agent can say back.

A telephony media-stream protocol is a handful of messages each way, so a protocol here is only an
encoder and a decoder: :class:`TelephonyProtocol` turns the simulator's intentions (open the stream, one
20 ms frame of the caller's audio, a key press, a mark echo, hang up) into WebSocket messages, and turns
the agent's messages into :data:`AgentEvent` values (audio to play, a mark to echo once played, a
``clear`` that flushes unplayed audio). The real-time loop in :mod:`.session` knows nothing of JSON or
base64, which is what makes a second protocol (:mod:`.pcm_ws`) a small module.

Decoding is strict: a frame that is not valid for the protocol raises :class:`ProtocolViolation` with
what was wrong, and the call ends as an infrastructure failure with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ...errors import ConvoscopeError
from .codec import Pcm

__all__ = [
    "AgentAudio",
    "AgentClear",
    "AgentEvent",
    "AgentMark",
    "CallInfo",
    "ProtocolViolation",
    "TelephonyProtocol",
    "WireMessage",
]

WireMessage = str | bytes
"""One WebSocket message: text or binary."""


class ProtocolViolation(ConvoscopeError):
    """The agent sent something its protocol does not allow (wrong event, size or encoding)."""

    kind = "protocol_error"


@dataclass(frozen=True)
class AgentAudio:
    """Audio the agent sent, as 8 kHz PCM, to be played in order in real time."""

    pcm: Pcm


@dataclass(frozen=True)
class AgentMark:
    """A marker the agent placed after its audio: echo it back when everything before it has played."""

    name: str


@dataclass(frozen=True)
class AgentClear:
    """Drop the audio not yet played (the agent stops talking: a barge-in handled)."""


AgentEvent = AgentAudio | AgentMark | AgentClear


@dataclass(frozen=True)
class CallInfo:
    """The identifiers and parameters the telephone side announces when the stream starts."""

    call_sid: str
    stream_sid: str
    account_sid: str
    custom_parameters: Mapping[str, str]
    from_number: str = "+15550100000"
    to_number: str = "+15550199999"


class TelephonyProtocol(Protocol):
    """Encoder and decoder of one telephony media-stream protocol."""

    name: str

    def opening(self, call: CallInfo) -> list[WireMessage]:
        """The messages that open the stream, before the first frame of audio."""
        ...

    def media(self, frame_index: int, pcm: Pcm) -> WireMessage:
        """One 20 ms frame of the caller's audio; ``frame_index`` counts frames since the stream began."""
        ...

    def dtmf(self, digit: str) -> WireMessage | None:
        """A key press, or None where the protocol cannot carry one."""
        ...

    def mark_played(self, name: str) -> WireMessage | None:
        """The echo of an agent's mark once the audio before it has played (None: no echo)."""
        ...

    def closing(self) -> list[WireMessage]:
        """The messages that end the stream (the caller hangs up)."""
        ...

    def parse(self, message: WireMessage) -> list[AgentEvent]:
        """The agent's message as events; raises :class:`ProtocolViolation`."""
        ...
