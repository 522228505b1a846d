"""The caller's mouth: a line of text to 8 kHz telephone PCM, offline or through a TTS endpoint.

espeak-ng (:mod:`.speech`) is the default: offline, free and instant, but robotic, and an agent's
recogniser hears it unlike a human caller. A user who wants the agent to hear natural voices points the
simulator at any OpenAI-compatible ``POST {base_url}/audio/speech`` endpoint (OpenAI, a Kokoro or Piper
server, a gateway) instead. Both sit behind one small :class:`Speaker` interface, so the simulator never
cares which one it holds, and both return the same thing: mono 16-bit PCM at 8 kHz, trimmed of leading
and trailing near-silence so that the caller's turn-taking timings mean the same with either.

A remote voice costs money and round trips, so every render is cached per (text, voice, speed) in a
bounded LRU: a load test with hundreds of scripted callers saying the same lines pays for each line once,
and rendering every line before the first call starts keeps the endpoint's latency out of the calls.
Rendering is synchronous and network-bound; async callers use :func:`aspeak`, which runs it in a worker
thread so other calls' media pacing never stalls.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import json
import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

import httpx
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr  # type: ignore[import-untyped]
from pydantic import SecretStr

from .codec import SAMPLE_RATE, Pcm
from .speech import PACE_WPM, SpeechError, VoiceSpec, render_speech

__all__ = [
    "DEFAULT_HTTP_MODEL",
    "DEFAULT_PCM_RATE",
    "EspeakSpeaker",
    "HttpSpeaker",
    "Speaker",
    "aspeak",
    "speaker_for",
    "speed_for",
]

DEFAULT_HTTP_MODEL = "tts-1"
"""The model an OpenAI-compatible endpoint is asked for when none is named."""
DEFAULT_PCM_RATE = 24000
"""OpenAI's ``pcm`` format: raw 16-bit little-endian mono at 24 kHz."""
MIN_SPEED, MAX_SPEED = 0.25, 4.0
"""The ``speed`` range OpenAI accepts; anything outside is a 400, so it is clamped before sending."""

_RESPONSE_FORMATS = ("wav", "pcm")
_SILENCE_FLOOR = 64
"""Samples at or below this magnitude count as silence when trimming, as in :mod:`.speech`."""
_ERROR_EXCERPT_CHARS = 200

_Samples = npt.NDArray[np.float32]


@runtime_checkable
class Speaker(Protocol):
    """Anything that speaks a caller's line as 8 kHz 16-bit mono PCM.

    Synchronous on purpose: synthesis is CPU- or network-bound, and a blocking call is the simplest thing
    to run in a worker thread (see :func:`aspeak`).
    """

    def speak(self, text: str, voice: VoiceSpec) -> Pcm:
        """``text`` spoken as ``voice`` describes, trimmed of leading and trailing silence."""
        ...


async def aspeak(speaker: Speaker, text: str, voice: VoiceSpec) -> Pcm:
    """:meth:`Speaker.speak` in a worker thread, so an event loop pacing other calls keeps running while
    a line is rendered (a remote voice can take a second or more)."""
    return await asyncio.to_thread(speaker.speak, text, voice)


class EspeakSpeaker:
    """espeak-ng, offline: :func:`.speech.render_speech` behind the :class:`Speaker` interface.

    The cache lives in :mod:`.speech` and is shared by every instance, so creating one per caller is free.
    """

    def speak(self, text: str, voice: VoiceSpec) -> Pcm:
        """``text`` as espeak-ng says it with ``voice``'s voice, rate, pitch and amplitude."""
        return render_speech(text, voice)

    def close(self) -> None:
        """Nothing to release; here so either speaker can be closed the same way."""

    def __enter__(self) -> EspeakSpeaker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def speed_for(voice: VoiceSpec) -> float:
    """The OpenAI ``speed`` for ``voice``'s rate: 1.0 is espeak-ng's normal pace, clamped to what the
    protocol accepts, so a slow or fast persona sounds slow or fast with either speaker."""
    speed = voice.rate_wpm / PACE_WPM["normal"]
    return round(min(MAX_SPEED, max(MIN_SPEED, speed)), 4)


class HttpSpeaker:
    """An OpenAI-compatible ``POST {base_url}/audio/speech``.

    ``voice`` names the endpoint's voice (``"alloy"``, ``"af_heart"``…) for every caller; when it is not
    set, each persona's :attr:`VoiceSpec.voice` is sent as it is, for endpoints whose voice names are the
    ones the personas already use. Only the voice name and the speed reach the endpoint: pitch and
    amplitude are espeak-ng's and have no equivalent in the protocol.

    The answer is decoded whatever it is (a WAV of any rate, width or channel count, mixed to mono; or
    raw ``pcm`` at ``pcm_rate``) and resampled to 8 kHz, because servers differ in what they send even
    when asked for the same format. There are no retries: a render that fails fails at once with a
    :class:`SpeechError` naming the URL and status (never the key), so lines rendered ahead of a run find
    a broken endpoint before the first call rather than in the middle of one.
    Renders are cached per (text, voice, speed) in an LRU of ``cache_size`` lines; two threads asking for
    the same uncached line at once may both request it, which costs a request, not correctness.

    The HTTP client is kept open for connection reuse; :meth:`close` it, or use the speaker as a context
    manager.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr | None = None,
        model: str = DEFAULT_HTTP_MODEL,
        voice: str | None = None,
        response_format: str = "wav",
        timeout_s: float = 30.0,
        *,
        pcm_rate: int = DEFAULT_PCM_RATE,
        cache_size: int = 1024,
    ) -> None:
        if not base_url.strip():
            raise SpeechError("a speech synthesis endpoint needs a base URL")
        if response_format not in _RESPONSE_FORMATS:
            raise SpeechError(
                f"unknown response_format {response_format!r} for speech synthesis; expected 'wav' or 'pcm'"
            )
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if pcm_rate <= 0:
            raise ValueError(f"pcm_rate must be positive, got {pcm_rate}")
        if cache_size < 0:
            raise ValueError(f"cache_size must not be negative, got {cache_size}")
        self.url = base_url.strip().rstrip("/") + "/audio/speech"
        self.model = model
        self.voice = voice or None
        self.response_format = response_format
        self.pcm_rate = pcm_rate
        self.cache_size = cache_size
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._key = key or None
        self._client = httpx.Client(timeout=timeout_s, headers=headers)
        self._cache: OrderedDict[tuple[str, str, float], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> HttpSpeaker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def speak(self, text: str, voice: VoiceSpec) -> Pcm:
        """``text`` as the endpoint says it, at 8 kHz; a cached render when this line was said before."""
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        key = (text, self.voice or voice.voice, speed_for(voice))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            cached = self._render(*key)
            with self._lock:
                self._cache[key] = cached
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        # Read-only, as render_speech's are: a caller that edits its audio cannot corrupt the cache.
        return np.frombuffer(cached, dtype=np.int16)

    def _redacted(self, message: str) -> str:
        """``message`` without the key: some servers echo the key they refused back in their error."""
        return message.replace(self._key, "***") if self._key else message

    def _render(self, text: str, voice: str, speed: float) -> bytes:
        request = {
            "model": self.model,
            "input": text,
            "voice": voice,
            "response_format": self.response_format,
            "speed": speed,
        }
        try:
            response = self._client.post(self.url, json=request)
        except httpx.HTTPError as exc:
            raise SpeechError(f"speech synthesis at {self.url} failed: {type(exc).__name__}: {exc}") from exc
        answered = f"speech synthesis at {self.url} answered HTTP {response.status_code}"
        if response.status_code >= 400:
            raise SpeechError(f"{answered}: {self._redacted(_error_message(response))}")
        samples, rate = self._decode(response, answered)
        pcm = _trim(_to_telephone(samples, rate))
        if pcm.size == 0:
            raise SpeechError(
                f"{answered} with {samples.size / rate:.2f} s of silence for {_excerpt(text)!r}"
            )
        return pcm.tobytes()

    def _decode(self, response: httpx.Response, answered: str) -> tuple[_Samples, int]:
        """The answer as float samples in [-1, 1] and their rate, or a :class:`SpeechError` saying why
        it is not audio."""
        body = response.content
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not body:
            raise SpeechError(f"{answered} with an empty body")
        if content_type.startswith("text/") or content_type.endswith(("json", "xml")):
            raise SpeechError(
                f"{answered} with {content_type}, not audio: {self._redacted(_body_excerpt(body))}"
            )
        # Some servers answer WAV whatever was asked for, so a RIFF header is honoured in pcm mode too.
        if self.response_format == "pcm" and not (body[:4] == b"RIFF" and body[8:12] == b"WAVE"):
            if len(body) % 2:
                raise SpeechError(
                    f"{answered} with {len(body)} bytes, an odd length that is not 16-bit PCM "
                    "(is the endpoint sending another format?)"
                )
            samples: _Samples = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
            return samples, self.pcm_rate
        try:
            data, rate = sf.read(io.BytesIO(body), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise SpeechError(
                f"{answered} with a body that is not audio ({len(body)} bytes, "
                f"{content_type or 'no content type'}): {self._redacted(_body_excerpt(body))}"
            ) from exc
        if data.shape[0] == 0:
            raise SpeechError(f"{answered} with an audio file that holds no samples")
        samples = data.mean(axis=1, dtype=np.float32)
        return samples, int(rate)


def _to_telephone(samples: _Samples, rate: int) -> Pcm:
    if rate != SAMPLE_RATE:
        samples = np.asarray(soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32)
    out: Pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    return out


def _trim(samples: Pcm, floor: int = _SILENCE_FLOOR) -> Pcm:
    """Without leading and trailing near-silence, as :mod:`.speech` trims espeak-ng's: servers pad their
    audio differently, and padding would read to the agent as a slow start or a late end of turn.
    (``speech._trim`` is private, so this is its equivalent rather than an import.)"""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def _error_message(response: httpx.Response) -> str:
    """OpenAI's ``error.message`` when the body has one (it says what was wrong: a bad voice, a bad key),
    else the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"].strip():
            return _excerpt(error["message"])
        if isinstance(error, str) and error.strip():
            return _excerpt(error)
    return _excerpt(response.text)


def _body_excerpt(body: bytes) -> str:
    """The start of a body that should have been audio: readable when it is text (an HTML error page, a
    JSON error a gateway sent with 200), its first bytes when it is binary."""
    head = body[: _ERROR_EXCERPT_CHARS * 4]
    try:
        # Incremental, so a character cut in two at the end of the slice is not taken for binary.
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = None
    if text is None or any(not char.isprintable() and not char.isspace() for char in text):
        return f"starts with {body[:16]!r}"
    return _excerpt(text)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _ERROR_EXCERPT_CHARS:
        return text[:_ERROR_EXCERPT_CHARS] + "…"
    return text or "(empty body)"


def speaker_for(
    kind: str | None,
    *,
    base_url: str | None = None,
    api_key: str | SecretStr | None = None,
    model: str | None = None,
    voice: str | None = None,
) -> Speaker:
    """The speaker a configuration names: ``"espeak"`` (the default, offline) or ``"http"``.

    Options given with ``espeak`` are refused rather than ignored: they mean the configuration expected a
    server's voice, and silently speaking with espeak-ng instead would hide that mistake until someone
    listened to a recording.
    """
    chosen = (kind or "espeak").strip().lower()
    if chosen == "espeak":
        stray = [
            name
            for name, value in (
                ("base_url", base_url),
                ("api_key", api_key),
                ("model", model),
                ("voice", voice),
            )
            if value is not None
        ]
        if stray:
            raise SpeechError(
                f"{', '.join(stray)} apply to the http speaker, not espeak "
                "(espeak's voice comes from each persona)"
            )
        return EspeakSpeaker()
    if chosen == "http":
        if not base_url or not base_url.strip():
            raise SpeechError("the http speaker needs a base_url (an OpenAI-compatible endpoint)")
        return HttpSpeaker(base_url, api_key, model or DEFAULT_HTTP_MODEL, voice)
    raise SpeechError(f"unknown speaker {kind!r}; expected 'espeak' or 'http'")
