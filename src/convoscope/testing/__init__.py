"""The test kit convoscope ships: builders for calls and stereo recordings with known answers.

Tests of a voice pipeline need inputs whose truth is known exactly. The WAV builders put speech-like
sound precisely in the intervals you name, per channel, so a turn detector, an overlap metric or an
upload path can be checked against the intervals themselves; the call builders give the smallest valid
call, with any field overridden. Only runtime dependencies are used (numpy, soundfile), so the module
imports anywhere convoscope does.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ..model import Call

__all__ = ["call_payload", "make_call", "stereo_wav_bytes", "write_stereo_wav"]

Interval = tuple[float, float]

# Voices differ in pitch so a mixdown stays separable by ear; the syllable rate keeps the envelope moving
# the way speech does without ever falling silent inside an interval.
_LEFT_F0_HZ = 120.0
_RIGHT_F0_HZ = 210.0
_SYLLABLE_HZ = 4.0
_HARMONICS = 12
_LEVEL = 0.3  # peak of a burst, about -16 dBFS RMS
_EDGE_S = 0.01


def _burst(n: int, sample_rate: int, f0_hz: float, phase: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A voiced burst: harmonics of f0 rolling off like a glottal source, amplitude-modulated at the
    syllable rate, with 10 ms raised-cosine edges so its onset and offset sit exactly on the interval."""
    t = np.arange(n) / sample_rate
    tone = np.zeros(n)
    nyquist = sample_rate / 2
    for k in range(1, _HARMONICS + 1):
        if k * f0_hz >= nyquist:
            break
        tone += np.sin(2 * np.pi * k * f0_hz * t + phase * k) / k
    tone /= np.max(np.abs(tone)) or 1.0
    envelope = 0.65 + 0.35 * np.sin(2 * np.pi * _SYLLABLE_HZ * t + phase)
    edge = min(int(_EDGE_S * sample_rate), n // 2)
    if edge > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
        envelope[:edge] *= ramp
        envelope[n - edge :] *= ramp[::-1]
    result: np.ndarray[Any, np.dtype[np.float64]] = _LEVEL * tone * envelope
    return result


def _channel(
    intervals: list[Interval], *, frames: int, sample_rate: int, f0_hz: float, duration_s: float
) -> np.ndarray[Any, np.dtype[np.float64]]:
    signal = np.zeros(frames)
    for number, (start_s, end_s) in enumerate(intervals):
        if not 0.0 <= start_s < end_s <= duration_s:
            raise ValueError(f"interval ({start_s}, {end_s}) must satisfy 0 <= start < end <= {duration_s}")
        first = round(start_s * sample_rate)
        last = min(round(end_s * sample_rate), frames)
        signal[first:last] += _burst(last - first, sample_rate, f0_hz, phase=0.7 * number)
    return signal


def _stereo(
    *,
    left: list[Interval],
    right: list[Interval],
    duration_s: float,
    sample_rate: int,
    noise_db: float | None,
    seed: int,
) -> np.ndarray[Any, np.dtype[np.int16]]:
    if duration_s <= 0 or sample_rate <= 0:
        raise ValueError("duration_s and sample_rate must be positive")
    frames = round(duration_s * sample_rate)
    channels = [
        _channel(left, frames=frames, sample_rate=sample_rate, f0_hz=_LEFT_F0_HZ, duration_s=duration_s),
        _channel(right, frames=frames, sample_rate=sample_rate, f0_hz=_RIGHT_F0_HZ, duration_s=duration_s),
    ]
    audio = np.stack(channels, axis=1)
    if noise_db is not None:
        rms = 10.0 ** (noise_db / 20.0)
        audio += np.random.default_rng(seed).normal(0.0, rms, audio.shape)
    pcm: np.ndarray[Any, np.dtype[np.int16]] = np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(
        np.int16
    )
    return pcm


def stereo_wav_bytes(
    *,
    left: list[Interval],
    right: list[Interval],
    duration_s: float,
    sample_rate: int = 16000,
    noise_db: float | None = None,
    seed: int = 0,
) -> bytes:
    """A PCM16 stereo WAV with speech-like bursts in the given ``(start_s, end_s)`` intervals.

    ``left`` is channel 0, ``right`` channel 1 (by convention user and agent). Overlapping intervals on the
    two channels make overlaps and barge-ins. ``noise_db`` adds white noise at that RMS level in dBFS
    (e.g. -60) on both channels, drawn from ``seed`` so the bytes are the same on every run.
    """
    pcm = _stereo(
        left=left, right=right, duration_s=duration_s, sample_rate=sample_rate, noise_db=noise_db, seed=seed
    )
    buffer = io.BytesIO()
    sf.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_stereo_wav(
    path: str | Path,
    *,
    left: list[Interval],
    right: list[Interval],
    duration_s: float,
    sample_rate: int = 16000,
    noise_db: float | None = None,
    seed: int = 0,
) -> Path:
    """Write :func:`stereo_wav_bytes` to ``path`` and return it as a :class:`~pathlib.Path`."""
    target = Path(path)
    target.write_bytes(
        stereo_wav_bytes(
            left=left,
            right=right,
            duration_s=duration_s,
            sample_rate=sample_rate,
            noise_db=noise_db,
            seed=seed,
        )
    )
    return target


def call_payload(**overrides: Any) -> dict[str, Any]:
    """A small valid call as the JSON-able dict a client would POST; top-level keys are replaced by
    ``overrides`` (``turns=[...]``, ``started_at="..."``, ``source="vapi"``...).

    Built fresh on each call, so a test may mutate what it gets. The call has no ``ended_at`` (only a
    ``duration_s``), so overriding ``started_at`` alone always gives a consistent call.
    """
    payload: dict[str, Any] = {
        "source": "generic",
        "external_id": "test-call-1",
        "agent_id": "test-agent",
        "agent_version": "1",
        "direction": "inbound",
        "started_at": "2025-01-06T15:00:00+00:00",
        "duration_s": 9.5,
        "end_reason": "user_hangup",
        "end_reason_raw": "customer-ended-call",
        "turns": [
            {"role": "agent", "text": "Hello, how can I help you today?", "start_s": 0.4, "end_s": 2.2},
            {"role": "user", "text": "I'd like to check my order.", "start_s": 2.8, "end_s": 4.3},
            {
                "role": "agent",
                "text": "Sure, what is the order number?",
                "start_s": 5.2,
                "end_s": 6.9,
                "e2e_s": 0.9,
                "stt_s": 0.1,
                "llm_ttft_s": 0.45,
                "tts_ttfb_s": 0.15,
            },
            {"role": "user", "text": "It's one two three four.", "start_s": 7.5, "end_s": 9.0},
        ],
        "cost": [{"product": "platform", "amount": 0.0079, "quantity": 9.5 / 60, "unit": "minute"}],
        "tags": [],
    }
    payload.update(overrides)
    return payload


def make_call(**overrides: Any) -> Call:
    """:func:`call_payload` validated into a :class:`~convoscope.model.Call`."""
    return Call.model_validate(call_payload(**overrides))
