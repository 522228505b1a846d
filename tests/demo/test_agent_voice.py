"""The reference agent's voice front over a real WebSocket, with a hand-written Twilio side on loopback.

Each test plays the telephone network the way Twilio does: ``connected`` and ``start``, then a μ-law
frame every 20 ms on an absolute schedule (silence between the caller's lines, real espeak-ng speech
during them), a playout clock that plays what the agent sends in real time, mark echoes when the audio
before a mark has played, and every mark echoed at once on ``clear``. Timings are taken on this client's
clock: a line ends when its last speech frame was sent, a reply starts when its first frame arrives.
Calls that are compared run at the same time on the same server, so they share the machine's load.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, ParamSpec

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from convoscope.demo.agent import Fault, ReferenceAgentServer, ReferencePolicy, ReferenceTools
from convoscope.demo.agent.voice import STAND_IN_CALLER, VoiceOptions, default_script, render_utterance
from convoscope.demo.agent.voice_faults import UnknownVoiceFault, parse_voice_faults
from convoscope.simulate.voice.codec import FRAME_SAMPLES, decode_ulaw, encode_ulaw
from convoscope.simulate.voice.speech import VoiceSpec, render_speech
from convoscope.simulate.voice.stt import SttUnavailable, WhisperTranscriber

P = ParamSpec("P")
TODAY = date(2025, 12, 3)
OPTIONS = VoiceOptions()
FIXED_S = (OPTIONS.endpoint_ms + OPTIONS.processing_ms) / 1000
TOLERANCE_S = 0.03
FRAME_S = 0.02
SILENCE = encode_ulaw(np.zeros(FRAME_SAMPLES, dtype=np.int16))


def frames_of(text: str) -> list[bytes]:
    ulaw = encode_ulaw(render_speech(text, VoiceSpec()))
    ulaw += SILENCE[: -len(ulaw) % FRAME_SAMPLES]
    return [ulaw[i : i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES)]


@dataclass
class Utterance:
    """What the agent sent between two marks, as the telephone side received it."""

    first_at: float
    frames: list[bytes] = field(default_factory=list)
    mark: str | None = None
    played_at: float | None = None

    @property
    def pcm(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        return decode_ulaw(b"".join(self.frames))


class Phone:
    """The telephone side of one call."""

    opened: ClassVar[list[Phone]] = []
    """Every call of the running test, hung up when it ends, passed or failed."""

    def __init__(self, ws: ClientConnection, sid: str) -> None:
        Phone.opened.append(self)
        self.ws, self.sid = ws, sid
        self.loop = asyncio.get_running_loop()
        self.lines: list[list[bytes]] = []
        self.speaking: list[tuple[float, float]] = []
        self.utterances: list[Utterance] = []
        self.clears: list[float] = []
        self.play_until = 0.0
        self.echoes: dict[str, asyncio.TimerHandle] = {}
        self.changed = asyncio.Event()
        self._sends: set[asyncio.Future[None]] = set()
        self.closed: tuple[int | None, str | None] | None = None
        """The close code and reason, once the agent closed the call."""
        self._tasks = [asyncio.create_task(self._send_frames()), asyncio.create_task(self._receive())]

    async def start(self, **params: str) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": "AC0",
            "streamSid": self.sid,
            "callSid": "CA0",
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await self.ws.send(
            json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": self.sid})
        )

    async def say(self, text: str) -> tuple[float, float]:
        """Speak a line in real time; answers when it started and ended on this clock."""
        self.lines.append(frames_of(text))
        count = len(self.speaking)
        await self.until(lambda: len(self.speaking) > count and self.speaking[count][1] > 0)
        return self.speaking[count]

    async def until(self, condition: Any, limit_s: float = 15.0) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), limit_s)

    async def reply_after(self, at: float) -> Utterance:
        await self.until(lambda: any(u.first_at > at for u in self.utterances))
        return next(u for u in self.utterances if u.first_at > at)

    async def hang_up(self) -> None:
        """Close the call; the receiver goes on draining until the agent's close frame is read."""
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._sends, return_exceptions=True)

    async def _send_frames(self) -> None:
        """A frame every 20 ms on an absolute schedule: the next speech frame, or silence."""
        sent, next_at = 0, self.loop.time()
        line: Iterator[bytes] = iter([])
        current: list[bytes] | None = None
        try:
            while True:
                frame = next(line, None)
                if frame is None and current is not None:
                    self.speaking[-1] = (self.speaking[-1][0], self.loop.time())
                    current = None
                    self.changed.set()
                if frame is None and self.lines:
                    current = self.lines.pop(0)
                    line = iter(current)
                    frame = next(line)
                    self.speaking.append((self.loop.time(), 0.0))
                payload = base64.b64encode(frame or SILENCE).decode()
                sent += 1
                media = {
                    "track": "inbound",
                    "chunk": str(sent),
                    "timestamp": str(sent * 20),
                    "payload": payload,
                }
                await self.ws.send(
                    json.dumps(
                        {
                            "event": "media",
                            "sequenceNumber": str(sent + 1),
                            "media": media,
                            "streamSid": self.sid,
                        }
                    )
                )
                next_at += FRAME_S
                await asyncio.sleep(max(0.0, next_at - self.loop.time()))
        except ConnectionClosed:
            return

    async def _receive(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                self._on(json.loads(text))
                self.changed.set()
        self.closed = (self.ws.close_code, self.ws.close_reason)
        self.changed.set()

    def _on(self, message: Mapping[str, Any]) -> None:
        now = self.loop.time()
        assert message["streamSid"] == self.sid
        if message["event"] == "media":
            if not self.utterances or self.utterances[-1].mark is not None:
                self.utterances.append(Utterance(now))
            self.utterances[-1].frames.append(base64.b64decode(message["media"]["payload"]))
            self.play_until = max(now, self.play_until) + FRAME_S
        elif message["event"] == "mark":
            name = message["mark"]["name"]
            self.utterances[-1].mark = name
            self.echoes[name] = self.loop.call_at(max(now, self.play_until), self._echo, name)
        elif message["event"] == "clear":
            self.clears.append(now)
            self.play_until = now
            for name, handle in list(self.echoes.items()):
                handle.cancel()
                self._echo(name)
        else:
            raise AssertionError(f"unexpected message {message}")

    def _echo(self, name: str) -> None:
        self.echoes.pop(name, None)
        for utterance in self.utterances:
            if utterance.mark == name:
                utterance.played_at = self.loop.time()
        self.changed.set()
        message = {"event": "mark", "sequenceNumber": "0", "streamSid": self.sid, "mark": {"name": name}}
        self._sends.add(asyncio.ensure_future(self._send_quietly(json.dumps(message))))

    async def _send_quietly(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            pass


def in_loop(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """An async test run in a fresh event loop (pytest sees the test's own signature)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        async def with_cleanup() -> None:
            try:
                await test(*args, **kwargs)
            finally:
                await asyncio.gather(*(phone.hang_up() for phone in Phone.opened))
                Phone.opened.clear()

        asyncio.run(with_cleanup())

    return run


@pytest.fixture(scope="module")
def agent() -> Iterator[ReferenceAgentServer]:
    with ReferenceAgentServer(today=TODAY) as server:
        yield server


async def call(url: str, sid: str = "MZ0", **params: str) -> Phone:
    phone = Phone(await connect(url, open_timeout=5), sid)
    await phone.start(**params)
    return phone


QUIET = {"agent_speaks_first": "false", "greeting": "", "replies": "Sure, I can help with that.|Goodbye."}


@in_loop
async def test_the_greeting_is_sent_as_20_ms_frames_then_a_mark(agent: ReferenceAgentServer) -> None:
    phone = await call(agent.twilio_url, sid="MZgreeting")
    await phone.until(lambda: bool(phone.utterances) and phone.utterances[0].mark is not None)
    greeting = phone.utterances[0]
    assert all(len(frame) == FRAME_SAMPLES for frame in greeting.frames)
    greeting_text = default_script(frozenset(), TODAY)[0]
    assert greeting.frames == [
        base64.b64decode(p) for p in render_utterance(greeting_text, OPTIONS.voice).payloads
    ]
    assert len(greeting.frames) * FRAME_S > 3.0
    await phone.hang_up()


@in_loop
async def test_a_reply_follows_the_end_of_speech_and_latency_moves_it_exactly(
    agent: ReferenceAgentServer,
) -> None:
    async def gap(**params: str) -> float:
        phone = await call(agent.twilio_url, **QUIET, **params)
        await asyncio.sleep(0.2)
        _, ended = await phone.say("I'd like to book a cleaning, please.")
        reply = await phone.reply_after(0)
        await phone.hang_up()
        assert reply.first_at > ended
        return reply.first_at - ended

    plain, slow = await asyncio.gather(gap(), gap(faults="latency:500"))
    assert FIXED_S - TOLERANCE_S <= plain <= FIXED_S + 0.12
    assert slow - plain == pytest.approx(0.5, abs=TOLERANCE_S)


@in_loop
async def test_barge_in_clears_the_agent_unless_it_ignores_barge_in(agent: ReferenceAgentServer) -> None:
    async def barge(faults: str) -> tuple[Phone, float, float]:
        phone = await call(agent.twilio_url, faults=faults)
        await phone.until(lambda: bool(phone.utterances))
        await asyncio.sleep(1.0)
        started, ended = await phone.say("Sorry, can I ask something?")
        await asyncio.sleep(0.3)
        return phone, started, ended

    (polite, p_start, p_end), (rude, _, r_end) = await asyncio.gather(barge(""), barge("ignores_barge_in"))
    assert len(polite.clears) == 1
    # The barge_in_ms-th millisecond of voice is in the frame sent one frame before that much time passed.
    barge_s = OPTIONS.barge_in_ms / 1000 - FRAME_S
    assert barge_s - TOLERANCE_S <= polite.clears[0] - p_start <= barge_s + 0.15
    assert polite.utterances[0].played_at is not None  # the cleared greeting's mark came back
    reply = await polite.reply_after(p_end)  # what the caller said was taken as the next turn
    assert reply.first_at - p_end == pytest.approx(FIXED_S, abs=0.12)
    assert rude.clears == []
    assert rude.utterances[0].played_at is None  # still talking over the caller
    await asyncio.gather(polite.hang_up(), rude.hang_up())


@in_loop
async def test_talks_over_starts_replying_while_the_caller_is_still_speaking(
    agent: ReferenceAgentServer,
) -> None:
    phone = await call(agent.twilio_url, **QUIET, faults="talks_over")
    await asyncio.sleep(0.2)
    started, ended = await phone.say("I would like to book a cleaning for next Tuesday morning, please.")
    reply = phone.utterances[0]
    assert started < reply.first_at < ended - 1.0
    early = (OPTIONS.talks_over_ms + OPTIONS.processing_ms) / 1000 - FRAME_S
    assert early - TOLERANCE_S <= reply.first_at - started <= early + 0.15
    assert phone.clears == []
    await phone.hang_up()


@in_loop
async def test_dead_air_holds_back_one_mid_call_reply_and_the_agent_hangs_up_after_goodbye(
    agent: ReferenceAgentServer,
) -> None:
    script = {**QUIET, "replies": "Okay.|Right.|Goodbye."}
    phone = await call(agent.twilio_url, **script, faults="dead_air:1")
    await asyncio.sleep(0.2)
    gaps = []
    for _ in range(3):
        _, ended = await phone.say("Yes, please.")
        reply = await phone.reply_after(ended)
        gaps.append(reply.first_at - ended)
        await phone.until(lambda reply=reply: reply.played_at is not None)
    assert gaps[1] - gaps[0] == pytest.approx(1.0, abs=TOLERANCE_S)
    assert gaps[2] == pytest.approx(gaps[0], abs=TOLERANCE_S)
    await phone.until(lambda: phone.closed is not None, limit_s=2.0)
    assert phone.closed == (1000, "goodbye")
    last = phone.utterances[-1]
    assert last.played_at is not None and last.played_at - last.first_at >= len(last.frames) * FRAME_S - 0.03
    await phone.hang_up()


@in_loop
async def test_clipped_replies_are_cut_short_and_saturated(agent: ReferenceAgentServer) -> None:
    async def greeting(faults: str) -> Utterance:
        phone = await call(agent.twilio_url, faults=faults)
        await phone.until(lambda: bool(phone.utterances) and phone.utterances[0].mark is not None)
        await phone.hang_up()
        return phone.utterances[0]

    clean, clipped = await asyncio.gather(greeting(""), greeting("clipped"))
    assert 0.45 <= len(clipped.frames) / len(clean.frames) <= 0.75
    full_scale = int(np.abs(decode_ulaw(b"\x00").astype(np.int32))[0])
    assert np.mean(np.abs(clean.pcm.astype(np.int32)) >= full_scale) == 0
    assert np.mean(np.abs(clipped.pcm.astype(np.int32)) >= full_scale) > 0.02

    def last_sound_rms(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> float:
        loud = np.flatnonzero(np.abs(pcm) > 64)
        tail = pcm[loud[-1] - FRAME_SAMPLES + 1 : loud[-1] + 1].astype(np.float64)
        return float(np.sqrt(np.mean(tail**2)))

    assert last_sound_rms(clipped.pcm) > 8 * last_sound_rms(clean.pcm)


def _media(payload: str) -> str:
    return json.dumps(
        {"event": "media", "media": {"track": "inbound", "payload": payload}, "streamSid": "MZ0"}
    )


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("this is not JSON", 1003, "not JSON"),
        (b"\x00\x01", 1003, "binary"),
        ('["media"]', 1008, "JSON object"),
        ('{"event": "ringing"}', 1008, "unknown event 'ringing'"),
        (_media(base64.b64encode(bytes(80)).decode()), 1003, "160 bytes"),
        (_media("not base64!!"), 1003, "base64"),
        ('{"event": "media"}', 1008, "'media' object"),
    ],
)
@in_loop
async def test_a_malformed_message_closes_the_call_with_a_reason(
    agent: ReferenceAgentServer, message: str | bytes, code: int, reason: str
) -> None:
    async with connect(agent.twilio_url) as ws:
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZ0"}, "streamSid": "MZ0"}))
        await ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, reason in closed.value.rcvd.reason) == (code, True)


@pytest.mark.parametrize(
    ("start", "code", "reason"),
    [
        ({"streamSid": "MZ0", "customParameters": {"faults": "latency:800,explodes"}}, 1008, "'explodes'"),
        ({"streamSid": "MZ0", "customParameters": {"faults": "latency"}}, 1008, "latency:<value>"),
        ({"streamSid": "MZ0", "customParameters": {"stt": "siri"}}, 1008, "'stt'"),
        ({"streamSid": "MZ0", "mediaFormat": {"encoding": "audio/L16", "sampleRate": 16000}}, 1003, "mulaw"),
        ({"customParameters": {}}, 1008, "streamSid"),
        (None, 1008, "before 'start'"),
    ],
)
@in_loop
async def test_a_bad_start_is_refused(
    agent: ReferenceAgentServer, start: dict[str, Any] | None, code: int, reason: str
) -> None:
    async with connect(agent.twilio_url) as ws:
        if start is not None:
            await ws.send(json.dumps({"event": "start", "start": start}))
        await ws.send(_media(base64.b64encode(SILENCE).decode()))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    assert reason in closed.value.rcvd.reason


@in_loop
async def test_stop_and_a_disconnect_end_the_call_and_the_server_goes_on(agent: ReferenceAgentServer) -> None:
    phone = await call(agent.twilio_url, sid="MZstop")
    await phone.until(lambda: bool(phone.utterances))
    await phone.ws.send(json.dumps({"event": "stop", "stop": {"callSid": "CA0"}, "streamSid": "MZstop"}))
    await phone.until(lambda: phone.closed is not None, limit_s=3)
    assert phone.closed == (1000, "the call ended")
    await phone.hang_up()
    dropped = await call(agent.twilio_url)
    await dropped.until(lambda: bool(dropped.utterances))
    dropped.ws.transport.abort()  # the caller's line drops mid-greeting
    await dropped.hang_up()
    again = await call(agent.twilio_url, sid="MZagain")
    await again.until(lambda: bool(again.utterances))
    await again.hang_up()


@in_loop
async def test_light_mode_answers_with_the_same_timing_and_refuses_speech_recognition() -> None:
    with ReferenceAgentServer(today=TODAY, voice=VoiceOptions(light=True)) as light:
        phone = await call(light.twilio_url, agent_speaks_first="false")
        await asyncio.sleep(0.2)
        _, ended = await phone.say(STAND_IN_CALLER[0])
        reply = await phone.reply_after(ended)
        await phone.until(lambda: reply.mark is not None)
        assert reply.first_at - ended == pytest.approx(FIXED_S, abs=0.12)
        greeting, replies = default_script(frozenset(), TODAY)
        expected = render_utterance(f"{greeting} {replies[0]}", OPTIONS.voice)
        assert [base64.b64encode(f).decode() for f in reply.frames] == list(expected.payloads)
        await phone.hang_up()
        refused = await call(light.twilio_url, stt="whisper")
        await refused.until(lambda: refused.closed is not None)
        assert refused.closed is not None and refused.closed[0] == 1008
        assert "light mode" in str(refused.closed[1])


def test_unknown_server_faults_are_refused_when_the_app_is_built() -> None:
    with pytest.raises(ValueError, match="unknown voice fault 'laggy'"):
        VoiceOptions(faults="laggy")


def test_fault_strings_name_voice_and_policy_faults_and_server_and_call_faults_add_up() -> None:
    server = parse_voice_faults("latency:300")
    call_faults = parse_voice_faults("latency:500+talks_over, dead_air:2.5 no_disclosure")
    both = server | call_faults
    assert both.latency_ms == 800 and both.dead_air_s == 2.5 and both.talks_over
    assert both.policy == {Fault.NO_DISCLOSURE}
    assert both.names() == ["dead_air:2.5", "latency:800", "no_disclosure", "talks_over"]
    for bad, message in [("clipped:3", "written clipped"), ("dead_air:x", "number"), ("latency:-5", "range")]:
        with pytest.raises(UnknownVoiceFault, match=message):
            parse_voice_faults(bad)


@in_loop
async def test_with_speech_recognition_the_policy_answers_what_the_caller_said(
    agent: ReferenceAgentServer,
) -> None:
    try:  # the asr extra is part of the test install: its absence is a failure, not a skip
        WhisperTranscriber().load()
    except SttUnavailable as missing:
        pytest.fail(f"the asr extra is needed: {missing}")
    phone = await call(agent.twilio_url, agent_speaks_first="false", stt="whisper")
    await asyncio.sleep(0.2)
    _, ended = await phone.say("How much is a cleaning?")
    reply = await phone.reply_after(ended)
    await phone.until(lambda: reply.mark is not None)
    expected = render_utterance(policy_answer("How much is a cleaning?"), OPTIONS.voice)
    assert [base64.b64encode(f).decode() for f in reply.frames] == list(expected.payloads)
    await phone.hang_up()


def policy_answer(line: str) -> str:
    """What the chat side says to ``line`` as the caller's first words, tool results included."""
    policy, tools = ReferencePolicy(today=TODAY), ReferenceTools(today=TODAY)
    messages: list[dict[str, Any]] = [{"role": "user", "content": line}]
    texts = []
    while True:
        turn = policy.respond(messages)
        texts.append(turn.text or "")
        if not turn.tool_calls:
            return " ".join(text for text in texts if text)
        messages.append(turn.openai_message())
        for tool_call in turn.tool_calls:
            result = tools.execute(tool_call.name, tool_call.arguments)
            messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": json.dumps(result)})
