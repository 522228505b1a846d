"""The Pipecat test agent (``pipecat_agent.py``) speaks Twilio Media Streams as a real Pipecat phone bot
does, driven here by a hand-written Twilio side over a real WebSocket.

The voice simulator's end-to-end tests lean on this agent, so this test pins down what they rely on
and what the simulator has to cope with: the greeting arrives as real-time paced μ-law ``media`` in
40 ms messages, Pipecat's VAD hears espeak-ng speech sent as 20 ms frames, the caller speaking over
the bot makes Pipecat send ``clear`` and stop, the next line comes once the caller stops, and after the
last line Pipecat sends one burst of closing silence and closes the socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets

from convoscope.simulate.voice.codec import FRAME_SAMPLES, SAMPLE_RATE, Pcm, decode_ulaw, encode_ulaw, silence
from convoscope.simulate.voice.speech import render_speech

from .pipecat_agent import BOT_VOICE, serve_pipecat_agent

STREAM_SID = "MZ00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"
GREETING = (
    "Hello, and thanks for calling Example Air. I can change a booking, check on a flight, "
    "or add bags to your trip. What can I do for you today?"
)
REPLY = ("Sure.", "Which flight is it?")
"""The reply's sentences: Pipecat's TTS service speaks a reply sentence by sentence."""
GOODBYE = "Done. Goodbye."
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
PIPECAT_CHUNK_BYTES = 320
"""Pipecat's output transport writes 40 ms at a time by default: 320 μ-law bytes per ``media``."""
LOUD = 500
"""A 40 ms frame whose peak passes this is speech (espeak-ng's quietest speech peaks far above)."""
TURN_GAP_S = 0.9
"""Silence in the bot's media longer than this separates one of its lines from the next. The real gaps
between lines are the caller's speech plus the bot's end-of-speech wait (2 s and more); a busy 2-core box
can stall the bot's real-time stream for over half a second inside a line, which must not split it."""


@dataclass
class Media:
    at: float
    pcm: Pcm

    @property
    def loud(self) -> bool:
        return int(np.abs(self.pcm.astype(np.int32)).max(initial=0)) > LOUD


@dataclass
class TwilioSide:
    """The telephone network's end of the stream: sends the caller's audio as Twilio does (20 ms μ-law
    frames, paced in real time, silence when the caller says nothing) and records what the bot sends."""

    ws: Any
    started: float = field(default_factory=time.monotonic)
    media: list[Media] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    closed_at: float | None = None
    barge_in_at: float = 0.0
    """When the caller started talking over the greeting."""
    barge_in_end: float = 0.0
    """When the last frame of that line was sent."""
    answer_at: float = 0.0
    """When the caller started answering the reply."""
    _speech: list[Pcm] = field(default_factory=list)
    _chunk: int = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    async def handshake(self) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": "AC00000000000000000000000000000001",
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            "customParameters": {"persona": "smoke"},
        }
        await self.ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": STREAM_SID})
        )

    def say(self, text: str) -> float:
        """Queue the caller's line; returns when its last frame will have been sent (seconds)."""
        pcm = render_speech(text)
        pending = sum(len(p) for p in self._speech)
        self._speech.append(pcm)
        return self.now() + (pending + len(pcm)) / SAMPLE_RATE

    async def send_audio(self) -> None:
        """One 20 ms frame every 20 ms until the call closes, as Twilio streams the caller's line."""
        sequence = 2
        next_at = time.monotonic()
        while self.closed_at is None:
            frame = self._next_frame()
            message = {
                "event": "media",
                "sequenceNumber": str(sequence),
                "media": {
                    "track": "inbound",
                    "chunk": str(sequence - 1),
                    "timestamp": str(round((sequence - 2) * FRAME_S * 1000)),
                    "payload": base64.b64encode(encode_ulaw(frame)).decode("ascii"),
                },
                "streamSid": STREAM_SID,
            }
            try:
                await self.ws.send(json.dumps(message))
            except websockets.ConnectionClosed:
                return
            sequence += 1
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _next_frame(self) -> Pcm:
        if not self._speech:
            return silence()
        pcm = self._speech[0]
        frame = pcm[self._chunk : self._chunk + FRAME_SAMPLES]
        self._chunk += FRAME_SAMPLES
        if self._chunk >= len(pcm):
            self._speech.pop(0)
            self._chunk = 0
        return np.pad(frame, (0, FRAME_SAMPLES - len(frame)))

    async def receive(self) -> None:
        """Record the bot's messages until it closes the socket."""
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                event = message.get("event")
                assert message.get("streamSid") == STREAM_SID, message
                if event == "media":
                    payload = base64.b64decode(message["media"]["payload"])
                    self.media.append(Media(self.now(), decode_ulaw(payload)))
                elif event == "clear":
                    self.clears.append(self.now())
                else:
                    self.other.append(message)
        except websockets.ConnectionClosedOK:
            pass
        self.closed_at = self.now()

    async def until(self, predicate: Any, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out at {self.now():.2f}s")
            await asyncio.sleep(0.02)

    def loud_after(self, t: float) -> list[Media]:
        return [m for m in self.media if m.at > t and m.loud]


def lines_of(media: list[Media]) -> list[list[Media]]:
    """The bot's media split into its lines, at gaps in arrival longer than :data:`TURN_GAP_S`."""
    lines: list[list[Media]] = []
    for m in media:
        if lines and m.at - lines[-1][-1].at <= TURN_GAP_S:
            lines[-1].append(m)
        else:
            lines.append([m])
    return lines


async def converse(url: str) -> TwilioSide:
    """Barge into the greeting, wait for the reply to finish, answer it, and stay until the bot hangs up."""
    async with websockets.connect(url) as ws:
        side = TwilioSide(ws)
        await side.handshake()
        receiving = asyncio.create_task(side.receive())
        sending = asyncio.create_task(side.send_audio())
        # About a second into the greeting the caller talks over it.
        await side.until(lambda: sum(m.loud for m in side.media) >= 25, timeout_s=10)
        side.barge_in_at = side.now()
        side.barge_in_end = side.say("I want to change my flight.")
        # The reply comes once the caller has stopped; its end is a gap in the bot's media.
        await side.until(lambda: bool(side.loud_after(side.barge_in_end)), timeout_s=10)
        await side.until(lambda: side.now() - side.media[-1].at > TURN_GAP_S * 2, timeout_s=10)
        side.answer_at = side.now()
        side.say("Flight two one two on Friday.")
        await asyncio.wait_for(receiving, timeout=15)
        await sending
        return side


def test_a_pipecat_phone_bot_talks_listens_clears_and_hangs_up() -> None:
    with serve_pipecat_agent([GREETING, " ".join(REPLY), GOODBYE]) as url:
        side = asyncio.run(converse(url))
    barge_in_at, barge_in_end, answer_at = side.barge_in_at, side.barge_in_end, side.answer_at

    # Every message is base64 μ-law in Pipecat's 40 ms chunks; only media and clear are sent, no marks.
    assert side.other == []
    assert all(len(m.pcm) == PIPECAT_CHUNK_BYTES for m in side.media[:-1])
    *spoken, closing = side.media
    greeting, reply, goodbye = lines_of(spoken)
    assert all(any(m.loud for m in line) for line in (greeting, reply, goodbye))

    # The greeting is speech, paced in real time (not a burst), and cut off when the caller talks over it.
    assert greeting[0].at < 3.0
    greeting_audio_s = len(greeting) * PIPECAT_CHUNK_BYTES / SAMPLE_RATE
    assert greeting[-1].at - greeting[0].at >= 0.8 * greeting_audio_s
    assert greeting_audio_s < len(render_speech(GREETING, BOT_VOICE)) / SAMPLE_RATE / 2
    # Pipecat's VAD hears the caller start (0.2 s of speech) and the bot clears Twilio's buffer.
    (clear,) = [t for t in side.clears if t < answer_at]
    assert barge_in_at < clear < barge_in_at + 1.5
    assert greeting[-1].at < clear + 0.1

    # The reply starts only after the caller has stopped, and plays whole, in real time.
    assert reply[0].at > barge_in_end
    reply_samples = sum(len(render_speech(sentence, BOT_VOICE)) for sentence in REPLY)
    assert len(reply) == -(-reply_samples // PIPECAT_CHUNK_BYTES)  # the last chunk padded with silence
    reply_audio_s = len(reply) * PIPECAT_CHUNK_BYTES / SAMPLE_RATE
    assert reply[-1].at - reply[0].at >= 0.8 * reply_audio_s

    # The goodbye follows the caller's answer; then one burst of silence, and Pipecat closes the socket.
    assert goodbye[0].at > answer_at
    # A clear comes at every turn the caller starts, the bot talking or not.
    assert len([t for t in side.clears if answer_at < t < goodbye[0].at]) == 1
    assert not closing.loud and len(closing.pcm) == 2 * SAMPLE_RATE
    assert side.closed_at is not None and closing.at <= side.closed_at < goodbye[-1].at + 3.0
