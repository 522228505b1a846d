"""The crosstalk and boundary rules of detect_speech on signals whose edges are known to the sample.

A barge-in starts with a quiet phoneme under the other party's loud speech. On a clean channel that
phoneme is speech whatever the other party's level; under bleed it is speech only when it stands above
the bleed measured on the recording. The scenes here are white-noise bursts at fixed levels, so every
expected boundary is an exact sample count, and the VAD is :class:`LateVad`, which fires only on loud
windows: as late as silero at a quiet onset, so the onset is the refinement's work alone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from convoscope.audio.load import LoadedAudio
from convoscope.audio.segments import Segment, VadParams
from convoscope.audio.vad import (
    SoundEdges,
    SpeechPossible,
    VadFrames,
    _refine,
    bleed_offset_db,
    detect_speech,
)
from convoscope.model import Role

from .conftest import stereo

RATE_HZ = 16000
HOP = 160  # the 10 ms energy frame at 16 kHz
Track = npt.NDArray[np.float32]

AGENT_DBFS = -10.0
LOUD_DBFS = -10.0
QUIET_DBFS = -28.0
"""The barge-in's first 60 ms: 18 dB under the agent, so the fixed 15 dB crosstalk rule calls it bleed."""
ONSET = 24040  # 1.5025 s: 24 samples into the second 2 ms sub-window of frame 150
QUIET_SAMPLES = 960  # 60 ms
END = 39416  # 2.4635 s: 24 samples into a sub-window of frame 246


def _noise(samples: int, level_dbfs: float, seed: int) -> Track:
    rng = np.random.default_rng(seed)
    noise: Track = (rng.standard_normal(samples) * 10.0 ** (level_dbfs / 20.0)).astype(np.float32)
    return noise


def _barge_in(bleed_db: float | None) -> LoadedAudio:
    """The agent talks from 0.5 s to 3.0 s; the user barges in at ONSET, quietly for 60 ms, until END."""
    length = 4 * RATE_HZ
    agent = np.zeros(length, dtype=np.float32)
    agent[8000:48000] = _noise(40000, AGENT_DBFS, 1)
    user = np.zeros(length, dtype=np.float32)
    user[ONSET : ONSET + QUIET_SAMPLES] = _noise(QUIET_SAMPLES, QUIET_DBFS, 2)
    user[ONSET + QUIET_SAMPLES : END] = _noise(END - ONSET - QUIET_SAMPLES, LOUD_DBFS, 3)
    if bleed_db is not None:
        delay = 80  # 5 ms echo path
        user[delay:] += agent[:-delay] * np.float32(10.0 ** (bleed_db / 20.0))
    return stereo(user, agent)


class LateVad:
    """A VAD that fires on 32 ms windows whose RMS reaches ``level_dbfs`` (nothing quieter), so at a
    quiet onset its evidence starts where the loud part does, 40-60 ms late, like silero's."""

    def __init__(self, level_dbfs: float = -20.0) -> None:
        self._min_rms = 10.0 ** (level_dbfs / 20.0)

    def detect(
        self,
        samples: Track,
        rate_hz: int,
        *,
        min_rms: float = 0.0,
        possible: SpeechPossible | None = None,
    ) -> VadFrames:
        size = rate_hz * 32 // 1000
        count = -(-len(samples) // size)
        padded = np.zeros(count * size, dtype=np.float64)
        padded[: len(samples)] = samples
        rms = np.sqrt(np.mean(np.square(padded.reshape(count, size)), axis=1))
        return VadFrames((rms >= self._min_rms).astype(np.float32), size / rate_hz)


def _user_segments(audio: LoadedAudio, params: VadParams | None = None) -> tuple[Segment, ...]:
    return detect_speech(audio, params, backend=LateVad())[Role.USER].segments


# --- the bleed estimate -------------------------------------------------------------------------------


def _energies(other_db: float, own_db: list[float]) -> tuple[Track, Track]:
    other = np.full(len(own_db), other_db, dtype=np.float32)
    return np.array(own_db, dtype=np.float32), other


def test_no_bleed_leaves_only_the_noise_gate() -> None:
    """A channel that is digital silence while the other talks: the offset is far below any level."""
    own, other = _energies(-20.0, [-120.0] * 100)
    offset = bleed_offset_db(own, -80.0, other, VadParams())
    assert offset == pytest.approx(-120.0 - -20.0 + 8.0)


def test_measured_bleed_plus_the_margin() -> None:
    """Pure bleed at -30 dB over a -80 dB floor: the gain is measured to 0.01 dB, the margin added."""
    own, other = _energies(-20.0, [-50.0] * 100)
    assert bleed_offset_db(own, -80.0, other, VadParams()) == pytest.approx(-22.0, abs=0.01)
    margin = VadParams(bleed_margin_db=3.0)
    assert bleed_offset_db(own, -80.0, other, margin) == pytest.approx(-27.0, abs=0.01)


def test_own_speech_over_the_other_stays_out_of_the_estimate() -> None:
    """40% of the other's loud frames carry this party's speech at 0 dB: the median is still bleed."""
    own, other = _energies(-20.0, [-50.0] * 60 + [-20.0] * 40)
    assert bleed_offset_db(own, -80.0, other, VadParams()) == pytest.approx(-22.0, abs=0.01)


def test_the_noise_floor_is_not_bleed() -> None:
    """A noisy channel (floor -40 dBFS, frames within a dB of it) shows no bleed from a -10 dBFS talker."""
    rng = np.random.default_rng(5)
    own = (-40.0 + rng.uniform(0.0, 1.0, 200)).astype(np.float32)
    other = np.full(200, -10.0, dtype=np.float32)
    assert bleed_offset_db(own, -40.0, other, VadParams()) < -30.0 + 8.0


@pytest.mark.parametrize(
    ("own_db", "frames", "why"),
    [
        (-15.0, 100, "bleed stronger than crosstalk_db: the fixed rule is the strictest"),
        (-120.0, 49, "under bleed_min_s of the other's loud half: too little to measure"),
    ],
)
def test_falls_back_to_crosstalk_db(own_db: float, frames: int, why: str) -> None:
    own, other = _energies(-20.0, [own_db] * frames)
    assert bleed_offset_db(own, -80.0, other, VadParams()) == -15.0, why


def test_only_the_loud_half_of_the_other_party_is_measured() -> None:
    """Where the other party is quiet its bleed is lost in this channel's floor; those frames are skipped."""
    own = np.array([-120.0] * 60 + [-50.0] * 60, dtype=np.float32)
    other = np.array([-60.0] * 60 + [-20.0] * 60, dtype=np.float32)
    assert bleed_offset_db(own, -80.0, other, VadParams()) == pytest.approx(-22.0, abs=0.01)


def test_no_active_other_party() -> None:
    own, _ = _energies(-20.0, [-50.0] * 100)
    other = np.full(100, -np.inf, dtype=np.float32)
    assert bleed_offset_db(own, -80.0, other, VadParams()) == -15.0


# --- boundaries -----------------------------------------------------------------------------------------


def test_refinement_crosses_dips_up_to_max_gap() -> None:
    evidence = np.zeros(30, dtype=np.bool_)
    evidence[12:20] = True
    candidate = evidence.copy()
    candidate[[4, 7, 9, 10, 11, 20, 21, 23, 26]] = True
    # Onset side: 11, 10, 9 are adjacent; 8 is a one-frame dip before 7; 6 and 5 a two-frame dip before 4.
    # Offset side: 20, 21 adjacent; 22 a one-frame dip before 23; 24, 25 a two-frame dip before 26.
    assert np.flatnonzero(_refine(evidence, candidate, 10, 0)).tolist() == list(range(9, 22))
    assert np.flatnonzero(_refine(evidence, candidate, 10, 1)).tolist() == list(range(7, 24))
    assert np.flatnonzero(_refine(evidence, candidate, 10, 2)).tolist() == list(range(4, 27))
    # The search limit still holds: at most 5 frames out from the run.
    assert np.flatnonzero(_refine(evidence, candidate, 5, 2)).tolist() == list(range(7, 24))


def test_sound_edges_inside_the_boundary_frames() -> None:
    """Sound from sample 1,070 to 1,421 of a 10 ms grid: edges on the 2 ms sub-window holding each end."""
    samples = np.zeros(3200, dtype=np.float32)
    samples[1070:1421] = _noise(351, -20.0, 4)
    threshold = np.full(20, -60.0, dtype=np.float32)
    edges = SoundEdges(samples, RATE_HZ, HOP, threshold, parts=5)
    # Frame 6 is 960..1120: sub-windows start at 960, 992, 1024, 1056 (holds 1070), 1088.
    # Frame 8 is 1280..1440: the last sound, sample 1420, lies in 1408..1440.
    assert edges.span_s(6, 9) == (1056 / RATE_HZ, 1440 / RATE_HZ)
    # A frame with nothing over its threshold keeps the frame edge.
    assert edges.span_s(2, 4) == (2 * HOP / RATE_HZ, 4 * HOP / RATE_HZ)
    # One part per frame is the frame grid.
    assert SoundEdges(samples, RATE_HZ, HOP, threshold, parts=1).span_s(6, 9) == (0.06, 0.09)


# --- detect_speech: a barge-in whose first phoneme is 18 dB under the agent --------------------------------


QUIET_START_S = 24032 / RATE_HZ  # the sub-window holding ONSET
LOUD_START_S = 24992 / RATE_HZ  # the sub-window holding the first loud sample (25,000)
END_S = 39424 / RATE_HZ  # the sub-window holding the last sample (39,415)


def test_clean_barge_in_starts_at_its_quiet_first_phoneme() -> None:
    """No bleed on the user channel: the quiet phoneme is speech, to the 2 ms sub-window."""
    assert _user_segments(_barge_in(None)) == (Segment(QUIET_START_S, END_S),)


def test_the_fixed_crosstalk_rule_would_cut_the_first_phoneme() -> None:
    """With the bleed estimate off (bleed_min_s out of reach), the quiet phoneme counts as bleed."""
    fixed = VadParams(bleed_min_s=1000.0)
    assert _user_segments(_barge_in(None), fixed) == (Segment(LOUD_START_S, END_S),)


def test_barge_in_over_weak_bleed_starts_at_its_quiet_first_phoneme() -> None:
    """-35 dB bleed: the phoneme is 7 dB over the agent's bleed, and the bleed alone is not speech."""
    assert _user_segments(_barge_in(-35.0)) == (Segment(QUIET_START_S, END_S),)


def test_barge_in_under_bleed_as_loud_as_its_first_phoneme() -> None:
    """-20 dB bleed is as loud as the phoneme: by level alone it cannot be told apart and the onset is
    the loud part; with the bleed subtracted (the default) the quiet phoneme is found again."""
    assert _user_segments(_barge_in(-20.0)) == (Segment(QUIET_START_S, END_S),)
    level_only = VadParams(echo_cancel=False)
    assert _user_segments(_barge_in(-20.0), level_only) == (Segment(LOUD_START_S, END_S),)


def test_frame_edges_when_edge_ms_is_the_frame() -> None:
    """edge_ms = frame_ms: boundaries on the 10 ms grid, the onset frame's start and the last frame's end."""
    params = VadParams(edge_ms=10.0)
    assert _user_segments(_barge_in(None), params) == (Segment(1.5, 2.47),)


# --- detect_speech on real speech ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["silero", "webrtc"])
@pytest.mark.parametrize("bleed_db", [None, -30.0])
@pytest.mark.parametrize(("user_index", "agent_index", "lead_s"), [(1, 2, 1.37), (1, 0, 1.81)])
def test_spoken_barge_in_onset_is_on_its_first_sample(
    utterances: list[Track],
    backend: str,
    bleed_db: float | None,
    user_index: int,
    agent_index: int,
    lead_s: float,
) -> None:
    """espeak-ng barge-ins whose first phoneme the fixed 15 dB rule took for bleed (12-34 ms late)."""
    length = 6 * RATE_HZ
    agent = np.zeros(length, dtype=np.float32)
    agent[8000 : 8000 + len(utterances[agent_index])] = utterances[agent_index]
    user = np.zeros(length, dtype=np.float32)
    onset = round((0.5 + lead_s) * RATE_HZ)
    user[onset : onset + len(utterances[user_index])] = utterances[user_index]
    if bleed_db is not None:
        user[40:] += agent[:-40] * np.float32(10.0 ** (bleed_db / 20.0))
    audio = stereo(user, agent)
    adaptive = detect_speech(audio, VadParams(backend=backend))[Role.USER].segments
    fixed = detect_speech(audio, VadParams(backend=backend, bleed_min_s=1000.0))[Role.USER].segments
    assert len(adaptive) == 1
    assert adaptive[0].start_s == pytest.approx(onset / RATE_HZ, abs=0.002)
    assert fixed[0].start_s - onset / RATE_HZ >= 0.01
