"""The noise benchmark's scene generator: asked SNR and bleed, truth where the composition put it, same scene
for the same seed. A benchmark figure is only as good as its conditions and labels, so they are checked."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _noisy_scenes import build_noisy_scenarios, speech_rms
from _speech import RATE_HZ, TRIM_DB, Scenario
from convoscope.model import Role

Track = npt.NDArray[np.float32]


def _scene(kind: str, condition: str, seed: int = 23) -> tuple[Scenario, dict[Role, Track]]:
    return next(build_noisy_scenarios(1, seed=seed, kinds=(kind,), conditions=(condition,)))


def _db(ratio: float) -> float:
    return 20.0 * float(np.log10(ratio))


@pytest.mark.parametrize(
    ("condition", "snr_db"), [("white10", 10.0), ("pink5", 5.0), ("babble20", 20.0), ("babble5", 5.0)]
)
def test_noise_is_at_the_asked_snr_on_each_channel(condition: str, snr_db: float) -> None:
    scenario, clean = _scene("backchannel", condition)
    for role, noisy in ((Role.USER, scenario.user), (Role.AGENT, scenario.agent)):
        noise = noisy.astype(np.float64) - clean[role]
        speech = speech_rms(clean[role], scenario.truth.utterances(role))
        measured = _db(speech / float(np.sqrt(np.mean(np.square(noise)))))
        assert abs(measured - snr_db) <= 0.5, (role, measured)


@pytest.mark.parametrize(("condition", "bleed_db"), [("bleed25", -25.0), ("bleed10", -10.0)])
def test_bleed_is_the_other_party_at_the_asked_level_and_slightly_late(
    condition: str, bleed_db: float
) -> None:
    scenario, clean = _scene("barge_in_yield", condition)
    for role, other, recorded in (
        (Role.USER, Role.AGENT, scenario.user),
        (Role.AGENT, Role.USER, scenario.agent),
    ):
        leak = recorded.astype(np.float64) - clean[role]
        source = clean[other].astype(np.float64)
        lags = range(round(0.04 * RATE_HZ))
        delay = max(lags, key=lambda lag: float(np.dot(leak[lag:], source[: len(source) - lag])))
        assert 0.005 * RATE_HZ <= delay <= 0.03 * RATE_HZ
        shifted = [(a + delay / RATE_HZ, b + delay / RATE_HZ) for a, b in scenario.truth.utterances(other)]
        level = speech_rms(leak.astype(np.float32), shifted) / speech_rms(
            clean[role], scenario.truth.utterances(role)
        )
        assert abs(_db(level) - bleed_db) <= 0.5
        gain = speech_rms(leak.astype(np.float32), shifted) / speech_rms(
            clean[other], scenario.truth.utterances(other)
        )
        residual = leak[delay:] - gain * source[: len(source) - delay]
        assert float(np.abs(residual).max()) < 1e-5  # nothing but the delayed, scaled other party


@pytest.mark.parametrize("kind", ["gap", "barge_in_yield", "agent_interrupts", "backchannel"])
def test_truth_falls_on_the_first_and_last_sound_of_each_placed_utterance(kind: str) -> None:
    scenario, clean = _scene(kind, "clean")
    truth = scenario.truth
    for role in (Role.USER, Role.AGENT):
        track = np.abs(clean[role])
        for start_s, end_s in truth.utterances(role):
            first, last = round(start_s * RATE_HZ), round(end_s * RATE_HZ) - 1
            floor = float(track[first : last + 1].max()) * 10.0 ** (TRIM_DB / 20.0)
            assert track[first] >= floor * 0.999 and track[last] >= floor * 0.999
            assert float(track[max(0, first - 800) : first].max(initial=0.0)) == 0.0  # silent before
            assert float(track[last + 1 : last + 801].max(initial=0.0)) == 0.0  # and after
    if kind == "gap":
        (user_end, agent_start) = truth.response_gaps[0]
        assert (user_end, agent_start) == (truth.user[0][1], truth.agent[0][0]) and agent_start > user_end
    if kind == "barge_in_yield":
        ((onset, stop),) = truth.barge_ins
        assert truth.interruptions == ((Role.USER, onset),)
        assert onset == truth.user[0][0] and stop == truth.agent[0][1]
        assert truth.agent[0][0] < onset < stop  # the agent was talking, then stopped
    if kind == "agent_interrupts":
        ((who, onset),) = truth.interruptions
        assert who is Role.AGENT and truth.user[0][0] < onset == truth.agent[0][0] < truth.user[0][1]
    if kind == "backchannel":
        assert truth.interruptions == ()
        back = truth.user[0]
        assert truth.agent[0][0] < back[0] and back[1] < truth.agent[0][1] and back[1] - back[0] < 1.0


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    first, _ = _scene("barge_in_no_yield", "babble10-bleed15", seed=5)
    again, _ = _scene("barge_in_no_yield", "babble10-bleed15", seed=5)
    other, _ = _scene("barge_in_no_yield", "babble10-bleed15", seed=6)
    assert first.truth == again.truth
    assert np.array_equal(first.user, again.user) and np.array_equal(first.agent, again.agent)
    assert first.truth != other.truth


def test_telephone_condition_is_8_khz_with_the_truth_of_the_band_passed_speech() -> None:
    line, _ = _scene("gap", "tel8k")
    wide, _ = _scene("gap", "clean")
    assert line.rate_hz == 8000 and wide.rate_hz == RATE_HZ
    assert abs(line.duration_s - wide.duration_s) < 0.01
    for (a, b), (c, d) in zip(
        line.truth.user + line.truth.agent, wide.truth.user + wide.truth.agent, strict=True
    ):
        assert abs(a - c) < 0.05 and abs(b - d) < 0.05
