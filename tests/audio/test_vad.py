"""detect_speech on real (espeak-ng) speech placed at known times, and the segment rules as properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.audio.load import load_recording
from convoscope.audio.segments import Segment, VadParams
from convoscope.audio.vad import (
    SileroBackend,
    WebRtcBackend,
    detect_speech,
    segments_from_probabilities,
)
from convoscope.model import Role

from .conftest import placed, stereo

RATE_HZ = 16000
TOLERANCE_S = 0.03
BACKENDS = ["silero", "webrtc"]
Track = npt.NDArray[np.float32]
Truth = list[tuple[float, float]]


def _place(duration_s: float, items: list[tuple[float, Track]]) -> tuple[Track, Truth]:
    truth = [(start_s, start_s + len(wave) / RATE_HZ) for start_s, wave in items]
    return placed(duration_s, items), truth


@pytest.fixture(scope="module")
def dialogue(utterances: list[Track]) -> tuple[Track, Truth, Track, Truth]:
    """Alternating turns with gaps, no overlap: user, agent, user (short), agent."""
    user, user_truth = _place(12.0, [(0.5, utterances[1]), (6.3, utterances[3])])
    agent, agent_truth = _place(12.0, [(3.0, utterances[0]), (8.0, utterances[2])])
    return user, user_truth, agent, agent_truth


def _assert_matches(segments: tuple[Segment, ...], truth: Truth) -> None:
    assert len(segments) == len(truth), (segments, truth)
    for segment, (start_s, end_s) in zip(segments, truth, strict=True):
        assert abs(segment.start_s - start_s) <= TOLERANCE_S, (segment, start_s)
        assert abs(segment.end_s - end_s) <= TOLERANCE_S, (segment, end_s)


@pytest.mark.parametrize("backend", BACKENDS)
def test_segments_match_known_timing(backend: str, dialogue: tuple[Track, Truth, Track, Truth]) -> None:
    user, user_truth, agent, agent_truth = dialogue
    speech = detect_speech(stereo(user, agent), VadParams(backend=backend))
    assert set(speech) == {Role.USER, Role.AGENT}
    _assert_matches(speech[Role.USER].segments, user_truth)
    _assert_matches(speech[Role.AGENT].segments, agent_truth)
    activity = speech[Role.USER]
    assert activity.frame_s == pytest.approx(0.01)
    assert activity.probabilities is not None
    assert len(activity.probabilities) == 1200


def test_recording_file_end_to_end(tmp_path: Path, dialogue: tuple[Track, Truth, Track, Truth]) -> None:
    """Through a 44.1 kHz stereo WAV, the loader's resampling and the clock offset."""
    user, user_truth, agent, agent_truth = dialogue

    stereo = np.stack([soxr.resample(agent, RATE_HZ, 44100), soxr.resample(user, RATE_HZ, 44100)], axis=1)
    path = tmp_path / "call.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    audio = load_recording(path, channel_map=[Role.AGENT, Role.USER], offset_s=0.2)
    speech = detect_speech(audio)
    _assert_matches(speech[Role.USER].segments, [(a + 0.2, b + 0.2) for a, b in user_truth])
    _assert_matches(speech[Role.AGENT].segments, [(a + 0.2, b + 0.2) for a, b in agent_truth])


@pytest.mark.parametrize("backend", BACKENDS)
def test_barge_in_keeps_both_parties(backend: str, utterances: list[Track]) -> None:
    """Genuine double talk at similar levels is speech on both channels, not crosstalk."""
    agent, agent_truth = _place(6.0, [(0.5, utterances[0])])
    user, user_truth = _place(6.0, [(1.5, utterances[1])])
    speech = detect_speech(stereo(user, agent), VadParams(backend=backend))
    assert len(speech[Role.USER].segments) == 1
    assert abs(speech[Role.USER].segments[0].start_s - user_truth[0][0]) <= TOLERANCE_S
    assert speech[Role.AGENT].segments[0].start_s == pytest.approx(agent_truth[0][0], abs=TOLERANCE_S)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bleed_db", [-20.0, -25.0, -30.0])
def test_agent_bleed_into_user_channel_is_not_user_speech(
    backend: str, bleed_db: float, dialogue: tuple[Track, Truth, Track, Truth]
) -> None:
    _, _, agent, agent_truth = dialogue
    user = (agent * 10 ** (bleed_db / 20)).astype(np.float32)
    speech = detect_speech(stereo(user, agent), VadParams(backend=backend))
    assert speech[Role.USER].segments == ()
    _assert_matches(speech[Role.AGENT].segments, agent_truth)


def _noise(like: Track, speech_rms: float, snr_db: float, seed: int) -> Track:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(len(like)) * speech_rms * 10 ** (-snr_db / 20)).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_noise_at_10_db_snr_alone_is_not_speech(
    backend: str, utterances: list[Track], dialogue: tuple[Track, Truth, Track, Truth]
) -> None:
    user, _, _, _ = dialogue
    speech_rms = float(np.sqrt(np.mean(np.concatenate(utterances) ** 2)))
    audio = stereo(_noise(user, speech_rms, 10.0, 1), _noise(user, speech_rms, 10.0, 2))
    speech = detect_speech(audio, VadParams(backend=backend))
    assert speech[Role.USER].segments == ()
    assert speech[Role.AGENT].segments == ()


def test_speech_in_noise_at_10_db_snr_keeps_its_onsets(
    utterances: list[Track], dialogue: tuple[Track, Truth, Track, Truth]
) -> None:
    user, user_truth, agent, agent_truth = dialogue
    speech_rms = float(np.sqrt(np.mean(np.concatenate(utterances) ** 2)))
    audio = stereo(user + _noise(user, speech_rms, 10.0, 3), agent + _noise(agent, speech_rms, 10.0, 4))
    speech = detect_speech(audio)
    for role, truth in ((Role.USER, user_truth), (Role.AGENT, agent_truth)):
        onsets = [segment.start_s for segment in speech[role].segments]
        for start_s, _ in truth:
            assert min(abs(onset - start_s) for onset in onsets) <= 0.06, (role, onsets, start_s)


def test_mono_analysis_has_one_party(tmp_path: Path, dialogue: tuple[Track, Truth, Track, Truth]) -> None:
    user, user_truth, agent, agent_truth = dialogue
    path = tmp_path / "mixed.wav"
    sf.write(path, user + agent, RATE_HZ, subtype="PCM_16")
    audio = load_recording(path, channel_map=None, mono_role=Role.AGENT)
    speech = detect_speech(audio)
    assert list(speech) == [Role.AGENT]
    _assert_matches(speech[Role.AGENT].segments, sorted(user_truth + agent_truth))


@pytest.mark.parametrize("backend", [SileroBackend(), SileroBackend(runtime="batched"), WebRtcBackend()])
def test_backends_give_frame_evidence_and_reset_between_channels(
    backend: SileroBackend | WebRtcBackend, utterances: list[Track]
) -> None:
    track, _ = _place(3.0, [(1.0, utterances[3])])
    first = backend.detect(track, RATE_HZ)
    again = backend.detect(track, RATE_HZ)
    np.testing.assert_array_equal(first.probabilities, again.probabilities)
    assert 0.0 < first.frame_s <= 0.032
    assert len(first.probabilities) == int(np.ceil(3.0 / first.frame_s))
    assert float(first.probabilities.max()) >= 0.5
    assert float(first.probabilities[: int(0.8 / first.frame_s)].max()) < 0.5
    at_8k = backend.detect(track[::2].copy(), 8000)
    assert float(at_8k.probabilities.max()) >= 0.5


@settings(max_examples=300, deadline=None)
@given(
    probabilities=st.lists(st.floats(0.0, 1.0, width=32), max_size=400),
    threshold=st.floats(0.05, 0.95),
    hysteresis=st.floats(0.0, 0.3),
    min_speech_s=st.floats(0.0, 0.5),
    min_silence_s=st.floats(0.0, 0.5),
    hangover_s=st.floats(0.0, 0.3),
    speech_pad_s=st.floats(0.0, 0.2),
)
def test_post_processed_segments_are_sorted_disjoint_and_in_range(
    probabilities: list[float],
    threshold: float,
    hysteresis: float,
    min_speech_s: float,
    min_silence_s: float,
    hangover_s: float,
    speech_pad_s: float,
) -> None:
    frame_s = 0.01
    params = VadParams(
        threshold=threshold,
        neg_threshold=max(0.0, threshold - hysteresis),
        min_speech_s=min_speech_s,
        min_silence_s=min_silence_s,
        hangover_s=hangover_s,
        speech_pad_s=speech_pad_s,
    )
    segments = segments_from_probabilities(np.array(probabilities, dtype=np.float32), frame_s, params)
    total_s = len(probabilities) * frame_s
    previous_end = -1.0
    for segment in segments:
        assert segment.duration_s >= 0.0
        assert 0.0 <= segment.start_s <= segment.end_s <= total_s + 1e-9
        assert segment.start_s > previous_end
        previous_end = segment.end_s
    if speech_pad_s == 0.0:
        for segment in segments:
            assert segment.duration_s >= min_speech_s - 1e-6
    if all(p < params.neg_threshold for p in probabilities):
        assert segments == ()
