"""The reference agent's voice front: a Twilio Media Streams WebSocket server, at ``/twilio``.

The voice simulator plays the telephone network and needs an agent whose turn-taking is known exactly,
with faults to switch on, so that every turn-taking metric can be checked against a true value. This
module is that agent: Ava of the appointment line, speaking espeak-ng through μ-law frames.

**Protocol.** The telephone side sends ``connected``, ``start`` (with ``customParameters``), ``media``
(160 bytes of base64 μ-law, every 20 ms), ``dtmf`` (ignored: the line has no menu), ``mark`` (the echo
of a mark the agent sent, once the audio before it has played or was cleared) and ``stop``. The agent
sends each utterance at once as 20 ms ``media`` frames followed by a ``mark``, and ``clear`` on a
barge-in. It takes its audio as playing until the mark after it is echoed; its own clock (playback
ends ``duration`` after the frames were sent, queued behind what was still playing) plus
``mark_grace_s`` ends it for a telephone side that never echoes marks.

**Custom parameters** of ``start`` (all optional): ``faults`` (see :mod:`.voice_faults`, added to the
server's), ``replies`` (``|``-separated lines, one per caller turn; the call ends after the last),
``greeting`` (the scripted greeting; empty for none), ``agent_speaks_first`` (``true``/``false``; an
agent that does not speak first puts its greeting before its first reply) and ``stt`` (``whisper`` or
``off``).

**Endpointing.** A 20 ms frame is voiced or not by a VAD (webrtcvad at ``vad_mode``; in light mode an
energy test: at least 8 of its 160 samples above about -40 dBFS). The caller's turn ends on the frame
that completes ``endpoint_ms`` of unvoiced frames after at least ``min_speech_ms`` of voiced frames
(counted over the turn, across pauses shorter than ``endpoint_ms``); a shorter blip is dropped.

**Timing.** The reply is sent ``processing_ms`` + ``latency`` (+ the dead air, once) after the arrival
of that end-of-turn frame, with :func:`asyncio.sleep` to a deadline on the event loop's clock. The
rendering (cached, and started before it is needed for scripted lines) and any transcription happen
inside that wait, so nothing variable is added: the response gap the caller measures is the fixed
``endpoint_ms + processing_ms`` (700 ms by default) plus the VAD's offset at the end of speech, the same
for the same audio (on espeak-ng speech webrtcvad holds on 60-100 ms past the last sample, the energy
test lets go 20-40 ms before it), and ``latency:X`` moves it by exactly ``X`` (within a few ms on
loopback). Only speech recognition slower than the wait can make a reply late. A ``talks_over`` reply
is timed the same way from the frame that completes ``talks_over_ms`` of caller speech. The greeting is
sent ``latency`` after ``start``, or once rendered if later.

**Replies.** With ``stt=whisper`` each caller turn is transcribed and fed to the
:class:`~.policy.ReferencePolicy` (its tool calls answered silently by the server's
:class:`~.tools.ReferenceTools`), the same appointment line as the chat endpoints. With STT off (the
default) nothing is recognised: the agent says its ``replies`` in order, one per caller turn, and by
default these are what the policy answers a stand-in caller (:data:`STAND_IN_CALLER`), ending with its
goodbye, so a scripted simulated caller needs no speech recognition on either side. After the goodbye
has played the agent hangs up (close 1000).

**Barge-in.** When the caller has spoken ``barge_in_ms`` (voiced frames, counted from when the agent's
current audio started playing) while it plays, the agent sends ``clear``, drops the rest of that
utterance (a goodbye that was cut off is said again later) and takes what the caller says as the next
turn. An early ``talks_over`` reply does not count the speech it interrupted as a barge-in.

**Light mode** (a server option, for load tests): no STT, the energy VAD, and the default lines rendered
and base64-encoded once when the app is created (every mode sends frames from prebuilt strings). What is
left per call is mostly the WebSocket transport: about 2 ms of CPU per second of call (0.2% of a core)
measured with 200-300 concurrent callers, so hundreds of calls fit on one core.

**Errors.** A binary frame, text that is not JSON, invalid base64 or a payload that is not 160 bytes
closes the socket with 1003; an unknown event, a message missing its fields, ``media`` before
``start``, bad custom parameters or an unknown fault close it with 1008; a failure of the agent itself
with 1011. The reason always says which. ``stop`` or a disconnect ends the call quietly.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import webrtcvad  # type: ignore[import-untyped]
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...simulate.voice.codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Pcm, decode_ulaw, encode_ulaw
from ...simulate.voice.speech import VoiceSpec, render_speech
from .faults import Fault
from .policy import ConversationState, ReferencePolicy
from .tools import ReferenceTools
from .voice_faults import UnknownVoiceFault, VoiceFaults, clip_speech, parse_voice_faults

if TYPE_CHECKING:
    from ...simulate.voice.stt import Transcriber

__all__ = [
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_POLICY",
    "CLOSE_UNSUPPORTED",
    "STAND_IN_CALLER",
    "Utterance",
    "VoiceAgent",
    "VoiceOptions",
    "default_script",
    "render_utterance",
]

log = logging.getLogger(__name__)

CLOSE_UNSUPPORTED = 1003
"""Data the agent cannot read: a binary frame, not JSON, bad base64, a payload that is not 20 ms."""
CLOSE_POLICY = 1008
"""A message that breaks the protocol or asks for what the agent refuses (an unknown fault)."""
CLOSE_INTERNAL_ERROR = 1011

STAND_IN_CALLER = ("How much is a cleaning?", "How much is a whitening?", "No thanks, that's all. Bye!")
"""What the policy is told the caller said, to make the default reply lines when nothing is recognised."""

_ULAW_SILENCE = b"\xff"
_PREROLL_FRAMES = 10
"""Frames kept before a turn's first voiced frame, so a recogniser hears its soft onset."""
_MAX_TOOL_ROUNDS = 8
_CLOSE_REASON_BYTES = 120
_RENDER_CACHE_SIZE = 2048
_ENERGY_LEVEL = 300
"""Light mode: a sample louder than this (about -40 dBFS) is loud."""
_ENERGY_SAMPLES = 8
"""Light mode: a frame with at least this many loud samples (5%) is voiced."""
_LOUD = bytes(1 if abs(int(v)) > _ENERGY_LEVEL else 0 for v in decode_ulaw(bytes(range(256))))
_STT_NAMES = {"whisper": "whisper", "off": None, "none": None, "": None, "false": None}
_FLAGS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class VoiceOptions:
    """The voice front's server options. Times are in milliseconds; the ones the VAD counts (endpoint,
    speech, barge-in, talks-over) are counted in whole 20 ms frames, so they round up to one."""

    faults: str = ""
    """Voice faults every call has (``"latency:800,talks_over"``); a call's ``faults`` add to these."""
    stt: str | None = None
    """``"whisper"`` to recognise the caller and answer with the policy; ``None``: scripted lines."""
    light: bool = False
    """Load-test mode: no STT, an energy VAD, the default lines pre-rendered (see the module notes)."""
    replies: tuple[str, ...] | None = None
    """The scripted lines (one per caller turn); ``None``: what the policy says to :data:`STAND_IN_CALLER`."""
    greeting: str | None = None
    """The scripted greeting (``""``: none); ``None``: the policy's."""
    agent_speaks_first: bool = True
    """Greet on ``start``; otherwise wait for the caller and greet in the first reply."""
    endpoint_ms: int = 500
    min_speech_ms: int = 200
    processing_ms: int = 200
    barge_in_ms: int = 200
    talks_over_ms: int = 400
    """With ``talks_over``: caller speech after which the reply is started (then ``processing_ms``)."""
    dead_air_turn: int = 2
    """With ``dead_air``: the caller turn whose answer is held back."""
    voice: VoiceSpec = field(default_factory=lambda: VoiceSpec(voice="en-us+f3", rate_wpm=175))
    vad_mode: int = 2
    """webrtcvad aggressiveness, 0 (keeps most) to 3 (drops most)."""
    mark_grace_s: float = 1.0
    """How long past its own clock the agent waits for a mark echo before taking the audio as played."""

    def __post_init__(self) -> None:
        for name in ("endpoint_ms", "min_speech_ms", "barge_in_ms", "talks_over_ms"):
            if getattr(self, name) < FRAME_MS:
                raise ValueError(f"{name} must be at least one frame ({FRAME_MS} ms)")
        if self.processing_ms < 0 or self.mark_grace_s < 0 or self.dead_air_turn < 1:
            raise ValueError("processing_ms and mark_grace_s must be >= 0 and dead_air_turn >= 1")
        if not 0 <= self.vad_mode <= 3:
            raise ValueError("vad_mode must be 0 to 3")
        if self.stt not in (None, "whisper"):
            raise ValueError(f"stt must be None or 'whisper', not {self.stt!r}")
        if self.light and self.stt:
            raise ValueError("light mode has no speech recognition")
        if self.replies is not None and not [line for line in self.replies if line.strip()]:
            raise ValueError("replies must have at least one line")
        parse_voice_faults(self.faults)


# ----- speech out


@dataclass(frozen=True)
class Utterance:
    """One line, rendered and cut into base64 μ-law frames, ready to send."""

    text: str
    payloads: tuple[str, ...]

    @property
    def duration_s(self) -> float:
        return len(self.payloads) * FRAME_MS / 1000


_rendered: dict[tuple[str, VoiceSpec, bool], Utterance] = {}


def _cached(text: str, voice: VoiceSpec, clipped: bool) -> Utterance | None:
    return _rendered.get((text, voice, clipped))


def render_utterance(text: str, voice: VoiceSpec, *, clipped: bool = False) -> Utterance:
    """``text`` in the agent's voice as frames (the last one padded with silence), cached per process."""
    key = (text, voice, clipped)
    found = _rendered.get(key)
    if found is not None:
        return found
    pcm = render_speech(text, voice)
    if clipped:
        pcm = clip_speech(pcm)
    ulaw = encode_ulaw(pcm)
    ulaw += _ULAW_SILENCE * (-len(ulaw) % FRAME_SAMPLES)
    payloads = tuple(
        binascii.b2a_base64(ulaw[i : i + FRAME_SAMPLES], newline=False).decode("ascii")
        for i in range(0, len(ulaw), FRAME_SAMPLES)
    )
    if len(_rendered) >= _RENDER_CACHE_SIZE:
        _rendered.clear()
    utterance = _rendered[key] = Utterance(text, payloads)
    return utterance


# ----- speech in


class _Vad(Protocol):
    def __call__(self, frame: bytes) -> bool: ...


def _energy_vad(frame: bytes) -> bool:
    """Two C-level passes over the μ-law bytes, no decoding: the cheapest test that tracks espeak-ng
    speech frame for frame (it is not meant for noisy lines)."""
    return frame.translate(_LOUD).count(1) >= _ENERGY_SAMPLES


def _webrtc_vad(mode: int) -> _Vad:
    vad = webrtcvad.Vad(mode)

    def voiced(frame: bytes) -> bool:
        return bool(vad.is_speech(decode_ulaw(frame).tobytes(), SAMPLE_RATE))

    return voiced


# ----- what to say


class _Conversation:
    """The policy over one call, with its tool calls answered in process and never spoken."""

    def __init__(self, policy: ReferencePolicy, tools: ReferenceTools) -> None:
        self.policy, self.tools, self.state = policy, tools, ConversationState()

    def say(self, heard: str | None) -> tuple[str, bool]:
        """The agent's answer to ``heard`` (``None``: the opening), and whether it ends the call."""
        inputs: list[dict[str, Any]] = [] if heard is None else [{"role": "user", "content": heard}]
        texts: list[str] = []
        for _ in range(_MAX_TOOL_ROUNDS):
            turn = self.policy.advance(self.state, inputs)
            if turn.text:
                texts.append(turn.text)
            if not turn.tool_calls:
                break
            inputs = [
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": json.dumps(self.tools.execute(call.name, call.arguments)),
                }
                for call in turn.tool_calls
            ]
        return " ".join(texts), turn.end_call


_scripts: dict[tuple[frozenset[Fault], date], tuple[str, tuple[str, ...]]] = {}


def default_script(policy_faults: frozenset[Fault], today: date) -> tuple[str, tuple[str, ...]]:
    """The greeting and the reply lines the policy says to :data:`STAND_IN_CALLER` (fresh tools, so
    no booking is touched), cached per faults and day."""
    key = (policy_faults, today)
    if key not in _scripts:
        conversation = _Conversation(ReferencePolicy(policy_faults, today=today), ReferenceTools(today=today))
        greeting, _ = conversation.say(None)
        replies: list[str] = []
        for line in STAND_IN_CALLER:
            text, ended = conversation.say(line)
            replies.append(text)
            if ended:
                break
        _scripts[key] = (greeting, tuple(replies))
    return _scripts[key]


class _Replies(Protocol):
    def opening(self) -> str | None: ...
    def lines(self) -> list[str]: ...
    async def hear(self, pcm: Pcm | None) -> str | None: ...
    def answer(self, heard: str | None) -> tuple[str, bool]: ...


class _Script:
    """The lines in order, one per caller turn; the last one ends the call (said again if a barge-in
    cut it off)."""

    def __init__(self, greeting: str, replies: Sequence[str], *, speaks_first: bool) -> None:
        self._lines = [line.strip() for line in replies if line.strip()]
        self._greeting: str | None = greeting
        if not speaks_first:
            self._lines[0] = f"{greeting} {self._lines[0]}".strip()
            self._greeting = None
        self._next = 0

    def opening(self) -> str | None:
        return self._greeting or None

    def lines(self) -> list[str]:
        return [line for line in [self._greeting or "", *self._lines] if line]

    async def hear(self, pcm: Pcm | None) -> str | None:
        return None

    def answer(self, heard: str | None) -> tuple[str, bool]:
        line = self._lines[min(self._next, len(self._lines) - 1)]
        self._next += 1
        return line, self._next >= len(self._lines)


class _Listening:
    """The caller recognised turn by turn and answered by the policy."""

    def __init__(self, agent: VoiceAgent, conversation: _Conversation, *, speaks_first: bool) -> None:
        self._agent, self._conversation = agent, conversation
        self._opening = conversation.say(None)[0] if speaks_first else None

    def opening(self) -> str | None:
        return self._opening

    def lines(self) -> list[str]:
        return [self._opening] if self._opening else []

    async def hear(self, pcm: Pcm | None) -> str | None:
        transcriber = await self._agent.transcriber()
        samples = pcm if pcm is not None else np.zeros(0, dtype=np.int16)
        return await asyncio.to_thread(transcriber.transcribe, samples, SAMPLE_RATE)

    def answer(self, heard: str | None) -> tuple[str, bool]:
        return self._conversation.say(heard or "")


# ----- the server side


class _Refused(Exception):
    """The telephone side broke the protocol: the call is closed with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class VoiceAgent:
    """The voice front of one server: options, faults and the lazily loaded recogniser, shared by its
    calls; :meth:`websocket` is the ``/twilio`` route."""

    def __init__(
        self,
        options: VoiceOptions,
        *,
        tools: ReferenceTools,
        today: date | None = None,
        policy_faults: frozenset[Fault] = frozenset(),
    ) -> None:
        self.options = options
        self.faults = parse_voice_faults(options.faults) | VoiceFaults(policy=policy_faults)
        self.tools = tools
        self._today = today
        self._transcriber: Transcriber | None = None
        self._transcriber_lock = threading.Lock()
        if options.light:
            greeting, replies = self.script(self.faults.policy)
            for text in [greeting, *replies]:
                render_utterance(text, options.voice, clipped=self.faults.clipped)

    @property
    def today(self) -> date:
        return self._today or datetime.now(UTC).date()

    def script(self, policy_faults: frozenset[Fault]) -> tuple[str, tuple[str, ...]]:
        greeting, replies = default_script(policy_faults, self.today)
        if self.options.greeting is not None:
            greeting = self.options.greeting
        return greeting, self.options.replies or replies

    def policy(self, policy_faults: frozenset[Fault]) -> ReferencePolicy:
        return ReferencePolicy(policy_faults, today=self._today)

    async def transcriber(self) -> Transcriber:
        """The recogniser, loaded once per server in a worker thread (loading takes seconds)."""
        if self._transcriber is None:
            self._transcriber = await asyncio.to_thread(self._load_transcriber)
        return self._transcriber

    def _load_transcriber(self) -> Transcriber:
        with self._transcriber_lock:
            if self._transcriber is None:
                from ...simulate.voice.stt import transcriber_for

                self._transcriber = transcriber_for(self.options.stt or "whisper")
            return self._transcriber

    async def websocket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await _Call(self, websocket).run()


def _reason(text: str) -> str:
    """A close reason that fits a WebSocket close frame (123 bytes)."""
    return text.encode("utf-8")[:_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def _flag(value: object, name: str) -> bool:
    flag = _FLAGS.get(str(value).strip().lower())
    if flag is None:
        raise _Refused(CLOSE_POLICY, f"custom parameter {name!r} must be true or false, not {value!r}")
    return flag


def _check_format(media_format: object) -> None:
    """Refuses any audio but Twilio's own (an absent ``mediaFormat`` is taken to be it)."""
    if media_format is None:
        return
    wanted = {"encoding": "audio/x-mulaw", "sampleRate": str(SAMPLE_RATE), "channels": "1"}
    if not isinstance(media_format, dict) or any(
        str(media_format.get(key, value)) != value for key, value in wanted.items()
    ):
        raise _Refused(CLOSE_UNSUPPORTED, f"only 8 kHz mono audio/x-mulaw is spoken, not {media_format}")


def _field(message: Mapping[str, Any], name: str, event: str) -> dict[str, Any]:
    value = message.get(name)
    if not isinstance(value, dict):
        raise _Refused(CLOSE_POLICY, f"a {event!r} message needs a {name!r} object")
    return value


class _Call:
    """One call: reads the telephone side's messages, detects the caller's turns and speaks.

    The receive loop does everything per frame; each utterance is a task that waits for its deadline
    and for the utterance before it (so lines are said in order) and sends under a lock (so a ``clear``
    never lands between an utterance's frames)."""

    def __init__(self, agent: VoiceAgent, websocket: WebSocket) -> None:
        self.agent, self.ws, self.options = agent, websocket, agent.options
        self.loop = asyncio.get_running_loop()
        self.faults = agent.faults
        self.vad: _Vad = _energy_vad if self.options.light else _webrtc_vad(self.options.vad_mode)
        self.stream_sid: str | None = None
        self.replies: _Replies | None = None
        self.listening = False
        self.media_prefix = ""
        # the caller's turn
        self.in_turn = False
        self.voiced_ms = 0
        self.silence_ms = 0
        self.answered = False
        self.turns = 0
        self.turn_frames: list[bytes] = []
        self.preroll: deque[bytes] = deque(maxlen=_PREROLL_FRAMES)
        # what the telephone side plays
        self.playing_until = 0.0
        self.mark: str | None = None
        self.marks = 0
        self.barge_ms = 0
        self.goodbye: tuple[str, asyncio.Event] | None = None
        self.hangup: asyncio.Task[None] | None = None
        # tasks and the socket
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.chain: asyncio.Task[None] | None = None
        self.closed = False

    # ----- the loop

    async def run(self) -> None:
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    raise _Refused(CLOSE_UNSUPPORTED, "binary frames are not Twilio Media Streams messages")
                await self.on_message(text)
        except _Refused as refused:
            await self.close(refused.code, refused.reason)
        except WebSocketDisconnect:
            return
        finally:
            self.closed = True
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def on_message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            raise _Refused(CLOSE_UNSUPPORTED, "a message is not JSON") from None
        if not isinstance(message, dict):
            raise _Refused(CLOSE_POLICY, "a message must be a JSON object")
        event = message.get("event")
        if event == "media":
            await self.on_media(message)
        elif event == "mark":
            self.on_mark(message)
        elif event == "start":
            self.on_start(message)
        elif event == "stop":
            await self.close(1000, "the call ended")
        elif event == "dtmf":
            _field(message, "dtmf", "dtmf")
        elif event != "connected":
            raise _Refused(CLOSE_POLICY, f"unknown event {event!r}")

    # ----- start

    def on_start(self, message: Mapping[str, Any]) -> None:
        if self.stream_sid is not None:
            raise _Refused(CLOSE_POLICY, "a second 'start' message")
        start = _field(message, "start", "start")
        sid = start.get("streamSid") or message.get("streamSid")
        if not isinstance(sid, str) or not sid:
            raise _Refused(CLOSE_POLICY, "the 'start' message has no streamSid")
        _check_format(start.get("mediaFormat"))
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise _Refused(CLOSE_POLICY, "customParameters must be an object")
        self.replies = self._replies(params)
        self.stream_sid = sid
        self.media_prefix = '{"event":"media","streamSid":' + json.dumps(sid) + ',"media":{"payload":"'
        if self.listening:
            self.spawn(self.warm_up())
        opening = self.replies.opening()
        if opening:
            deadline = self.loop.time() + self.faults.latency_ms / 1000
            self.chain = self.spawn(self.speak(opening, False, deadline))
        missing = [text for text in self.replies.lines() if text != opening and self._cached(text) is None]
        if missing:
            self.spawn(self.prerender(missing))

    def _replies(self, params: Mapping[str, Any]) -> _Replies:
        try:
            self.faults = self.agent.faults | parse_voice_faults(str(params.get("faults") or ""))
        except UnknownVoiceFault as error:
            raise _Refused(CLOSE_POLICY, str(error)) from None
        speaks_first = self.options.agent_speaks_first
        if "agent_speaks_first" in params:
            speaks_first = _flag(params["agent_speaks_first"], "agent_speaks_first")
        stt = self.options.stt
        if "stt" in params:
            key = str(params["stt"]).strip().lower()
            if key not in _STT_NAMES:
                raise _Refused(CLOSE_POLICY, f"custom parameter 'stt' must be whisper or off, not {key!r}")
            stt = _STT_NAMES[key]
        if stt and self.options.light:
            raise _Refused(CLOSE_POLICY, "this agent runs in light mode, without speech recognition")
        if stt:
            self.listening = True
            conversation = _Conversation(self.agent.policy(self.faults.policy), self.agent.tools)
            return _Listening(self.agent, conversation, speaks_first=speaks_first)
        greeting, replies = self.agent.script(self.faults.policy)
        if "greeting" in params:
            greeting = str(params["greeting"]).strip()
        if "replies" in params:
            replies = tuple(line for line in str(params["replies"]).split("|") if line.strip())
            if not replies:
                raise _Refused(CLOSE_POLICY, "custom parameter 'replies' has no line")
        return _Script(greeting, replies, speaks_first=speaks_first)

    # ----- media

    async def on_media(self, message: Mapping[str, Any]) -> None:
        if self.stream_sid is None:
            raise _Refused(CLOSE_POLICY, "'media' before 'start'")
        media = _field(message, "media", "media")
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise _Refused(CLOSE_POLICY, "a 'media' message has no payload")
        try:
            frame = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            raise _Refused(CLOSE_UNSUPPORTED, "a media payload is not valid base64") from None
        if len(frame) != FRAME_SAMPLES:
            raise _Refused(
                CLOSE_UNSUPPORTED,
                f"a media payload must be {FRAME_SAMPLES} bytes (20 ms of μ-law), not {len(frame)}",
            )
        await self.on_frame(frame, self.vad(frame), self.loop.time())

    async def on_frame(self, frame: bytes, voiced: bool, now: float) -> None:
        """The endpointing rule and the barge-in rule, one 20 ms frame at a time."""
        options = self.options
        if voiced and not self.in_turn:
            self.in_turn = True
            if self.listening:
                self.turn_frames = list(self.preroll)
                self.preroll.clear()
        if self.listening:
            (self.turn_frames if self.in_turn else self.preroll).append(frame)
        if voiced:
            self.voiced_ms += FRAME_MS
            self.silence_ms = 0
            if not self.answered and self.playing(now):
                self.barge_ms += FRAME_MS
                if self.barge_ms >= options.barge_in_ms and not self.faults.ignores_barge_in:
                    await self.clear()
            if self.faults.talks_over and not self.answered and self.voiced_ms >= options.talks_over_ms:
                self.answered = True
                self.end_turn(now)
        elif self.in_turn:
            self.silence_ms += FRAME_MS
            if self.silence_ms >= options.endpoint_ms:
                if self.voiced_ms >= options.min_speech_ms and not self.answered:
                    self.end_turn(now)
                self.in_turn, self.voiced_ms, self.silence_ms, self.answered = False, 0, 0, False
                self.barge_ms = 0
                self.turn_frames = []

    def end_turn(self, now: float) -> None:
        """Schedule the answer: ``processing_ms`` + ``latency`` (+ dead air, once) from ``now``."""
        self.turns += 1
        delay_ms: float = self.options.processing_ms + self.faults.latency_ms
        if self.turns == self.options.dead_air_turn:
            delay_ms += self.faults.dead_air_s * 1000
        pcm = decode_ulaw(b"".join(self.turn_frames)) if self.listening else None
        self.turn_frames = []
        self.chain = self.spawn(self.reply(pcm, now + delay_ms / 1000, self.chain))

    # ----- marks and playback

    def playing(self, now: float) -> bool:
        """Whether the telephone side is still playing the agent: its last mark is not echoed and the
        clock (with grace for a side that never echoes) does not say it ended."""
        return self.mark is not None and now < self.playing_until + self.options.mark_grace_s

    def on_mark(self, message: Mapping[str, Any]) -> None:
        name = _field(message, "mark", "mark").get("name")
        if name == self.mark:
            self.mark = None
        if self.goodbye is not None and name == self.goodbye[0]:
            self.goodbye[1].set()

    async def clear(self) -> None:
        """A barge-in: flush the telephone side's unplayed audio."""
        async with self.send_lock:
            self.mark, self.playing_until, self.barge_ms = None, self.loop.time(), 0
            if self.hangup is not None:
                self.hangup.cancel()
                self.hangup, self.goodbye = None, None
            await self.send(json.dumps({"event": "clear", "streamSid": self.stream_sid}))

    # ----- speaking

    async def reply(self, pcm: Pcm | None, deadline: float, previous: asyncio.Task[None] | None) -> None:
        assert self.replies is not None
        heard = await self.replies.hear(pcm)
        if previous is not None:
            await asyncio.wait([previous])
        text, end_call = self.replies.answer(heard)
        await self.speak(text, end_call, deadline)

    async def speak(self, text: str, end_call: bool, deadline: float) -> None:
        utterance = self._cached(text)
        if utterance is None:
            utterance = await asyncio.to_thread(self._render, text)
        delay = deadline - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        name = await self.play(utterance)
        if end_call and name is not None:
            event = asyncio.Event()
            self.goodbye = (name, event)
            self.hangup = self.spawn(self.hang_up(event))

    async def play(self, utterance: Utterance) -> str | None:
        """Send the frames and a mark; answers the mark's name (``None`` once the call is closed)."""
        async with self.send_lock:
            if self.closed:
                return None
            now = self.loop.time()
            if self.playing(now):
                self.playing_until = max(now, self.playing_until) + utterance.duration_s
            else:
                self.playing_until, self.barge_ms = now + utterance.duration_s, 0
            self.marks += 1
            self.mark = name = f"utterance-{self.marks}"
            prefix = self.media_prefix
            for payload in utterance.payloads:
                await self.send(prefix + payload + '"}}')
            await self.send(
                json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
            )
            return name

    async def hang_up(self, played: asyncio.Event) -> None:
        """After the goodbye has played (its mark echoed, or the clock and grace ran out)."""
        timeout = max(0.0, self.playing_until - self.loop.time()) + self.options.mark_grace_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(played.wait(), timeout)
        self.hangup = None
        await self.close(1000, "goodbye")

    def _render(self, text: str) -> Utterance:
        return render_utterance(text, self.options.voice, clipped=self.faults.clipped)

    def _cached(self, text: str) -> Utterance | None:
        return _cached(text, self.options.voice, self.faults.clipped)

    async def warm_up(self) -> None:
        """Load the recogniser as the call starts, so a missing model fails the call at once."""
        await self.agent.transcriber()

    async def prerender(self, texts: list[str]) -> None:
        """Render the lines the call will say before they are needed, so no reply waits on espeak-ng."""
        await asyncio.to_thread(lambda: [self._render(text) for text in texts])

    # ----- the socket

    async def send(self, text: str) -> None:
        if not self.closed:
            await self.ws.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await self.ws.close(code=code, reason=_reason(reason))

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A task's failure closes the call with 1011 and its reason, rather than leaving it mute."""
        self.tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, WebSocketDisconnect | OSError):
            self.closed = True
        elif error is not None:
            log.error("the voice agent failed on stream %s", self.stream_sid, exc_info=error)
            self.spawn(self.close(CLOSE_INTERNAL_ERROR, f"the agent failed: {error}"))
