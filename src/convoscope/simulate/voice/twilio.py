"""Twilio Media Streams, spoken as Twilio speaks it to an agent's WebSocket.

Twilio opens the stream with ``connected`` and ``start`` (account, call and stream ids, the track list,
the custom parameters a TwiML ``<Parameter>`` would pass, and the media format: 8 kHz μ-law mono), then
sends one ``media`` message per 20 ms of the caller's audio (``sequenceNumber`` counting every message,
``chunk`` counting media messages, ``timestamp`` in milliseconds since the stream began, a base64
payload of 160 μ-law bytes), ``dtmf`` for a key press, ``mark`` to echo a mark the agent sent once the
audio before it has played, and ``stop`` when the call ends. The agent sends ``media`` (any number of
frames, usually faster than real time: the network buffers and plays them), ``mark`` and ``clear``.

What Twilio accepts from an agent is decoded strictly here: the payload must be valid base64 μ-law of a
whole number of samples; an unknown event is a violation, not silently dropped, because an agent that
sends something Twilio would reject is broken in production too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .codec import Pcm, decode_ulaw, encode_ulaw
from .playout import SILENT_FRAME
from .protocol import (
    AgentAudio,
    AgentClear,
    AgentEvent,
    AgentMark,
    CallInfo,
    ProtocolViolation,
    WireMessage,
)

__all__ = ["MAX_MEDIA_BYTES", "TwilioProtocol"]

_SILENT_PAYLOAD = base64.b64encode(encode_ulaw(SILENT_FRAME)).decode("ascii")

MAX_MEDIA_BYTES = 64_000
"""The largest μ-law payload accepted in one agent ``media`` message (8 s of audio)."""


class TwilioProtocol:
    """One stream's encoder and decoder (it numbers its messages, so one instance per call)."""

    name = "twilio"

    def __init__(self) -> None:
        self._sequence = 0
        self._stream_sid = ""

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def opening(self, call: CallInfo) -> list[WireMessage]:
        self._stream_sid = call.stream_sid
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        start = {
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "accountSid": call.account_sid,
                "streamSid": call.stream_sid,
                "callSid": call.call_sid,
                "tracks": ["inbound"],
                "customParameters": dict(call.custom_parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": call.stream_sid,
        }
        return [orjson.dumps(connected).decode(), orjson.dumps(start).decode()]

    def media(self, frame_index: int, pcm: Pcm) -> WireMessage:
        silent = pcm is SILENT_FRAME
        payload = _SILENT_PAYLOAD if silent else base64.b64encode(encode_ulaw(pcm)).decode("ascii")
        # Built as text: this runs 50 times a second per call, and the fields need no escaping.
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","media":{{"track":"inbound",'
            f'"chunk":"{frame_index + 1}","timestamp":"{frame_index * 20}","payload":"{payload}"}},'
            f'"streamSid":"{self._stream_sid}"}}'
        )

    def dtmf(self, digit: str) -> WireMessage | None:
        message = {
            "event": "dtmf",
            "streamSid": self._stream_sid,
            "sequenceNumber": self._next(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        }
        return orjson.dumps(message).decode()

    def mark_played(self, name: str) -> WireMessage | None:
        message = {
            "event": "mark",
            "sequenceNumber": self._next(),
            "streamSid": self._stream_sid,
            "mark": {"name": name},
        }
        return orjson.dumps(message).decode()

    def closing(self) -> list[WireMessage]:
        message = {
            "event": "stop",
            "sequenceNumber": self._next(),
            "streamSid": self._stream_sid,
            "stop": {"accountSid": "", "callSid": ""},
        }
        return [orjson.dumps(message).decode()]

    def parse(self, message: WireMessage) -> list[AgentEvent]:
        if isinstance(message, bytes):
            raise ProtocolViolation("a binary frame: Twilio media streams carry JSON text frames only")
        try:
            body: Any = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise ProtocolViolation(f"a frame that is not JSON ({exc}): {message[:80]!r}") from None
        if not isinstance(body, dict):
            raise ProtocolViolation(f"a JSON frame that is not an object: {message[:80]!r}")
        event = body.get("event")
        if event == "media":
            return [AgentAudio(_payload(body))]
        if event == "mark":
            mark = body.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                raise ProtocolViolation("a mark event without mark.name")
            return [AgentMark(name)]
        if event == "clear":
            return [AgentClear()]
        raise ProtocolViolation(f"an unknown event {event!r} (Twilio accepts media, mark and clear)")


def _payload(body: dict[str, Any]) -> Pcm:
    media = body.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str):
        raise ProtocolViolation("a media event without media.payload")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolViolation("a media payload that is not valid base64") from None
    if len(data) > MAX_MEDIA_BYTES:
        raise ProtocolViolation(f"a media payload of {len(data)} bytes (at most {MAX_MEDIA_BYTES})")
    return decode_ulaw(data)
