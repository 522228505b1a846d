"""How to reach a voice agent: its WebSocket URL and the telephony protocol it speaks.

One connector serves every call of a run (it holds no connection: each call opens its own stream, as
each phone call does). ``custom_parameters`` are what a TwiML ``<Parameter>`` would pass in Twilio's
``start`` message (the reference agent reads its faults there); ``protocol`` picks the encoder.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from .pcm_ws import PcmWebSocketProtocol
from .protocol import CallInfo, TelephonyProtocol
from .twilio import TwilioProtocol

__all__ = ["VOICE_PROTOCOLS", "VoiceConnector", "new_call_info"]

VOICE_PROTOCOLS = ("twilio", "pcm")


@dataclass(frozen=True)
class VoiceConnector:
    """A voice agent's media-stream endpoint."""

    url: str
    protocol: str = "twilio"
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int = 8000
    """``pcm`` only: the rate of the raw frames (8 or 16 kHz)."""
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.protocol not in VOICE_PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(VOICE_PROTOCOLS)}, not {self.protocol!r}")
        if self.protocol == "pcm":
            PcmWebSocketProtocol(self.sample_rate)  # refuses a rate it cannot carry, now

    def new_protocol(self) -> TelephonyProtocol:
        """A fresh encoder for one call (Twilio numbers each stream's messages)."""
        if self.protocol == "pcm":
            return PcmWebSocketProtocol(self.sample_rate)
        return TwilioProtocol()

    async def aclose(self) -> None:
        """Nothing pooled to release (the chat connectors' interface)."""


def new_call_info(custom_parameters: Mapping[str, str], extra: Mapping[str, str] | None = None) -> CallInfo:
    """Twilio-shaped identifiers for a new call (``CA``/``MZ``/``AC`` and 32 hex digits)."""
    return CallInfo(
        call_sid="CA" + secrets.token_hex(16),
        stream_sid="MZ" + secrets.token_hex(16),
        account_sid="AC" + "0" * 32,
        custom_parameters={**custom_parameters, **(extra or {})},
    )
