"""A voice run with the caller's voice and ears on configured endpoints (OpenAI's speech protocols).

One loopback server speaks both ``/audio/speech`` (a tone as long as the text, as a WAV file) and
``/audio/transcriptions`` (a fixed line); the settings point the run at it. The caller's channel of the
recording must carry the endpoint's audio, and a scripted caller must branch on what its ears heard.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.server import ServerConnection, serve

from convoscope.config import Settings
from convoscope.simulate.connectors.registry import connector_from_config
from convoscope.simulate.definitions import AgentSpec, Definitions, Scenario, Script, ScriptReply, Suite
from convoscope.simulate.runner import run_suite
from convoscope.simulate.voice.codec import FRAME_SAMPLES, SAMPLE_RATE, encode_ulaw
from convoscope.simulate.voice.io import voice_io
from convoscope.simulate.voice.speech import render_speech
from convoscope.testing.http_server import serve_http

TONE_HZ = 700.0
HEARD = "We have Tuesday at nine open."


class _Endpoints(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Endpoints.requests.append(self.path)
        if self.path == "/v1/audio/speech":
            text = json.loads(body)["input"]
            t = np.arange(int(0.06 * len(text) * 24000)) / 24000
            out = io.BytesIO()
            sf.write(out, 0.4 * np.sin(2 * np.pi * TONE_HZ * t), 24000, format="WAV", subtype="PCM_16")
            self._answer(out.getvalue(), "audio/wav")
        elif self.path == "/v1/audio/transcriptions":
            self._answer(json.dumps({"text": HEARD}).encode(), "application/json")
        else:
            self.send_error(404)

    def _answer(self, data: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def endpoints() -> Iterator[str]:
    with serve_http(_Endpoints) as url:
        yield f"{url}/v1"


async def _agent(ws: ServerConnection) -> None:
    """Says one line, then hangs up once the caller has answered twice."""
    speech = render_speech("Which day would suit you?")
    answered = 0
    async for message in ws:
        body = json.loads(message)
        if body["event"] == "start":
            sid = body["start"]["streamSid"]
            for i in range(0, len(speech), FRAME_SAMPLES):
                payload = encode_ulaw(speech[i : i + FRAME_SAMPLES])
                await ws.send(
                    json.dumps({"event": "media", "streamSid": sid, "media": {"payload": _b64(payload)}})
                )
        elif body["event"] == "media":
            answered += 1
            if answered > 50 * 9:
                await ws.close(1000, "goodbye")
                return


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_the_caller_speaks_and_hears_through_the_configured_endpoints(endpoints: str) -> None:
    settings = Settings(voice_tts_base_url=endpoints, voice_stt_base_url=endpoints)
    scenario = Scenario(
        id="s",
        goal="g",
        script=Script(
            lines=["Any day is fine."],
            replies=[ScriptReply(when="tuesday", say="Tuesday it is.")],
            closing=None,
        ),
    )
    suite = Suite(id="voice", scenarios=["s"], metrics=[])
    blobs: dict[str, bytes] = {}

    def store(data: bytes) -> str:
        blobs[hashlib.sha256(data).hexdigest()] = data
        return hashlib.sha256(data).hexdigest()

    async def run() -> Any:
        async with serve(_agent, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            spec = AgentSpec(id="a", connector={"kind": "twilio", "url": url})
            return await run_suite(
                Definitions(scenarios={"s": scenario}, suites={"voice": suite}),
                suite,
                spec,
                connector_from_config("twilio", {"url": url}),
                scorer=lambda call: [],
                store_audio=store,
                **voice_io(settings),
            )

    (result,) = asyncio.run(run()).results
    call = result.outcome.call
    # The ears heard the agent (the STT endpoint's line), and the script branched on "tuesday".
    assert [t.text for t in call.turns] == [HEARD, "Tuesday it is."]
    assert "/v1/audio/transcriptions" in _Endpoints.requests and "/v1/audio/speech" in _Endpoints.requests
    # The caller's channel carries the TTS endpoint's tone, for as long as the endpoint made it.
    data, rate = sf.read(io.BytesIO(next(iter(blobs.values()))), dtype="int16")
    user = next(t for t in call.turns if t.role == "user")
    start = round(user.start_s * rate)
    said = data[start : round(user.end_s * rate), 0].astype(np.float64)
    assert abs((user.end_s - user.start_s) - 0.06 * len("Tuesday it is.")) < 0.03
    spectrum = np.abs(np.fft.rfft(said))
    assert abs(np.fft.rfftfreq(len(said), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))] - TONE_HZ) < 10
