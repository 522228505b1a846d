"""Speech recognition of telephone audio: real Whisper on espeak-ng speech that went through μ-law and
back, and the HTTP recogniser against a real loopback server speaking OpenAI's transcription protocol."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import soxr
from pydantic import SecretStr

from convoscope.errors import AudioFormatError, ConvoscopeError
from convoscope.simulate.voice.codec import SAMPLE_RATE, Pcm, decode_ulaw, encode_ulaw
from convoscope.simulate.voice.speech import render_speech
from convoscope.simulate.voice.stt import (
    HttpTranscriber,
    SttError,
    SttUnavailable,
    Transcriber,
    WhisperTranscriber,
    atranscribe,
    normalise,
    transcriber_for,
)
from convoscope.testing.http_server import serve_http

APPOINTMENT = "I would like to book an appointment for Tuesday"


def telephone(text: str) -> Pcm:
    """``text`` as a caller on the phone network sounds: espeak-ng at 8 kHz, μ-law encoded and decoded."""
    return decode_ulaw(encode_ulaw(render_speech(text)))


def words(text: str) -> list[str]:
    return normalise(text).split()


# --- Whisper ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    transcriber = WhisperTranscriber(cpu_threads=2)
    transcriber.load()
    return transcriber


def test_whisper_hears_a_sentence_through_the_telephone_band(whisper: WhisperTranscriber) -> None:
    heard = words(whisper.transcribe(telephone(APPOINTMENT)))
    assert {"like", "appointment", "tuesday"} <= set(heard), heard


def test_whisper_hears_a_two_word_reply(whisper: WhisperTranscriber) -> None:
    heard = words(whisper.transcribe(telephone("Yes please")))
    assert heard[:1] == ["yes"], heard
    assert len(heard) <= 3, heard


def test_whisper_takes_16_khz_audio_as_it_is(whisper: WhisperTranscriber) -> None:
    pcm = telephone(APPOINTMENT)
    wide = soxr.resample(pcm.astype(np.float32) / 32768.0, SAMPLE_RATE, 16000)
    pcm16 = np.clip(np.round(wide * 32767.0), -32768, 32767).astype(np.int16)
    heard = words(whisper.transcribe(pcm16, sample_rate=16000))
    assert {"appointment", "tuesday"} <= set(heard), heard


def test_hotwords_steer_whisper_to_the_keyword_a_caller_listens_for(whisper: WhisperTranscriber) -> None:
    hinted = WhisperTranscriber(cpu_threads=whisper.cpu_threads, hotwords="cancel billing human")
    assert "cancel" in words(hinted.transcribe(telephone("Cancel it")))


def test_silence_is_heard_as_nothing(whisper: WhisperTranscriber) -> None:
    assert whisper.transcribe(np.zeros(SAMPLE_RATE, dtype=np.int16)) == ""
    assert whisper.transcribe(np.zeros(0, dtype=np.int16)) == ""
    # An idle telephone line: the μ-law silence byte, decoded.
    assert whisper.transcribe(decode_ulaw(b"\xff" * SAMPLE_RATE)) == ""
    # Line noise loud enough to reach the model must not become a sentence.
    noise = np.random.default_rng(7).normal(0.0, 60.0, 2 * SAMPLE_RATE).astype(np.int16)
    assert len(words(whisper.transcribe(decode_ulaw(encode_ulaw(noise))))) <= 2


def test_concurrent_callers_share_the_model_from_worker_threads(whisper: WhisperTranscriber) -> None:
    other = WhisperTranscriber(cpu_threads=whisper.cpu_threads)

    async def both() -> list[str]:
        return await asyncio.gather(
            atranscribe(whisper, telephone(APPOINTMENT)),
            atranscribe(other, telephone("No thanks")),
        )

    sentence, reply = asyncio.run(both())
    assert {"appointment", "tuesday"} <= set(words(sentence)), sentence
    assert "no" in words(reply), reply


def test_a_missing_model_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    transcriber = WhisperTranscriber(model_dir=tmp_path / "nowhere")
    with pytest.raises(SttUnavailable, match="nowhere"):
        transcriber.load()
    with pytest.raises(SttUnavailable):
        transcriber.transcribe(telephone("Hello"))


@pytest.mark.parametrize(
    ("pcm", "rate", "match"),
    [
        (np.zeros((SAMPLE_RATE, 2), dtype=np.int16), SAMPLE_RATE, "mono"),
        (np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, "int16"),
        (np.zeros(SAMPLE_RATE, dtype=np.int16), 0, "sample rate"),
    ],
)
def test_audio_of_the_wrong_shape_is_refused(pcm: Pcm, rate: int, match: str) -> None:
    with pytest.raises(AudioFormatError, match=match):
        WhisperTranscriber().transcribe(pcm, rate)
    with HttpTranscriber("http://127.0.0.1:9") as remote, pytest.raises(AudioFormatError, match=match):
        remote.transcribe(pcm, rate)


# --- HTTP (OpenAI-compatible) ---------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    authorization: str | None
    fields: dict[str, str]
    filename: str | None
    channels: int
    sample_width: int
    frame_rate: int
    samples: Pcm


@dataclass
class TranscriptionServer:
    """A loopback ``/audio/transcriptions`` that checks what it is sent and answers as told."""

    base_url: str = ""
    reply_status: int = 200
    reply_body: bytes = b'{"text": "  I heard you.  "}'
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)


def _handler(server: TranscriptionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
            assert message.is_multipart()
            fields: dict[str, str] = {}
            wav_bytes, filename = b"", None
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if name == "file":
                    wav_bytes, filename = payload, part.get_filename()
                else:
                    fields[str(name)] = payload.decode()
            with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
                received = Received(
                    path=self.path,
                    authorization=self.headers.get("Authorization"),
                    fields=fields,
                    filename=filename,
                    channels=wav.getnchannels(),
                    sample_width=wav.getsampwidth(),
                    frame_rate=wav.getframerate(),
                    samples=np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16),
                )
            server.received.append(received)
            time.sleep(server.delay_s)
            try:
                self.send_response(server.reply_status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.reply_body)))
                self.end_headers()
                self.wfile.write(server.reply_body)
            except OSError:
                pass  # the client gave up (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def stt_server() -> Iterator[TranscriptionServer]:
    state = TranscriptionServer()
    with serve_http(_handler(state)) as url:
        state.base_url = f"{url}/v1/"
        yield state


def test_http_sends_a_wav_of_the_utterance_and_returns_the_text(stt_server: TranscriptionServer) -> None:
    pcm = telephone(APPOINTMENT)
    with HttpTranscriber(stt_server.base_url, api_key="sk-test", model="whisper-large") as transcriber:
        assert transcriber.transcribe(pcm) == "I heard you."
    [got] = stt_server.received
    assert got.path == "/v1/audio/transcriptions"
    assert got.authorization == "Bearer sk-test"
    assert got.fields == {"model": "whisper-large", "response_format": "json", "language": "en"}
    assert got.filename is not None and got.filename.endswith(".wav")
    assert (got.channels, got.sample_width, got.frame_rate) == (1, 2, SAMPLE_RATE)
    assert got.samples.size / got.frame_rate == pytest.approx(pcm.size / SAMPLE_RATE)
    assert np.array_equal(got.samples, pcm)


def test_http_defaults_and_other_sample_rates(stt_server: TranscriptionServer) -> None:
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(24000) / 16000)).astype(np.int16)
    with HttpTranscriber(stt_server.base_url, api_key=SecretStr("sk-secret"), language=None) as transcriber:
        transcriber.transcribe(tone, sample_rate=16000)
    [got] = stt_server.received
    assert got.authorization == "Bearer sk-secret"
    assert got.fields == {"model": "whisper-1", "response_format": "json"}
    assert got.frame_rate == 16000
    assert got.samples.size / got.frame_rate == pytest.approx(1.5)


def test_http_sends_nothing_for_silence(stt_server: TranscriptionServer) -> None:
    with HttpTranscriber(stt_server.base_url) as transcriber:
        assert transcriber.transcribe(np.zeros(SAMPLE_RATE, dtype=np.int16)) == ""
    assert stt_server.received == []


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (500, b'{"error": {"message": "model overloaded"}}', r"HTTP 500: .*model overloaded"),
        (401, b'{"error": "bad key"}', r"HTTP 401"),
        (200, b"<html>gateway says hi</html>", r"HTTP 200 with a body that is not JSON: <html>gateway"),
        (200, b'{"transcript": "hi"}', r"HTTP 200 without a text field"),
        (200, b'["hi"]', r"without a text field"),
        (200, b'{"text": null}', r"without a text field"),
    ],
)
def test_http_failures_name_the_url_and_status(
    stt_server: TranscriptionServer, status: int, body: bytes, match: str
) -> None:
    stt_server.reply_status, stt_server.reply_body = status, body
    with HttpTranscriber(stt_server.base_url, api_key="sk-do-not-leak") as transcriber:
        with pytest.raises(SttError, match=match) as failure:
            transcriber.transcribe(telephone("Hello"))
    message = str(failure.value)
    assert "http://127.0.0.1:" in message and "/v1/audio/transcriptions" in message
    assert "sk-do-not-leak" not in message


def test_http_connection_refused_is_an_stt_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with HttpTranscriber(f"http://127.0.0.1:{port}") as transcriber:
        with pytest.raises(SttError, match=rf"127\.0\.0\.1:{port}/audio/transcriptions failed: ConnectError"):
            transcriber.transcribe(telephone("Hello"))


def test_http_slow_answer_times_out(stt_server: TranscriptionServer) -> None:
    stt_server.delay_s = 1.0
    with HttpTranscriber(stt_server.base_url, timeout_s=0.2) as transcriber:
        started = time.monotonic()
        with pytest.raises(SttError, match="Timeout"):
            transcriber.transcribe(telephone("Hello"))
    assert time.monotonic() - started < 0.9


# --- choosing a recogniser ------------------------------------------------------------------------------


def test_transcriber_for_picks_the_configured_recogniser(tmp_path: Path) -> None:
    default = transcriber_for(None)
    assert isinstance(default, WhisperTranscriber) and isinstance(default, Transcriber)
    local = transcriber_for(" Whisper ", model=str(tmp_path))
    assert isinstance(local, WhisperTranscriber) and local.model_dir == tmp_path
    remote = transcriber_for("http", base_url="http://asr.local/v1/", api_key="k")
    assert isinstance(remote, HttpTranscriber) and isinstance(remote, Transcriber)
    assert (remote.url, remote.model) == ("http://asr.local/v1/audio/transcriptions", "whisper-1")
    remote.close()
    named = transcriber_for("HTTP", base_url="http://asr.local", model="distil-large-v3")
    assert isinstance(named, HttpTranscriber) and named.model == "distil-large-v3"
    named.close()


@pytest.mark.parametrize(
    ("kind", "options", "match"),
    [
        ("vosk", {}, "unknown speech recogniser 'vosk'"),
        ("http", {}, "needs a base_url"),
        ("whisper", {"base_url": "http://asr.local"}, "apply to the http recogniser"),
        (None, {"api_key": "k"}, "apply to the http recogniser"),
    ],
)
def test_transcriber_for_refuses_what_it_cannot_honour(
    kind: str | None, options: dict[str, str], match: str
) -> None:
    with pytest.raises(SttError, match=match) as failure:
        transcriber_for(kind, **options)
    assert isinstance(failure.value, ConvoscopeError)


# --- normalise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            " I would like to book an appointment for Tuesday.",
            "i would like to book an appointment for tuesday",
        ),
        ("Yes, please!", "yes please"),
        ("  Hello,   WORLD?? ", "hello world"),
        ("I'd like to speak—to a human.", "id like to speak to a human"),
        ("Don\u2019t cancel my e-mail.", "dont cancel my e mail"),
        ("Meet at 10:30, or 4.5; pay $1,000.", "meet at 10:30 or 4.5 pay 1,000"),
        ("four five six", "four five six"),
        ("\u00bfQu\u00e9? \uff21\uff22\uff23", "qué abc"),
        ("...", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_normalise_is_idempotent() -> None:
    once = normalise("Okay -- it's 3.30, Tuesday... (maybe).")
    assert once == "okay its 3.30 tuesday maybe"
    assert normalise(once) == once
