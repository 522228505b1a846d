"""Real speech for the VAD tests: a few espeak-ng utterances, synthesised once per test session."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from convoscope.audio.load import LoadedAudio
from convoscope.model import Role

RATE_HZ = 16000
PHRASES = (
    "Hello, thanks for calling the support line.",
    "My order number is four five two.",
    "Sure, let me check that for you.",
    "Yes please.",
)


def _trim(wave: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cut espeak's leading and trailing silence, so the placement time is the true speech onset."""
    loud = np.flatnonzero(np.abs(wave) >= 0.01 * float(np.abs(wave).max()))
    return wave[loud[0] : loud[-1] + 1]


@pytest.fixture(scope="session")
def utterances() -> list[npt.NDArray[np.float32]]:
    """Each phrase spoken by espeak-ng, mono float32 at 16 kHz, peak 0.5, silence trimmed."""
    espeak = shutil.which("espeak-ng")
    assert espeak is not None, "espeak-ng must be installed (apt-get install espeak-ng)"
    waves = []
    for phrase in PHRASES:
        raw = subprocess.run(
            [espeak, "-s", "160", "--stdout", phrase], capture_output=True, check=True
        ).stdout
        wave, rate = sf.read(io.BytesIO(raw), dtype="float32")
        wave = soxr.resample(wave, rate, RATE_HZ).astype(np.float32)
        wave = _trim(wave)
        waves.append((0.5 * wave / np.abs(wave).max()).astype(np.float32))
    return waves


def stereo(user: npt.NDArray[np.float32], agent: npt.NDArray[np.float32]) -> LoadedAudio:
    """Two synthetic tracks at ``RATE_HZ`` as a loaded two-party recording."""
    return LoadedAudio(
        tracks={Role.USER: user, Role.AGENT: agent},
        rate_hz=RATE_HZ,
        original_rate_hz=RATE_HZ,
        duration_s=len(user) / RATE_HZ,
        sources=("synthetic",),
        formats=(),
    )


def placed(duration_s: float, items: list[tuple[float, npt.NDArray[np.float32]]]) -> npt.NDArray[np.float32]:
    """A silent track of ``duration_s`` at ``RATE_HZ`` with each wave added at its start time (seconds)."""
    track = np.zeros(round(duration_s * RATE_HZ), dtype=np.float32)
    for start_s, wave in items:
        first = round(start_s * RATE_HZ)
        track[first : first + len(wave)] += wave
    return track
