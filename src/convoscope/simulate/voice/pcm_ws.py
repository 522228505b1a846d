"""A plain PCM WebSocket: raw 16-bit audio in binary frames, control in small JSON text frames.

Many custom voice agents skip telephony encodings altogether and take linear PCM over a WebSocket. The
stream opens with ``{"type": "start", "call_id", "sample_rate", "parameters"}``; each binary frame is
20 ms of little-endian 16-bit mono PCM at ``sample_rate`` (8 or 16 kHz) either way; the caller sends
``{"type": "dtmf", "digit"}``, ``{"type": "mark", "name"}`` (an echo) and ``{"type": "stop"}``; the agent
may send ``{"type": "mark", "name"}`` and ``{"type": "clear"}``. Audio on the agent side is converted to
the simulator's 8 kHz clock, so everything after decoding is the same as for Twilio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import soxr  # type: ignore[import-untyped]

from .codec import SAMPLE_RATE, Pcm
from .protocol import (
    AgentAudio,
    AgentClear,
    AgentEvent,
    AgentMark,
    CallInfo,
    ProtocolViolation,
    WireMessage,
)

__all__ = ["PcmWebSocketProtocol"]

RATES = (8000, 16000)


def _resample(pcm: Pcm, source: int, target: int) -> Pcm:
    if source == target or pcm.size == 0:
        return pcm
    out: npt.NDArray[np.float32] = soxr.resample(
        pcm.astype(np.float32) / 32768.0, source, target, quality="HQ"
    )
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


class PcmWebSocketProtocol:
    """Linear PCM frames at ``sample_rate`` with JSON control messages."""

    name = "pcm"

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        if sample_rate not in RATES:
            raise ValueError(f"sample_rate must be one of {RATES}, not {sample_rate}")
        self.sample_rate = sample_rate

    def opening(self, call: CallInfo) -> list[WireMessage]:
        start = {
            "type": "start",
            "call_id": call.call_sid,
            "sample_rate": self.sample_rate,
            "parameters": dict(call.custom_parameters),
        }
        return [orjson.dumps(start).decode()]

    def media(self, frame_index: int, pcm: Pcm) -> WireMessage:
        return _resample(pcm, SAMPLE_RATE, self.sample_rate).astype("<i2").tobytes()

    def dtmf(self, digit: str) -> WireMessage | None:
        return orjson.dumps({"type": "dtmf", "digit": digit}).decode()

    def mark_played(self, name: str) -> WireMessage | None:
        return orjson.dumps({"type": "mark", "name": name}).decode()

    def closing(self) -> list[WireMessage]:
        return [orjson.dumps({"type": "stop"}).decode()]

    def parse(self, message: WireMessage) -> list[AgentEvent]:
        if isinstance(message, bytes):
            if len(message) % 2:
                raise ProtocolViolation(
                    f"a binary frame of {len(message)} bytes: 16-bit PCM needs an even count"
                )
            pcm = np.frombuffer(message, dtype="<i2").astype(np.int16)
            return [AgentAudio(_resample(pcm, self.sample_rate, SAMPLE_RATE))]
        try:
            body: Any = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise ProtocolViolation(f"a text frame that is not JSON: {message[:80]!r}") from None
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "clear":
            return [AgentClear()]
        if kind == "mark" and isinstance(body.get("name"), str):
            return [AgentMark(body["name"])]
        raise ProtocolViolation(f"an unknown control message {message[:80]!r} (expected clear or mark)")
