"""The simulator's telephone side, frame by frame, against agents written here on loopback.

Each agent is a real WebSocket server that notes when every message arrived and answers as a voice
agent would (audio in a burst, a mark, a ``clear``), or badly (closing mid-call, sending garbage). What
the simulator sent and what it recorded are checked against what the agent did, on the same clock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from convoscope.audio.load import load_recording
from convoscope.audio.metrics import BACKCHANNELS, USER_INTERRUPTIONS
from convoscope.audio.report import analyze_audio
from convoscope.model import Role
from convoscope.simulate.callers import ScriptedCaller
from convoscope.simulate.connectors.registry import connector_from_config
from convoscope.simulate.definitions import AgentSpec, Definitions, Persona, Scenario, Script, Suite
from convoscope.simulate.loader import DefinitionError, load_definitions
from convoscope.simulate.runner import run_suite
from convoscope.simulate.voice.codec import FRAME_SAMPLES, SAMPLE_RATE, decode_ulaw, encode_ulaw
from convoscope.simulate.voice.connector import new_call_info
from convoscope.simulate.voice.conversation import conditions_for, wav_bytes
from convoscope.simulate.voice.pcm_ws import PcmWebSocketProtocol
from convoscope.simulate.voice.playout import Playout
from convoscope.simulate.voice.protocol import ProtocolViolation
from convoscope.simulate.voice.session import VoiceCallResult, VoiceConditions, run_voice_call
from convoscope.simulate.voice.speech import render_speech
from convoscope.simulate.voice.twilio import TwilioProtocol

Handler = Callable[[ServerConnection], Awaitable[None]]


def tone(seconds: float, hz: float = 440.0, level: float = 8000.0) -> np.ndarray[Any, np.dtype[np.int16]]:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def media(sid: str, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> str:
    payload = base64.b64encode(encode_ulaw(pcm)).decode()
    return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}})


async def _call(handler: Handler, lines: list[str], **kwargs: Any) -> VoiceCallResult:
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        return await run_voice_call(
            f"ws://127.0.0.1:{port}",
            kwargs.pop("protocol", None) or TwilioProtocol(),
            ScriptedCaller(Script(lines=lines, closing=None)),
            kwargs.pop("conditions", None) or VoiceConditions(),
            new_call_info({"tenant": "acme"}),
            **kwargs,
        )


def test_the_stream_opens_paces_and_echoes_as_twilio_does() -> None:
    seen: list[tuple[float, dict[str, Any]]] = []
    sent_at: dict[str, float] = {}

    async def speak(ws: ServerConnection, sid: str) -> None:
        # One second of audio, a mark, another second, a second mark: all in one burst.
        for chunk in np.array_split(tone(1.0), 7):
            await ws.send(media(sid, chunk))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "first"}}))
        await ws.send(media(sid, tone(1.0, 660.0)))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "second"}}))
        sent_at["burst"] = time.monotonic()
        await asyncio.sleep(1.3)
        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))
        sent_at["clear"] = time.monotonic()

    async def agent(ws: ServerConnection) -> None:
        tasks = []
        async for message in ws:
            body = json.loads(message)
            seen.append((time.monotonic(), body))
            if body["event"] == "start":
                tasks.append(asyncio.ensure_future(speak(ws, body["start"]["streamSid"])))
            elif body["event"] == "dtmf" and body["dtmf"]["digit"] == "2":
                await ws.close(1000, "goodbye")
                return

    # The caller says nothing but keys (no speech needed), after the agent's turn ends.
    result = asyncio.run(_call(agent, ["dtmf:12"]))
    assert result.error is None, result.error
    events = [body["event"] for _, body in seen]
    assert events[:2] == ["connected", "start"] and events[-1] == "dtmf"
    assert result.end == "agent_hangup"
    start = seen[1][1]
    assert start["start"]["customParameters"]["tenant"] == "acme"
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    assert start["start"]["callSid"].startswith("CA") and start["streamSid"].startswith("MZ")
    frames = [(at, body) for at, body in seen if body["event"] == "media"]
    assert all(len(base64.b64decode(body["media"]["payload"])) == FRAME_SAMPLES for _, body in frames)
    assert all(body["streamSid"] == start["streamSid"] for _, body in frames)
    assert [int(b["media"]["chunk"]) for _, b in frames] == list(range(1, len(frames) + 1))
    assert [int(b["media"]["timestamp"]) for _, b in frames] == [20 * i for i in range(len(frames))]
    sequence = [int(body["sequenceNumber"]) for _, body in seen[1:]]
    assert sequence == list(range(1, len(sequence) + 1))
    # Paced in real time: N frames take (N - 1) x 20 ms on the agent's clock, each about 20 ms apart.
    arrivals = np.array([at for at, _ in frames])
    span = arrivals[-1] - arrivals[0]
    assert abs(span - 0.02 * (len(frames) - 1)) < 0.05
    assert abs(float(np.median(np.diff(arrivals))) - 0.02) < 0.003
    # "first" is echoed once the first second has played (it starts a frame after arrival).
    echoes = {body["mark"]["name"]: at for at, body in seen if body["event"] == "mark"}
    assert abs(echoes["first"] - sent_at["burst"] - 1.02) < 0.06
    # "second" was still queued when the agent cleared: echoed at once, not after its audio.
    assert abs(echoes["second"] - sent_at["clear"]) < 0.06
    assert result.clears == 1 and result.marks_echoed == 2
    # The recording has the agent's audio up to the clear and nothing after it.
    agent_track = result.stereo[:, 1].astype(np.float64)
    voiced = np.flatnonzero(np.abs(agent_track) > 1000)
    assert abs(voiced[0] / SAMPLE_RATE - 0.02) < 0.03
    assert 1.25 < voiced[-1] / SAMPLE_RATE < 1.4
    digits = [body["dtmf"]["digit"] for _, body in seen if body["event"] == "dtmf"]
    assert digits == ["1", "2"]
    assert [u.kind for u in result.utterances] == ["dtmf"]


def test_the_playout_places_audio_at_its_arrival_and_clear_drops_only_what_is_unplayed() -> None:
    playout = Playout()
    playout.push(np.full(400, 7, dtype=np.int16), arrival_sample=50)
    playout.mark("after", arrival_sample=60)
    frames = [playout.frame() for _ in range(4)]
    audio = np.concatenate([pcm for pcm, _ in frames])
    # A burst arriving at sample 50 plays from sample 50 + one frame, to the sample.
    assert np.flatnonzero(audio)[0] == 210 and np.flatnonzero(audio)[-1] == 609
    assert [names for _, names in frames] == [[], [], [], ["after"]]
    playout.push(np.full(1600, 9, dtype=np.int16), arrival_sample=700)
    playout.mark("late", arrival_sample=700)
    assert not playout.frame()[0].any()  # samples 640-799: the burst starts at 700 + 160 = 860
    pcm, _ = playout.frame()
    assert not pcm[:60].any() and (pcm[60:] == 9).all()
    assert playout.clear() == ["late"]
    assert not playout.frame()[0].any() and playout.idle


def test_an_agent_that_breaks_mid_call_is_an_errored_call_and_the_run_goes_on() -> None:
    calls = {"n": 0}

    async def misbehave(ws: ServerConnection, n: int, sid: str) -> None:
        await ws.send(media(sid, tone(0.5)))
        await asyncio.sleep(0.8)
        if n == 1:
            await ws.close(1011, "pipeline crashed")
        elif n == 2:
            await ws.send("this is not JSON")
        else:
            await ws.close(1000, "goodbye")

    async def agent(ws: ServerConnection) -> None:
        calls["n"] += 1
        tasks = []
        async for message in ws:  # read to the end, as a real agent does, while it misbehaves
            body = json.loads(message)
            if body["event"] == "start":
                tasks.append(asyncio.ensure_future(misbehave(ws, calls["n"], body["start"]["streamSid"])))

    async def run() -> Any:
        async with serve(agent, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            scenario = Scenario(id="s", goal="g", script=Script(lines=["Hello?"], closing=None))
            suite = Suite(id="voice", scenarios=["s"], iterations=3, metrics=[])
            definitions = Definitions(scenarios={"s": scenario}, suites={"voice": suite})
            spec = AgentSpec(id="flaky", connector={"kind": "twilio", "url": url})
            connector = connector_from_config("twilio", {"url": url})
            return await run_suite(definitions, suite, spec, connector, scorer=lambda call: [], concurrency=1)

    report = asyncio.run(run())
    by_iteration = {r.item.iteration: r for r in report.results}
    assert [by_iteration[i].verdict for i in (1, 2, 3)] == ["errored", "errored", "passed"]
    first, second = by_iteration[1].outcome, by_iteration[2].outcome
    assert first.error_kind == "unreachable" and "code 1011: pipeline crashed" in (first.error or "")
    assert second.error_kind == "malformed_reply" and "not JSON" in (second.error or "")
    # The errored calls keep what was recorded until the failure.
    assert first.audio is not None and first.call.recordings


async def _dial(url: str) -> VoiceCallResult:
    return await run_voice_call(
        url,
        TwilioProtocol(),
        ScriptedCaller(Script(lines=["Hi"])),
        VoiceConditions(),
        new_call_info({}),
        connect_timeout_s=2.0,
    )


def test_a_refused_connection_is_an_errored_call_naming_the_url() -> None:
    async def run() -> VoiceCallResult:
        async with serve(lambda ws: asyncio.sleep(0), "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
        return await _dial(f"ws://127.0.0.1:{port}/twilio")  # the server has gone: refused

    result = asyncio.run(run())
    assert result.error_kind == "unreachable"
    assert "ws://127.0.0.1" in (result.error or "") and len(result.stereo) == 0


def test_the_pcm_protocol_carries_raw_frames_and_refuses_an_odd_length_frame() -> None:
    received: list[bytes] = []
    opened: list[dict[str, Any]] = []

    async def agent(ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                received.append(message)
                if len(received) == 10:
                    t = np.arange(4800) / 16000  # 0.3 s at the stream's 16 kHz
                    await ws.send((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes())
                if len(received) == 60:
                    await ws.send(b"\x00\x01\x02")
            else:
                opened.append(json.loads(message))

    result = asyncio.run(_call(agent, ["Hello."], protocol=PcmWebSocketProtocol(16000)))
    assert opened[0]["type"] == "start" and opened[0]["sample_rate"] == 16000
    assert {len(frame) for frame in received} == {640}  # 20 ms of 16-bit PCM at 16 kHz
    assert result.error_kind == "malformed_reply" and "3 bytes" in (result.error or "")
    # The agent's 0.3 s at 16 kHz was played at the simulator's 8 kHz clock: 0.3 s long.
    voiced = np.flatnonzero(np.abs(result.stereo[:, 1].astype(np.int32)) > 1000)
    assert abs((voiced[-1] - voiced[0]) / SAMPLE_RATE - 0.3) < 0.03


def test_a_frame_twilio_would_refuse_is_a_protocol_violation() -> None:
    protocol = TwilioProtocol()
    with pytest.raises(ProtocolViolation, match="not valid base64"):
        protocol.parse(json.dumps({"event": "media", "media": {"payload": "%%%"}}))
    with pytest.raises(ProtocolViolation, match="unknown event 'hello'"):
        protocol.parse(json.dumps({"event": "hello"}))
    with pytest.raises(ProtocolViolation, match="binary frame"):
        protocol.parse(b"\x00")
    (audio,) = protocol.parse(media("MZ1", tone(0.04)))
    assert len(decode_ulaw(encode_ulaw(tone(0.04)))) == len(audio.pcm)  # type: ignore[union-attr]


LONG = (
    "Thanks for calling the clinic. We are open from eight until six on weekdays, and on Saturday mornings."
)


def _talker(received: list[tuple[float, dict[str, Any]]]) -> Handler:
    """An agent that says one long line, then hangs up once the caller has answered it."""

    async def talk(ws: ServerConnection, sid: str) -> None:
        speech = render_speech(LONG)
        for start in range(0, len(speech), FRAME_SAMPLES):
            await ws.send(media(sid, speech[start : start + FRAME_SAMPLES]))

    async def agent(ws: ServerConnection) -> None:
        tasks = []
        async for message in ws:
            body = json.loads(message)
            received.append((time.monotonic(), body))
            if body["event"] == "start":
                tasks.append(asyncio.ensure_future(talk(ws, body["start"]["streamSid"])))
            if sum(1 for _, b in received if b["event"] == "media") > 50 * 9:
                await ws.close(1000, "goodbye")
                return

    return agent


def test_backchannels_are_said_while_the_agent_talks_and_are_not_turns() -> None:
    persona = Persona(id="listener", backchannel_every_s=1.5)
    received: list[tuple[float, dict[str, Any]]] = []
    result = asyncio.run(_call(_talker(received), ["Thanks."], conditions=conditions_for(persona, seed=1)))
    kinds = [u.kind for u in result.utterances]
    assert kinds.count("backchannel") >= 2 and "line" in kinds
    assert all(u.barge_in for u in result.utterances if u.kind == "backchannel")
    assert "mm-hmm" not in [line.text for line in result.lines]
    audio = load_recording(wav_bytes(result), channel_map={0: Role.USER, 1: Role.AGENT})
    metrics = {m.metric: m.value for m in analyze_audio(audio, call_id="b").metrics}
    assert metrics[BACKCHANNELS] is not None and metrics[BACKCHANNELS] >= 2
    assert metrics[USER_INTERRUPTIONS] == 0


def test_network_impairment_loses_and_delays_frames_both_ways() -> None:
    persona = Persona(id="lossy", network={"loss_pct": 20, "burst_frames": 2, "jitter_ms": 60})
    received: list[tuple[float, dict[str, Any]]] = []
    result = asyncio.run(_call(_talker(received), ["Thanks."], conditions=conditions_for(persona, seed=3)))
    frames = [(at, body) for at, body in received if body["event"] == "media"]
    chunks = [int(body["media"]["chunk"]) for _, body in frames]
    assert chunks == sorted(chunks)  # delayed, never reordered
    sent = len(frames) + result.frames_lost
    assert 0.12 < result.frames_lost / sent < 0.28
    assert len(set(range(1, max(chunks) + 1)) - set(chunks)) >= result.frames_lost - 2
    gaps = np.diff([at for at, _ in frames])
    assert float(np.percentile(gaps, 99)) > 0.05  # jitter and loss show on the agent's clock
    # The agent's speech arrives with holes: about a fifth of its frames are silent in the recording.
    agent_track = result.stereo[:, 1]
    speech = render_speech(LONG)
    start = (
        int(np.flatnonzero(np.abs(agent_track.astype(np.int32)) > 500)[0]) // FRAME_SAMPLES * FRAME_SAMPLES
    )
    played = agent_track[start : start + len(speech) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(
        -1, FRAME_SAMPLES
    )
    silent = float(np.mean(~played.any(axis=1)))
    assert 0.1 < silent < 0.35, silent


def test_a_tls_error_is_an_errored_call() -> None:
    async def run() -> VoiceCallResult:
        async with serve(lambda ws: asyncio.sleep(1), "127.0.0.1", 0) as server:
            # A plain WebSocket server: the TLS handshake fails.
            return await _dial(f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}/twilio")

    result = asyncio.run(run())
    assert result.error_kind == "unreachable" and "wss://127.0.0.1" in (result.error or "")


def test_a_persona_whose_noise_cannot_be_used_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    cases = {
        "file:missing.wav:10": "missing.wav",
        f"file:{tmp_path / 'broken.wav'}:10": "broken.wav",
        "pink:90": "SNR",
        "hail:10": "unknown noise kind 'hail'",
    }
    for noise, expected in cases.items():
        folder = tmp_path / noise.replace("/", "_").replace(":", "_")
        folder.mkdir()
        (folder / "personas.yaml").write_text(f"kind: persona\nid: noisy\nbackground_noise: '{noise}'\n")
        with pytest.raises(DefinitionError) as caught:
            load_definitions([folder])
        message = str(caught.value)
        assert "personas.yaml:3" in message and "background_noise" in message and expected in message, message
