"""The caller's voice: espeak-ng rendered offline to 8 kHz telephone PCM.

espeak-ng is small, offline and has voices and variants for many languages and accents, so a persona's
``voice`` picks e.g. ``en-us``, ``en-gb-scotland`` or ``en-us+f3`` (voice plus variant). Speech is
rendered once per (text, voice, rate) and cached, so hundreds of scripted callers saying the same lines
cost one render each; the load test pre-renders everything before the first call starts.

A hesitating persona's line gets fillers and mid-sentence pauses: the text is split at clause
boundaries, and the pieces are joined with silence (a real pause the agent's turn detection must not
take for the end of the turn) and, every other pause, an "um".
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr  # type: ignore[import-untyped]

from ...errors import ConvoscopeError
from .codec import SAMPLE_RATE, Pcm

__all__ = ["PACE_WPM", "SpeechError", "VoiceSpec", "hesitant_pieces", "render_line", "render_speech"]

PACE_WPM = {"slow": 130, "normal": 165, "fast": 210}
"""espeak-ng speaking rate (words per minute) for each persona pace."""

_CLAUSE = re.compile(r"(?<=[,;:.!?])\s+")


class SpeechError(ConvoscopeError):
    """The caller's speech could not be rendered (espeak-ng missing, an unknown voice)."""

    kind = "speech_error"


@dataclass(frozen=True)
class VoiceSpec:
    """How the caller sounds: an espeak-ng voice (``language[+variant]``), a rate, a pitch."""

    voice: str = "en-us"
    rate_wpm: int = PACE_WPM["normal"]
    pitch: int = 50
    """espeak-ng pitch, 0-99."""
    amplitude: int = 100
    """espeak-ng amplitude, 0-200."""


def _espeak() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise SpeechError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    return found


@lru_cache(maxsize=4096)
def _render_cached(text: str, voice: VoiceSpec) -> bytes:
    command = [
        _espeak(),
        "--stdout",
        "-v",
        voice.voice,
        "-s",
        str(voice.rate_wpm),
        "-p",
        str(voice.pitch),
        "-a",
        str(voice.amplitude),
        "--",
        text,
    ]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or len(done.stdout) <= 44 or stderr:
        raise SpeechError(f"espeak-ng could not speak with voice {voice.voice!r}: {stderr or 'no audio'}")
    wav = done.stdout
    rate = int.from_bytes(wav[24:28], "little")
    # espeak-ng streams its WAV with a placeholder length, so the samples are read after the header.
    data = wav.find(b"data")
    samples = np.frombuffer(wav[data + 8 :], dtype="<i2")[: (len(wav) - data - 8) // 2]
    if rate != SAMPLE_RATE:
        resampled = soxr.resample(samples.astype(np.float32) / 32768.0, rate, SAMPLE_RATE, quality="HQ")
        samples = np.clip(np.round(resampled * 32767.0), -32768, 32767).astype(np.int16)
    return _trim(samples.astype(np.int16)).tobytes()


def _trim(samples: Pcm, floor: int = 64) -> Pcm:
    """Without the leading and trailing near-silence espeak-ng pads its output with."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def render_speech(text: str, voice: VoiceSpec | None = None) -> Pcm:
    """``text`` spoken by ``voice`` as 8 kHz 16-bit PCM, trimmed of leading and trailing silence."""
    if not text.strip():
        return np.zeros(0, dtype=np.int16)
    return np.frombuffer(_render_cached(text, voice or VoiceSpec()), dtype=np.int16)


def hesitant_pieces(text: str) -> list[str]:
    """The line split where a hesitant speaker pauses, with an "um" before every other piece after the
    first: a pause of ``pause_s`` goes between consecutive pieces."""
    pieces = [piece for piece in _CLAUSE.split(text.strip()) if piece]
    if len(pieces) == 1:
        words = pieces[0].split()
        if len(words) >= 6:
            half = len(words) // 2
            pieces = [" ".join(words[:half]), " ".join(words[half:])]
    return [f"um, {piece}" if i % 2 == 1 else piece for i, piece in enumerate(pieces)]


def render_line(
    text: str,
    voice: VoiceSpec | None = None,
    *,
    hesitant: bool = False,
    pause_s: float = 0.6,
    speak: Callable[[str, VoiceSpec], Pcm] | None = None,
) -> Pcm:
    """A caller's line: spoken whole (by ``speak``, espeak-ng by default), or for a hesitant persona its
    pieces joined by pauses."""
    say = speak or render_speech
    voice = voice or VoiceSpec()
    if not hesitant:
        return say(text, voice)
    gap = np.zeros(round(pause_s * SAMPLE_RATE), dtype=np.int16)
    parts: list[Pcm] = []
    for i, piece in enumerate(hesitant_pieces(text)):
        if i:
            parts.append(gap)
        parts.append(say(piece, voice))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
