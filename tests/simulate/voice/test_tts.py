"""The caller's voice through an OpenAI-compatible ``/audio/speech`` endpoint: a real loopback server that
speaks with espeak-ng at a TTS server's rates and formats, so the 8 kHz audio that comes back can be
compared with espeak-ng's own render of the same line."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from pydantic import SecretStr

from convoscope.errors import ConvoscopeError
from convoscope.simulate.voice.codec import SAMPLE_RATE, Pcm
from convoscope.simulate.voice.speech import PACE_WPM, SpeechError, VoiceSpec, render_speech
from convoscope.simulate.voice.tts import (
    EspeakSpeaker,
    HttpSpeaker,
    Speaker,
    aspeak,
    speaker_for,
    speed_for,
)
from convoscope.testing.http_server import serve_http

LINE = "I would like to move my appointment to Tuesday afternoon, please."
OPENAI_VOICES = {"alloy": "en-us", "nova": "en-us+f3"}
"""The server's own voice names, as an OpenAI-compatible server has them, each backed by an espeak voice."""


# --- a loopback /audio/speech ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class SpeechServer:
    """A loopback ``/audio/speech`` that speaks with espeak-ng, or answers what it is told to instead.

    ``wav_style`` picks how a WAV is sent: ``"espeak"`` is espeak-ng's own streamed file (22,050 Hz mono,
    a placeholder length in its header, as streaming servers send), ``"stereo"`` a 24 kHz two-channel
    float WAV. ``pcm_rate`` is the rate raw PCM is sent at.
    """

    base_url: str = ""
    wav_style: str = "espeak"
    pcm_rate: int = 24000
    delay_s: float = 0.0
    reply: tuple[int, str, bytes] | None = None
    """(status, content type, body) to answer instead of speaking."""
    received: list[Received] = field(default_factory=list)


def espeak_wav(text: str, voice: str, rate_wpm: int) -> bytes:
    done = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(rate_wpm), "--", text],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 or done.stderr.strip():
        raise LookupError(done.stderr.decode("utf-8", "replace").strip() or "espeak-ng failed")
    return done.stdout


def _speak(state: SpeechServer, request: dict[str, Any]) -> tuple[int, str, bytes]:
    voice = OPENAI_VOICES.get(request["voice"], request["voice"])
    rate_wpm = round(float(request.get("speed", 1.0)) * PACE_WPM["normal"])
    try:
        wav = espeak_wav(request["input"], voice, rate_wpm)
    except LookupError as exc:
        error = {"error": {"message": f"voice {request['voice']!r} is not available: {exc}"}}
        return 400, "application/json", json.dumps(error).encode()
    if request["response_format"] == "wav" and state.wav_style == "espeak":
        return 200, "audio/wav", wav
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    if request["response_format"] == "pcm":
        wide = soxr.resample(samples, rate, state.pcm_rate, quality="HQ")
        pcm = np.clip(np.round(wide * 32767.0), -32768, 32767).astype("<i2")
        return 200, "audio/pcm", pcm.tobytes()
    wide = soxr.resample(samples, rate, 24000, quality="HQ")
    stereo = np.stack([wide, wide * 0.5], axis=1)
    out = io.BytesIO()
    sf.write(out, stereo, 24000, format="WAV", subtype="FLOAT")
    return 200, "audio/wav", out.getvalue()


def _handler(state: SpeechServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append(Received(self.path, self.headers.get("Authorization"), request))
            time.sleep(state.delay_s)
            if self.path != "/v1/audio/speech":
                status, content_type, body = 404, "application/json", b'{"error": {"message": "no route"}}'
            else:
                status, content_type, body = state.reply or _speak(state, request)
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def tts_server() -> Iterator[SpeechServer]:
    state = SpeechServer()
    with serve_http(_handler(state)) as url:
        state.base_url = f"{url}/v1/"
        yield state


def seconds(pcm: Pcm) -> float:
    return pcm.size / SAMPLE_RATE


def assert_sounds_like_espeak(pcm: Pcm, text: str, voice: VoiceSpec) -> None:
    """8 kHz int16 speech as long as espeak-ng's own render of ``text`` (within 50 ms), and not silent."""
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    expected = render_speech(text, voice)
    assert abs(seconds(pcm) - seconds(expected)) <= 0.05, (seconds(pcm), seconds(expected))
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    assert rms > 500, rms
    # Trimmed as espeak-ng's render is: sound right at both ends.
    assert abs(int(pcm[0])) > 64 and abs(int(pcm[-1])) > 64


# --- HttpSpeaker ----------------------------------------------------------------------------------------


def test_wav_speech_is_requested_as_openai_does_and_comes_back_at_8_khz(tts_server: SpeechServer) -> None:
    voice = VoiceSpec(voice="en-gb", rate_wpm=PACE_WPM["fast"])
    with HttpSpeaker(tts_server.base_url, api_key="sk-test", model="tts-1-hd") as speaker:
        pcm = speaker.speak(LINE, voice)
    [got] = tts_server.received
    assert got.path == "/v1/audio/speech"
    assert got.authorization == "Bearer sk-test"
    assert got.body == {
        "model": "tts-1-hd",
        "input": LINE,
        "voice": "en-gb",
        "response_format": "wav",
        "speed": pytest.approx(210 / 165, abs=1e-3),
    }
    assert_sounds_like_espeak(pcm, LINE, voice)


def test_raw_pcm_at_24_khz_with_the_endpoints_own_voice(tts_server: SpeechServer) -> None:
    speaker = HttpSpeaker(
        tts_server.base_url, api_key=SecretStr("sk-secret"), voice="nova", response_format="pcm"
    )
    with speaker:
        pcm = speaker.speak(LINE, VoiceSpec(voice="en-gb-scotland", rate_wpm=PACE_WPM["slow"]))
    [got] = tts_server.received
    assert got.authorization == "Bearer sk-secret"
    assert got.body["voice"] == "nova" and got.body["model"] == "tts-1"
    assert got.body["response_format"] == "pcm"
    assert got.body["speed"] == pytest.approx(130 / 165, abs=1e-3)
    assert_sounds_like_espeak(pcm, LINE, VoiceSpec(voice="en-us+f3", rate_wpm=PACE_WPM["slow"]))


def test_stereo_float_wav_and_other_pcm_rates_are_decoded(tts_server: SpeechServer) -> None:
    voice = VoiceSpec()
    tts_server.wav_style = "stereo"
    with HttpSpeaker(tts_server.base_url, voice="alloy") as speaker:
        assert_sounds_like_espeak(speaker.speak(LINE, voice), LINE, voice)
    tts_server.pcm_rate = 16000
    with HttpSpeaker(tts_server.base_url, voice="alloy", response_format="pcm", pcm_rate=16000) as speaker:
        assert_sounds_like_espeak(speaker.speak(LINE, voice), LINE, voice)
    assert [r.authorization for r in tts_server.received] == [None, None]


def test_a_line_is_rendered_once_per_voice_and_speed(tts_server: SpeechServer) -> None:
    with HttpSpeaker(tts_server.base_url, voice="alloy") as speaker:
        first = speaker.speak(LINE, VoiceSpec())
        again = speaker.speak(LINE, VoiceSpec(pitch=80))  # pitch never reaches the endpoint
        assert len(tts_server.received) == 1
        assert np.array_equal(first, again)
        with pytest.raises(ValueError):
            first[0] = 0  # the cached render cannot be edited through what a caller holds
        speaker.speak(LINE, VoiceSpec(rate_wpm=PACE_WPM["slow"]))
        speaker.speak("Yes please.", VoiceSpec())
        assert len(tts_server.received) == 3
        assert speaker.speak("   ", VoiceSpec()).size == 0
        assert len(tts_server.received) == 3  # nothing to say is not sent


def test_the_cache_is_bounded_least_recently_used_first(tts_server: SpeechServer) -> None:
    with HttpSpeaker(tts_server.base_url, voice="alloy", cache_size=2) as speaker:
        for text in ("One.", "Two.", "One.", "Three.", "One.", "Two."):
            speaker.speak(text, VoiceSpec())
    assert [r.body["input"] for r in tts_server.received] == ["One.", "Two.", "Three.", "Two."]


def test_speed_follows_the_persona_pace_within_openais_range() -> None:
    assert speed_for(VoiceSpec()) == 1.0
    assert speed_for(VoiceSpec(rate_wpm=330)) == 2.0
    assert speed_for(VoiceSpec(rate_wpm=10)) == 0.25
    assert speed_for(VoiceSpec(rate_wpm=5000)) == 4.0


def test_aspeak_renders_in_a_worker_thread(tts_server: SpeechServer) -> None:
    with HttpSpeaker(tts_server.base_url, voice="alloy") as speaker:
        pcm = asyncio.run(aspeak(speaker, LINE, VoiceSpec()))
    assert_sounds_like_espeak(pcm, LINE, VoiceSpec())


# --- failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response_format", "reply", "match"),
    [
        (
            "wav",
            (500, "application/json", b'{"error": {"message": "The server is overloaded", "type": "x"}}'),
            r"answered HTTP 500: The server is overloaded$",
        ),
        (
            "wav",
            (
                401,
                "application/json",
                b'{"error": {"message": "Incorrect API key provided: sk-do-not-leak"}}',
            ),
            r"answered HTTP 401: Incorrect API key provided",
        ),
        ("wav", (502, "text/html", b"<html><h1>Bad gateway</h1></html>"), r"HTTP 502: <html><h1>Bad gateway"),
        (
            "wav",
            (200, "text/html", b"<html>hello from the proxy</html>"),
            r"text/html, not audio: <html>hello",
        ),
        ("pcm", (200, "application/json", b'{"audio": "..."}'), r"application/json, not audio"),
        (
            "wav",
            (200, "audio/wav", b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(40))),
            r"not audio \(56 bytes, audio/wav\): starts with b'RIFF\\x00",
        ),
        (
            "wav",
            (200, "audio/wav", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"),
            r"not audio.*starts with",
        ),
        ("wav", (200, "audio/wav", b""), r"HTTP 200 with an empty body"),
        ("pcm", (200, "audio/pcm", b""), r"HTTP 200 with an empty body"),
        ("pcm", (200, "audio/pcm", b"\x01\x02\x03"), r"3 bytes, an odd length that is not 16-bit PCM"),
        ("pcm", (200, "audio/pcm", bytes(4800)), r"HTTP 200 with 0\.10 s of silence"),
    ],
)
def test_failures_are_speech_errors_naming_the_url(
    tts_server: SpeechServer, response_format: str, reply: tuple[int, str, bytes], match: str
) -> None:
    tts_server.reply = reply
    speaker = HttpSpeaker(
        tts_server.base_url, "sk-do-not-leak", voice="alloy", response_format=response_format
    )
    with speaker, pytest.raises(SpeechError, match=match) as failure:
        speaker.speak(LINE, VoiceSpec())
    message = str(failure.value)
    assert "http://127.0.0.1:" in message and "/v1/audio/speech" in message
    assert isinstance(failure.value, ConvoscopeError)
    assert "sk-do-not-leak" not in message  # not even where the server echoes it back


def test_an_unknown_voice_is_the_endpoints_own_message(tts_server: SpeechServer) -> None:
    with HttpSpeaker(tts_server.base_url) as speaker, pytest.raises(SpeechError) as failure:
        speaker.speak(LINE, VoiceSpec(voice="xx-nowhere"))
    assert "answered HTTP 400: voice 'xx-nowhere' is not available" in str(failure.value)


def test_a_failed_render_is_not_cached(tts_server: SpeechServer) -> None:
    tts_server.reply = (503, "application/json", b'{"error": {"message": "warming up"}}')
    with HttpSpeaker(tts_server.base_url, voice="alloy") as speaker:
        with pytest.raises(SpeechError, match="warming up"):
            speaker.speak(LINE, VoiceSpec())
        tts_server.reply = None
        assert_sounds_like_espeak(speaker.speak(LINE, VoiceSpec()), LINE, VoiceSpec())
    assert len(tts_server.received) == 2


def test_connection_refused_is_a_speech_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpSpeaker(f"http://127.0.0.1:{port}", api_key="sk-do-not-leak") as speaker:
        with pytest.raises(
            SpeechError, match=rf"127\.0\.0\.1:{port}/audio/speech failed: ConnectError"
        ) as failure:
            speaker.speak(LINE, VoiceSpec())
    assert "sk-do-not-leak" not in str(failure.value)


def test_a_slow_answer_times_out(tts_server: SpeechServer) -> None:
    tts_server.delay_s = 1.0
    with HttpSpeaker(tts_server.base_url, timeout_s=0.2) as speaker:
        started = time.monotonic()
        with pytest.raises(SpeechError, match="/v1/audio/speech failed: ReadTimeout"):
            speaker.speak(LINE, VoiceSpec())
    assert time.monotonic() - started < 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": " "}, "needs a base URL"),
        ({"base_url": "http://tts.local", "response_format": "mp3"}, "unknown response_format 'mp3'"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SpeechError, match=match):
        HttpSpeaker(**kwargs)


# --- choosing a speaker ---------------------------------------------------------------------------------


def test_espeak_speaker_is_render_speech() -> None:
    speaker = EspeakSpeaker()
    voice = VoiceSpec(voice="en-us+f3", rate_wpm=PACE_WPM["slow"])
    assert isinstance(speaker, Speaker)
    assert np.array_equal(speaker.speak(LINE, voice), render_speech(LINE, voice))


def test_speaker_for_picks_the_configured_speaker() -> None:
    assert isinstance(speaker_for(None), EspeakSpeaker)
    assert isinstance(speaker_for(" eSpeak "), EspeakSpeaker)
    remote = speaker_for("HTTP", base_url="http://tts.local/v1/", api_key="k", model="kokoro", voice="af")
    assert isinstance(remote, HttpSpeaker) and isinstance(remote, Speaker)
    assert (remote.url, remote.model, remote.voice) == ("http://tts.local/v1/audio/speech", "kokoro", "af")
    remote.close()
    remote = speaker_for("http", base_url="http://tts.local")
    assert isinstance(remote, HttpSpeaker)
    assert (remote.model, remote.voice, remote.response_format) == ("tts-1", None, "wav")
    remote.close()


@pytest.mark.parametrize(
    ("kind", "options", "match"),
    [
        ("http", {}, "needs a base_url"),
        ("http", {"base_url": "  "}, "needs a base_url"),
        (None, {"base_url": "http://tts.local"}, "base_url apply to the http speaker, not espeak"),
        ("espeak", {"api_key": "k", "voice": "alloy"}, "api_key, voice apply to the http speaker"),
        ("espeak", {"model": "tts-1"}, "model apply to the http speaker"),
        ("elevenlabs", {}, "unknown speaker 'elevenlabs'; expected 'espeak' or 'http'"),
    ],
)
def test_speaker_for_refuses_what_it_cannot_honour(
    kind: str | None, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(SpeechError, match=match):
        speaker_for(kind, **options)
