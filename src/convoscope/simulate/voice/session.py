"""One simulated phone call, in real time, over a telephony media stream.

The loop ticks every 20 ms on the event loop's monotonic clock (frame ``k`` is due at ``t0 + k·20 ms``;
a late tick is caught up at once, and how late each tick was is kept as the simulator's own pacing
jitter). Each tick it plays one frame of the agent's queued audio (:class:`~.playout.Playout`), lets the
caller's ears and timing react (:mod:`.behaviour`), takes one frame of the caller's speech mixed with
the persona's noise bed, records both frames side by side, and sends the caller's frame through the
persona's network impairment. A reader task decodes the agent's messages as they come.

The call's ground truth is what the simulator itself did: when each caller utterance started and ended,
which were barge-ins and backchannels, which keys were pressed. It is kept on the call beside the
recording, so every simulated call also checks the audio analysis that measures it.

Failures of the agent end the call, never the run: a refused connection, a TLS or handshake error, a
frame its protocol does not allow, or a stream closed abnormally mid-call become an errored call with
the reason (:class:`~convoscope.simulate.connectors.base.AgentError` kinds).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidState, InvalidURI
from websockets.protocol import State

from ..callers import Caller, CallerTurn, Line
from ..connectors.base import AgentError, AgentUnreachable, MalformedReply
from .behaviour import AgentListener, VoiceBehaviour, frames_of
from .codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Pcm, silence
from .conditions import (
    Impairer,
    NetworkSpec,
    NoiseBed,
    NoiseSpec,
    calibration_level,
    noise_gain,
    reference_level,
)
from .playout import SILENT_FRAME, Playout, Recorder
from .protocol import AgentAudio, AgentClear, AgentMark, CallInfo, ProtocolViolation, TelephonyProtocol
from .speech import SpeechError, VoiceSpec, render_line
from .stt import normalise
from .tts import EspeakSpeaker, Speaker

__all__ = [
    "ARE_YOU_THERE",
    "CallerUtterance",
    "Transcribe",
    "VoiceCallResult",
    "VoiceConditions",
    "run_voice_call",
]

ARE_YOU_THERE = "Hello? Are you there?"
_DTMF = re.compile(r"^\s*dtmf:\s*([0-9*#A-D]+)\s*$", re.IGNORECASE)
DTMF_SPACING_S = 0.2
"""Between two key presses of one ``dtmf:`` line."""
_NORMAL_CLOSE = {1000, 1001}
_YIELD_EVERY = 8
"""Agent messages decoded in a row before the reader lets other calls' ticks run."""

Transcribe = Callable[[Pcm], str]
"""The caller's ears: 8 kHz speech to text (run off the event loop)."""


@dataclass(frozen=True)
class VoiceConditions:
    """How the persona sounds and what the line does to it."""

    voice: VoiceSpec = VoiceSpec()
    hesitant: bool = False
    noise: NoiseSpec | None = None
    network: NetworkSpec | None = None
    behaviour: VoiceBehaviour = VoiceBehaviour()
    seed: int = 0
    speaker: Speaker | None = None
    """Who renders the caller's lines (None: espeak-ng; or a TTS endpoint, :mod:`.tts`)."""


@dataclass
class CallerUtterance:
    """Something the caller said (or keyed), on the call clock."""

    kind: str
    """``line``, ``prompt`` (are you there?), ``backchannel`` or ``dtmf``."""
    text: str
    start_s: float
    end_s: float = 0.0
    barge_in: bool = False
    """Started while the agent was audibly talking."""


@dataclass
class VoiceCallResult:
    """What the call became: the transcript as the caller lived it, the recording, the truth, the pacing."""

    lines: list[Line]
    turns: list[tuple[str, str, float, float]]
    """(role, text, start_s, end_s) in order: the caller's lines and the agent's turns as heard."""
    utterances: list[CallerUtterance]
    stereo: Pcm
    end: str
    """``user_hangup``, ``agent_hangup``, ``max_duration``, or ``error``."""
    error: str | None = None
    error_kind: str | None = None
    lateness_s: list[float] = field(default_factory=list)
    """Per tick: how late the simulator sent the frame (its own pacing jitter)."""
    first_audio_s: float | None = None
    """When the agent's first audio played."""
    frames_sent: int = 0
    frames_lost: int = 0
    marks_echoed: int = 0
    clears: int = 0
    connect_s: float = 0.0


def _says(heard: str, keyword: str) -> bool:
    """Whether normalised text says the keyword at the start of a word: "appointment" is heard in "two
    appointments" (inflections count), never inside a word ("nine" is not heard in "canine")."""
    return re.search(rf"(?<![a-z0-9]){re.escape(keyword)}", heard) is not None


@dataclass(frozen=True)
class _Planned:
    """The caller's next turn and its rendered speech (None: keys, or nothing to say)."""

    turn: CallerTurn
    pcm: Pcm | None


class _Ended(Exception):
    def __init__(self, end: str, error: AgentError | None = None) -> None:
        super().__init__(end)
        self.end = end
        self.error = error


class _VoiceCall:
    """The state of one call while it runs."""

    def __init__(
        self,
        ws: ClientConnection,
        protocol: TelephonyProtocol,
        caller: Caller,
        conditions: VoiceConditions,
        *,
        agent_speaks_first: bool,
        max_lines: int,
        transcribe: Transcribe | None,
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.caller = caller
        self.conditions = conditions
        self.behaviour = conditions.behaviour
        self.max_lines = max_lines
        self.transcribe = transcribe
        self.random = random.Random(conditions.seed)
        self.playout = Playout()
        self.recorder = Recorder()
        self.listener = AgentListener(end_of_turn_s=self.behaviour.end_of_turn_s)
        self.out_impair = (
            Impairer(conditions.network, seed=conditions.seed * 2 + 1) if conditions.network else None
        )
        self.in_impair = (
            Impairer(conditions.network, seed=conditions.seed * 2 + 2) if conditions.network else None
        )
        self.noise = NoiseBed(conditions.noise, seed=conditions.seed) if conditions.noise else None
        self.speaker = conditions.speaker or EspeakSpeaker()
        self.noise_gain = 0.0
        self.prompt_pcm: Pcm = SILENT_FRAME
        self.backchannel_pcm: Pcm = SILENT_FRAME
        self.lines: list[Line] = []
        self.turns: list[tuple[str, str, float, float]] = []
        self.utterances: list[CallerUtterance] = []
        self.t0 = 0.0
        self.frame_index = 0
        self.speaking: Pcm | None = None
        self.speak_pos = 0
        self.current: CallerUtterance | None = None
        self.pending: asyncio.Task[_Planned] | None = None
        self.pending_barge = False
        self.scheduled: tuple[int, _Planned, bool] | None = None
        self.hang_up_after = False
        self.dtmf_queue: list[tuple[int, str]] = []
        self.delayed: list[tuple[float, str | bytes]] = []
        self.prompted = False
        self.last_activity = 0
        self.barge_this_turn = False
        self.last_backchannel = -1
        self.agent_closed: int | None = None
        self.agent_close_reason = ""
        self.violation: ProtocolViolation | None = None
        self.result = VoiceCallResult([], [], [], np.zeros((0, 2), dtype=np.int16), "error")
        self.waiting_first = agent_speaks_first
        self._turn_of_line: dict[int, int] = {}
        self.keyword_task: asyncio.Future[str] | None = None
        self.keyword_turn = -1
        """The agent turn (its start frame) the keyword is being listened for in."""
        self.keyword_heard = 0
        self._barged_turn = False

    # -- time --------------------------------------------------------------------------------------

    def now_sample(self) -> int:
        return round((asyncio.get_running_loop().time() - self.t0) * SAMPLE_RATE)

    def at(self, frame: int) -> float:
        return round(frame * FRAME_MS / 1000, 6)

    # -- the agent's side ----------------------------------------------------------------------------

    async def read(self) -> None:
        """Decode the agent's messages into the playout as they arrive."""
        try:
            received = 0
            async for message in self.ws:
                received += 1
                if received % _YIELD_EVERY == 0:
                    # An agent sends a whole reply at once; decoding it in one go would hold the loop
                    # (and every other call's next frame) for milliseconds.
                    await asyncio.sleep(0)
                arrival = self.now_sample()
                for event in self.protocol.parse(message):
                    if isinstance(event, AgentAudio):
                        self._queue_audio(event.pcm, arrival)
                    elif isinstance(event, AgentMark):
                        self.playout.mark(event.name, arrival)
                    elif isinstance(event, AgentClear):
                        self.result.clears += 1
                        for name in self.playout.clear():
                            await self._echo(name)
        except ProtocolViolation as exc:
            self.violation = exc
        except ConnectionClosed:
            pass
        finally:
            self.agent_closed = self.ws.close_code if self.ws.close_code is not None else 1006
            self.agent_close_reason = self.ws.close_reason or ""

    def _queue_audio(self, pcm: Pcm, arrival: int) -> None:
        if self.in_impair is None:
            self.playout.push(pcm, arrival)
            return
        for offset in range(0, len(pcm), FRAME_SAMPLES):
            piece = pcm[offset : offset + FRAME_SAMPLES]
            fate = self.in_impair.fate(self.in_impair_count)
            self.in_impair_count += 1
            if fate.dropped:
                piece = np.zeros_like(piece)
            self.playout.push(piece, arrival + round(fate.delay_s * SAMPLE_RATE))

    in_impair_count = 0

    async def _echo(self, name: str) -> None:
        message = self.protocol.mark_played(name)
        if message is not None and await self._put(message):
            self.result.marks_echoed += 1

    async def _put(self, message: str | bytes) -> bool:
        """Send unless the agent has closed the stream (its last audio still plays out); False if not sent."""
        # A send on a closing stream would wait out the close handshake (seconds) and stall the tick.
        ws = self.ws
        if self.agent_closed is not None or ws.state is not State.OPEN:
            return False
        try:
            if ws.paused:
                await ws.send(message)  # the agent is not reading: wait for the buffer to drain
                return True
            # The frame is written at once, without the general send path's context manager and drain
            # await: 50 messages a second per call make that path most of the simulator's own CPU. The
            # connection's protocol object frames it, and flow control is the check above.
            if isinstance(message, str):
                ws.protocol.send_text(message.encode())
            else:
                ws.protocol.send_binary(message)
            ws.send_data()
        except (ConnectionClosed, InvalidState, OSError):
            return False
        return True

    # -- the caller's side --------------------------------------------------------------------------------

    def _start_mind(self, barge: bool, heard: tuple[int, Pcm] | None = None) -> None:
        """Ask the caller's mind for its next turn, off the tick: ``heard`` is the agent's turn (its index
        in the transcript, its audio), transcribed first when the caller has ears."""

        async def think() -> _Planned:
            if heard is not None and self.transcribe is not None:
                index, audio = heard
                text = (await asyncio.to_thread(self.transcribe, audio)).strip()
                self.lines[index] = Line("agent", text)
                role, _, start, end = self.turns[self._turn_of_line[index]]
                self.turns[self._turn_of_line[index]] = (role, text, start, end)
            turn = await self.caller.next_turn(list(self.lines))
            if not turn.text or _DTMF.match(turn.text):
                return _Planned(turn, None)
            # Rendered here, off the tick: a TTS request (or even espeak-ng) would stall every call's pacing.
            return _Planned(turn, await asyncio.to_thread(self._render, turn.text))

        self.pending = asyncio.ensure_future(think())
        self.pending_barge = barge

    def _agent_turn_ended(self, k: int) -> None:
        start = self.listener.turn_start
        end = self.listener.last_voice + 1
        self.last_activity = k
        if self._barged_turn:
            # The caller already answered this turn when it barged in: the turn only gets its true end.
            self._barged_turn = False
            index = max(i for i, turn in enumerate(self.turns) if turn[0] == "agent")
            role, text, begun, _ = self.turns[index]
            self.turns[index] = (role, text, begun, self.at(end))
            return
        self._add_agent_line(start, end)
        self.last_activity = k
        self.waiting_first = False
        if (
            self.speaking is None
            and self.pending is None
            and self.scheduled is None
            and not self.hang_up_after
        ):
            self._start_mind(False, self._heard(start, end))

    def _add_agent_line(self, start: int, end: int) -> None:
        self._turn_of_line[len(self.lines)] = len(self.turns)
        self.lines.append(Line("agent", ""))
        self.turns.append(("agent", "", self.at(start), self.at(end)))

    def _heard(self, start: int, end: int) -> tuple[int, Pcm] | None:
        if self.transcribe is None:
            return None
        audio = self.recorder.agent_since(start)[: (end - start) * FRAME_SAMPLES]
        return len(self.lines) - 1, audio

    def _barge_in(self, k: int) -> None:
        # The agent's line so far is what the caller reacts to (it is still talking).
        self._add_agent_line(self.listener.turn_start, k + 1)
        self._start_mind(True, self._heard(self.listener.turn_start, k + 1))
        self._barged_turn = True

    def _listen_for_keyword(self, k: int, keyword: str) -> None:
        """Transcribe the agent's turn so far (one request at a time, every ``keyword_check_s`` of its
        speech) and barge in once the keyword is heard in it."""
        task = self.keyword_task
        if task is not None and task.done():
            self.keyword_task = None
            heard = normalise(task.result())
            if _says(heard, normalise(keyword)) and self.keyword_turn == self.listener.turn_start:
                self.keyword_turn = -1
                self._barge_in(k)
                return
        if self.keyword_task is not None or self.transcribe is None:
            return
        voiced = self.listener.voiced_in_turn
        if self.keyword_turn != self.listener.turn_start:
            self.keyword_turn, self.keyword_heard = self.listener.turn_start, 0
        if voiced - self.keyword_heard < frames_of(self.behaviour.keyword_check_s):
            return
        self.keyword_heard = voiced
        audio = self.recorder.agent_since(self.listener.turn_start)
        self.keyword_task = asyncio.ensure_future(asyncio.to_thread(self.transcribe, audio))

    def _render(self, text: str) -> Pcm:
        voice, hesitant = self.conditions.voice, self.conditions.hesitant
        return render_line(text, voice, hesitant=hesitant, speak=self.speaker.speak)

    def prepare(self) -> None:
        """Before the call: the noise gain from the voice's level, and the lines said without thinking."""
        voice = self.conditions.voice
        if self.conditions.noise is not None:
            espeak = isinstance(self.speaker, EspeakSpeaker)
            level = reference_level(voice) if espeak else calibration_level(self.speaker.speak, voice)
            self.noise_gain = noise_gain(level, self.conditions.noise.snr_db)
        self.prompt_pcm = self._render(ARE_YOU_THERE)
        if self.behaviour.backchannel_every_s is not None:
            self.backchannel_pcm = self.speaker.speak(self.behaviour.backchannel_text, voice)

    def _say(self, k: int, planned: _Planned, barge: bool) -> None:
        text = planned.turn.text or ""
        found = _DTMF.match(text)
        if found:
            spacing = frames_of(DTMF_SPACING_S)
            self.dtmf_queue.extend((k + i * spacing, digit) for i, digit in enumerate(found.group(1)))
            utterance = CallerUtterance(
                "dtmf", found.group(1), self.at(k), self.at(k + spacing * len(found.group(1)))
            )
            self.utterances.append(utterance)
            self.lines.append(Line("user", f"[keys {found.group(1)}]"))
            self.turns.append(("user", f"[keys {found.group(1)}]", utterance.start_s, utterance.end_s))
            self.last_activity = k + spacing * len(found.group(1))
            return
        kind = "prompt" if text == ARE_YOU_THERE else "line"
        assert planned.pcm is not None
        self._speak(k, kind, text, planned.pcm, barge)
        self.lines.append(Line("user", text))

    def _speak(self, k: int, kind: str, text: str, pcm: Pcm, barge: bool) -> None:
        self.speaking = pcm
        self.speak_pos = 0
        self.current = CallerUtterance(kind, text, self.at(k), barge_in=barge)
        self.utterances.append(self.current)

    def _caller_frame(self, k: int) -> Pcm:
        if self.speaking is None:
            return SILENT_FRAME
        frame = self.speaking[self.speak_pos : self.speak_pos + FRAME_SAMPLES]
        self.speak_pos += FRAME_SAMPLES
        if self.speak_pos >= len(self.speaking):
            assert self.current is not None
            self.current.end_s = round(self.current.start_s + len(self.speaking) / SAMPLE_RATE, 6)
            if self.current.kind != "backchannel":
                self.turns.append(("user", self.current.text, self.current.start_s, self.current.end_s))
            self.speaking = None
            self.current = None
            self.last_activity = k + 1
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, silence(FRAME_SAMPLES - len(frame))])
        return frame

    def _mix(self, frame: Pcm) -> Pcm:
        if self.noise is None:
            return frame
        mixed = frame.astype(np.float32) + self.noise.next(FRAME_SAMPLES) * self.noise_gain
        return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)

    async def tick(self, k: int) -> None:
        """Frame ``k``: play, listen, decide, speak, record, send."""
        behaviour = self.behaviour
        agent, played = self.playout.frame()
        for name in played:
            await self._echo(name)
        if self.result.first_audio_s is None and np.any(agent):
            self.result.first_audio_s = self.at(k)
        if self.listener.hear(k, agent):
            self._agent_turn_ended(k)
        if self.listener.turn_open and self.listener.voiced_in_turn == 1:
            self.barge_this_turn = self.random.random() < behaviour.barge_in_chance
            self.last_backchannel = k
        talking = self.listener.speaking(k)
        free = self.speaking is None and self.pending is None and self.scheduled is None
        # Barge in: the agent has talked long enough this turn and this turn was picked, or it said the
        # keyword the persona waits for.
        if (
            talking
            and free
            and self.barge_this_turn
            and self.listener.voiced_in_turn * FRAME_MS / 1000 >= behaviour.barge_in_after_s
        ):
            self.barge_this_turn = False
            self._barge_in(k)
        elif talking and free and behaviour.barge_in_keyword and self.transcribe is not None:
            self._listen_for_keyword(k, behaviour.barge_in_keyword)
        if self.pending is not None and self.pending.done():
            planned = self.pending.result()
            barge = self.pending_barge
            self.pending = None
            if planned.turn.text:
                delay = 0 if barge else frames_of(behaviour.reaction_s)
                self.scheduled = (k + delay, planned, barge)
                self.hang_up_after = planned.turn.hang_up
            elif planned.turn.hang_up:
                raise _Ended("user_hangup")
        if self.scheduled is not None and k >= self.scheduled[0] and self.speaking is None:
            _, planned, barged = self.scheduled
            self.scheduled = None
            if sum(1 for line in self.lines if line.role == "user") >= self.max_lines:
                raise _Ended("max_duration")
            # A barge-in the caller decided on is one even if it starts in a gap between the agent's words;
            # any line started while the agent's turn is still open is one too.
            self._say(k, planned, barged or self.listener.turn_open)
        # Backchannel while the agent holds the floor.
        every = behaviour.backchannel_every_s
        if (
            every is not None
            and talking
            and self.speaking is None
            and self.pending is None
            and self.scheduled is None
            and k - self.last_backchannel >= frames_of(every)
        ):
            self.last_backchannel = k
            pcm = self.backchannel_pcm
            self._speak(k, "backchannel", behaviour.backchannel_text, pcm, True)
        # Dead air: the agent owes a turn and says nothing.
        idle = (
            self.speaking is None
            and self.pending is None
            and self.scheduled is None
            and not self.listener.turn_open
            and self.playout.idle
            and not self.dtmf_queue
        )
        if idle and self.hang_up_after and k - self.last_activity >= frames_of(0.5):
            raise _Ended("user_hangup")
        if idle and (k - self.last_activity) * FRAME_MS / 1000 >= behaviour.patience_s:
            if behaviour.prompt_when_idle and not self.prompted:
                self.prompted = True
                self._say(k, _Planned(CallerTurn(ARE_YOU_THERE), self.prompt_pcm), False)
            else:
                raise _Ended(
                    "error",
                    AgentError(
                        f"the agent said nothing for {behaviour.patience_s:g} s (the persona's patience)"
                    ),
                )
        frame = self._mix(self._caller_frame(k))
        self.recorder.add(frame, agent)
        await self._send(k, frame)
        while self.dtmf_queue and self.dtmf_queue[0][0] <= k:
            message = self.protocol.dtmf(self.dtmf_queue.pop(0)[1])
            if message is not None:
                await self._put(message)

    async def _send(self, k: int, frame: Pcm) -> None:
        if self.out_impair is None:
            if await self._put(self.protocol.media(k, frame)):
                self.result.frames_sent += 1
            return
        fate = self.out_impair.fate(k)
        if fate.dropped:
            self.result.frames_lost += 1
        else:
            self.delayed.append(
                (asyncio.get_running_loop().time() + fate.delay_s, self.protocol.media(k, frame))
            )
        now = asyncio.get_running_loop().time()
        while self.delayed and self.delayed[0][0] <= now + 1e-4:
            if await self._put(self.delayed.pop(0)[1]):
                self.result.frames_sent += 1


async def run_voice_call(
    url: str,
    protocol: TelephonyProtocol,
    caller: Caller,
    conditions: VoiceConditions,
    call: CallInfo,
    *,
    agent_speaks_first: bool = True,
    max_lines: int = 20,
    transcribe: Transcribe | None = None,
    connect_timeout_s: float = 10.0,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> VoiceCallResult:
    """Call the agent at ``url`` and run the conversation to its end; never raises for the agent's faults."""
    started = time.monotonic()
    # wss:// takes the default context (system CAs) unless one is given; ws:// takes none.
    tls: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None and url.startswith("wss:") else {}
    try:
        ws = await asyncio.wait_for(
            connect(
                url,
                open_timeout=connect_timeout_s,
                compression=None,
                ping_interval=None,
                max_size=2**22,
                additional_headers=dict(headers or {}),
                **tls,
            ),
            timeout=connect_timeout_s + 1,
        )
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ssl.SSLError) as exc:
        failed = VoiceCallResult([], [], [], np.zeros((0, 2), dtype=np.int16), "error")
        failed.error = f"could not connect to {url}: {exc or type(exc).__name__}"
        failed.error_kind = AgentUnreachable.kind
        return failed
    state = _VoiceCall(
        ws,
        protocol,
        caller,
        conditions,
        agent_speaks_first=agent_speaks_first,
        max_lines=max_lines,
        transcribe=transcribe,
    )
    state.result.connect_s = round(time.monotonic() - started, 6)
    return await _drive(state, call)


async def _drive(state: _VoiceCall, call: CallInfo) -> VoiceCallResult:
    result = state.result
    loop = asyncio.get_running_loop()
    reader: asyncio.Task[None] | None = None
    end = "error"
    error: AgentError | SpeechError | None = None
    try:
        await asyncio.to_thread(state.prepare)
        for message in state.protocol.opening(call):
            await state.ws.send(message)
        state.t0 = loop.time()
        reader = asyncio.ensure_future(state.read())
        if not state.waiting_first:
            state._start_mind(False)
        max_frames = frames_of(state.behaviour.max_call_s)
        k = 0
        while True:
            due = state.t0 + k * FRAME_MS / 1000
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            result.lateness_s.append(max(0.0, loop.time() - due))
            if state.violation is not None:
                raise _Ended(
                    "error",
                    MalformedReply(f"the agent broke the {state.protocol.name} protocol: {state.violation}"),
                )
            received = state.ws.protocol.close_rcvd
            if state.agent_closed is None and received is not None:
                # The agent's close frame is its hang-up, whether or not the TCP connection has closed
                # yet (an agent that stops reading would hold that up for its close timeout).
                state.agent_closed, state.agent_close_reason = received.code, received.reason
            if state.agent_closed is not None and state.playout.idle:
                if state.agent_closed in _NORMAL_CLOSE:
                    raise _Ended("agent_hangup")
                raise _Ended(
                    "error",
                    AgentUnreachable(
                        f"the agent's stream closed mid-call (code {state.agent_closed}"
                        + (f": {state.agent_close_reason}" if state.agent_close_reason else "")
                        + ")"
                    ),
                )
            if k >= max_frames:
                raise _Ended("max_duration")
            await state.tick(k)
            k += 1
    except _Ended as ended:
        end, error = ended.end, ended.error
    except ConnectionClosed as exc:
        end, error = "error", AgentUnreachable(f"the agent's stream closed mid-call ({exc})")
    except (AgentError, SpeechError) as exc:
        # An agent's fault, or the caller's voice failing (a TTS endpoint down): the call is errored.
        end, error = "error", exc
    finally:
        for task in (state.pending, state.keyword_task):
            if task is not None:
                task.cancel()
        if end != "error" or error is None or not isinstance(error, AgentUnreachable):
            with contextlib.suppress(ConnectionClosed, OSError):
                for message in state.protocol.closing():
                    await state.ws.send(message)
        with contextlib.suppress(Exception):
            closing_s = 0.5 if state.ws.protocol.close_rcvd is not None else 2.0
            await asyncio.wait_for(state.ws.close(), timeout=closing_s)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    if state.current is not None:
        state.current.end_s = round(state.current.start_s + state.speak_pos / SAMPLE_RATE, 6)
    result.lines = state.lines
    result.turns = state.turns
    result.utterances = state.utterances
    result.stereo = state.recorder.stereo()
    result.end = end
    if error is not None:
        result.end = "error"
        result.error = str(error)
        result.error_kind = error.kind
    return result


def pacing_summary(lateness_s: Sequence[float]) -> dict[str, Any]:
    """The simulator's own pacing: how late its frames went out (ms), p50/p99/max."""
    if not lateness_s:
        return {"frames": 0}
    values = np.asarray(lateness_s) * 1000
    return {
        "frames": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p99_ms": round(float(np.percentile(values, 99)), 3),
        "max_ms": round(float(values.max()), 3),
    }
