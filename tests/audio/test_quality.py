"""The agent's clipping, from its own samples inside its speech: saturated fails, clean passes."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from convoscope.audio.load import load_recording
from convoscope.audio.quality import AGENT_CLIPPING
from convoscope.audio.report import AnalysisParams, analyze_audio
from convoscope.model import Role

RATE = 8000


def _speechlike(seconds: float, peak: float, seed: int) -> np.ndarray:
    """A voiced-sounding signal: harmonics of 140 Hz under a syllable-rate envelope, at ``peak``."""
    t = np.arange(round(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * 140 * k * t + seed * k) / k for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    signal = voice * envelope
    return peak * signal / np.max(np.abs(signal))


def _call(agent_gain: float) -> bytes:
    total = np.zeros((RATE * 8, 2))
    total[RATE * 1 : RATE * 3, 0] = _speechlike(2.0, 0.5, 1)
    agent = np.clip(_speechlike(3.0, 0.7, 2) * agent_gain, -1.0, 1.0)
    total[round(RATE * 3.6) : round(RATE * 3.6) + len(agent), 1] = agent
    out = io.BytesIO()
    sf.write(out, total, RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _clipping(agent_gain: float, **overrides: float) -> tuple[float | None, bool | None, dict]:
    audio = load_recording(_call(agent_gain), channel_map={0: Role.USER, 1: Role.AGENT})
    params = AnalysisParams().with_overrides({"backend": "webrtc", **overrides})
    result = next(
        m for m in analyze_audio(audio, call_id="c", params=params).metrics if m.metric == AGENT_CLIPPING
    )
    assert result.params["clipping_level"] == params.turn_taking.clipping_level
    return result.value, result.passed, dict(result.evidence)  # type: ignore[return-value]


def test_a_clean_agent_voice_has_no_clipping() -> None:
    value, passed, evidence = _clipping(1.0)
    assert value == 0.0 and passed is True
    assert evidence["speech_samples"] > 16000 * 2 and evidence["worst_segments"] == []


def test_a_saturated_agent_voice_fails_and_shows_where() -> None:
    value, passed, evidence = _clipping(4.0)  # 12 dB of gain past full scale
    assert value is not None and value > 0.05 and passed is False
    (worst, *_) = evidence["worst_segments"]
    assert 3.5 <= worst["segment"][0] <= 3.7 and worst["share"] > 0.05


def test_the_threshold_is_a_parameter() -> None:
    value, passed, _ = _clipping(4.0, clipping_max_share=0.99)
    assert value is not None and value > 0.05 and passed is True
