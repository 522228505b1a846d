"""A persona that barges in at a keyword: the caller's ears (the bundled Whisper model) hear the agent's
turn as it goes, and the caller cuts in once the word has been said, not before and not at the end."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from convoscope.simulate.callers import ScriptedCaller
from convoscope.simulate.definitions import Persona, Script
from convoscope.simulate.voice.codec import FRAME_SAMPLES, SAMPLE_RATE, encode_ulaw
from convoscope.simulate.voice.connector import new_call_info
from convoscope.simulate.voice.conversation import conditions_for
from convoscope.simulate.voice.session import VoiceCallResult, run_voice_call
from convoscope.simulate.voice.speech import VoiceSpec, render_speech
from convoscope.simulate.voice.stt import SttUnavailable, WhisperTranscriber
from convoscope.simulate.voice.twilio import TwilioProtocol

BEFORE = "Thanks for calling the dental clinic. Our first free"
AFTER = "appointment is on Tuesday morning at nine, and after that we have Wednesday afternoon and Friday."
AGENT_VOICE = VoiceSpec(voice="en-us", rate_wpm=150)


async def _agent(ws: ServerConnection) -> None:
    speech = render_speech(f"{BEFORE} {AFTER}", AGENT_VOICE)
    async for message in ws:
        body = json.loads(message)
        if body["event"] == "start":
            sid = body["start"]["streamSid"]
            for i in range(0, len(speech), FRAME_SAMPLES):
                payload = base64.b64encode(encode_ulaw(speech[i : i + FRAME_SAMPLES])).decode()
                await ws.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": payload}}))


def test_the_caller_barges_in_once_it_hears_the_keyword() -> None:
    try:
        whisper = WhisperTranscriber(hotwords="appointment")  # as a run primes it with its personas' keywords
        whisper.load()
    except SttUnavailable as exc:  # the asr extra is part of the test install; say so if it is not
        pytest.fail(f"the asr extra is needed: {exc}")
    persona = Persona(id="eager", barge_in_keyword="appointment", patience_s=3.0)

    async def run() -> VoiceCallResult:
        async with serve(_agent, "127.0.0.1", 0) as server:
            return await run_voice_call(
                f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}",
                TwilioProtocol(),
                ScriptedCaller(Script(lines=["Yes, I need one."], closing=None)),
                conditions_for(persona, seed=0),
                new_call_info({}),
                transcribe=whisper.transcribe,
            )

    result = asyncio.run(run())
    (barge,) = [u for u in result.utterances if u.kind == "line"]
    assert barge.barge_in and barge.text == "Yes, I need one."
    said_before = len(render_speech(BEFORE, AGENT_VOICE)) / SAMPLE_RATE
    whole = len(render_speech(f"{BEFORE} {AFTER}", AGENT_VOICE)) / SAMPLE_RATE
    started = result.first_audio_s or 0.0
    # Not before the word was said, and while the agent was still saying its line.
    assert started + said_before < barge.start_s < started + whole, (barge.start_s, said_before, whole)
