"""The bleed canceller on real speech: each channel hears the other party late and attenuated, and after
cancellation only its own party is left, so the bleed never becomes a segment; and the canceller stays
away from what is not bleed (two unrelated channels, one mix copied to both). The fit listens only to the
call's most telling blocks (``echo_search_s``, ``echo_fit_s``): on a call far longer than those, bleed at
-25 to -10 dB is still found and removed, and a call without bleed is still left alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from convoscope.audio.echo import EchoSettings, cancel_crosstalk
from convoscope.audio.segments import VadParams
from convoscope.audio.vad import detect_speech, echo_settings
from convoscope.model import Role

from .conftest import RATE_HZ, stereo

Track = npt.NDArray[np.float32]
SETTINGS = echo_settings(VadParams())
USER_AT_S, AGENT_AT_S = 0.5, 3.5


def _place(wave: Track, at_s: float, total: int) -> Track:
    track = np.zeros(total, dtype=np.float32)
    start = round(at_s * RATE_HZ)
    track[start : start + len(wave)] = wave
    return track


def _late(track: Track, delay_s: float, gain_db: float) -> Track:
    delay = round(delay_s * RATE_HZ)
    out = np.zeros_like(track)
    out[delay:] = track[: len(track) - delay] * np.float32(10.0 ** (gain_db / 20.0))
    return out


def _call(utterances: list[Track]) -> tuple[Track, Track]:
    """The user speaks first, the agent answers; each channel clean, 7 s."""
    total = 7 * RATE_HZ
    user = _place(utterances[0], USER_AT_S, total)
    agent = _place(utterances[2] * np.float32(0.7), AGENT_AT_S, total)
    return user, agent


def _dialogue(utterances: list[Track], turns: int) -> tuple[Track, Track]:
    """``turns`` alternating turns (user first), 0.4 s apart, each party on its own clean channel."""
    waves = [
        (Role.USER if turn % 2 == 0 else Role.AGENT, utterances[turn % len(utterances)])
        for turn in range(turns)
    ]
    gap = round(0.4 * RATE_HZ)
    total = sum(len(wave) + gap for _, wave in waves) + gap
    tracks = {Role.USER: np.zeros(total, dtype=np.float32), Role.AGENT: np.zeros(total, dtype=np.float32)}
    start = gap
    for role, wave in waves:
        tracks[role][start : start + len(wave)] = wave * np.float32(0.7 if role is Role.AGENT else 1.0)
        start += len(wave) + gap
    return tracks[Role.USER], tracks[Role.AGENT]


def _db(signal: npt.NDArray[np.floating], reference: npt.NDArray[np.floating]) -> float:
    return 10.0 * float(
        np.log10(
            np.mean(np.square(signal, dtype=np.float64)) / np.mean(np.square(reference, dtype=np.float64))
        )
    )


def test_bleed_both_ways_is_subtracted_to_far_under_the_bleed(utterances: list[Track]) -> None:
    user, agent = _call(utterances)
    into_user, into_agent = _late(agent, 0.012, -10.0), _late(user, 0.021, -12.0)
    clean_user, clean_agent, (path_user, path_agent) = cancel_crosstalk(
        user + into_user, agent + into_agent, RATE_HZ, SETTINGS
    )
    assert path_user.applied and path_agent.applied
    assert abs(path_user.delay_samples - round(0.012 * RATE_HZ)) <= 1
    assert abs(path_agent.delay_samples - round(0.021 * RATE_HZ)) <= 1
    # What is left of each bleed lies at least 20 dB under the bleed itself, and the party's own voice
    # is untouched to within 20 dB too (no copy of it subtracted or added back).
    assert _db(clean_user - user, into_user) < -20.0
    assert _db(clean_agent - agent, into_agent) < -20.0


def test_without_bleed_the_channels_are_returned_as_they_are(utterances: list[Track]) -> None:
    user, agent = _call(utterances)
    rng = np.random.default_rng(3)
    user = user + rng.normal(0.0, 1e-3, len(user)).astype(np.float32)
    agent = agent + rng.normal(0.0, 1e-3, len(agent)).astype(np.float32)
    clean_user, clean_agent, paths = cancel_crosstalk(user, agent, RATE_HZ, SETTINGS)
    assert not any(path.applied for path in paths)
    assert clean_user is user and clean_agent is agent


def test_one_mix_on_both_channels_is_not_bleed(utterances: list[Track]) -> None:
    """A mono mix copied to both sides: subtracting would erase the call, so the path is refused."""
    user, agent = _call(utterances)
    mix = user + agent
    clean_first, clean_second, paths = cancel_crosstalk(mix, mix.copy(), RATE_HZ, SETTINGS)
    assert not any(path.applied for path in paths)
    assert np.array_equal(clean_first, mix)


def test_agreement_is_what_tells_a_real_path_from_chance(utterances: list[Track]) -> None:
    """With the agreement test off, two unrelated channels get a path; the test is what refuses it."""
    user, agent = _call(utterances)
    lax = replace(SETTINGS, min_agreement=-1.0)
    _, _, chance = cancel_crosstalk(user, agent, RATE_HZ, lax)
    assert all(path.applied for path in chance)
    _, _, paths = cancel_crosstalk(user, agent, RATE_HZ, SETTINGS)
    assert all(path.agreement < SETTINGS.min_agreement for path in paths)


@pytest.mark.parametrize("bleed_db", [-15.0, -10.0])
def test_loud_bleed_never_becomes_a_segment(utterances: list[Track], bleed_db: float) -> None:
    """Bleed this loud defeats the level rule alone (the crosstalk rule stops at 15 dB); subtracted,
    each channel's segments are its own party's, onsets and ends within 10 ms of the truth. Each
    microphone has its own hiss 60 dB down (digital silence would show the canceller's residue, some
    70 dB down, as sound above the -80 dB floor the gate falls back to)."""
    user, agent = _call(utterances)
    rng = np.random.default_rng(5)
    hiss = [rng.normal(0.0, 1e-3, len(user)).astype(np.float32) for _ in range(2)]
    audio = stereo(
        user + _late(agent, 0.012, bleed_db) + hiss[0], agent + _late(user, 0.021, bleed_db) + hiss[1]
    )
    speech = detect_speech(audio, VadParams(backend="webrtc"))
    for role, at_s, wave in ((Role.USER, USER_AT_S, utterances[0]), (Role.AGENT, AGENT_AT_S, utterances[2])):
        segments = speech[role].segments
        assert len(segments) == 1, (role, segments)
        assert abs(segments[0].start_s - at_s) <= 0.01
        assert abs(segments[0].end_s - (at_s + len(wave) / RATE_HZ)) <= 0.01
    without = detect_speech(audio, VadParams(backend="webrtc", echo_cancel=False))
    assert len(without[Role.USER].segments) + len(without[Role.AGENT].segments) > 2


def test_a_far_quieter_voice_on_a_channel_is_not_its_party(utterances: list[Track]) -> None:
    """A background talker 30 dB under the party's own voice, alone on the channel, is not a turn."""
    user, agent = _call(utterances)
    background = _place(utterances[1] * np.float32(10.0 ** (-30.0 / 20.0)), 4.0, len(user))
    audio = stereo(user + background, np.zeros_like(agent))
    kept = detect_speech(audio, VadParams(backend="webrtc"))[Role.USER].segments
    assert len(kept) == 1 and kept[0].start_s < 1.0
    lenient = detect_speech(audio, VadParams(backend="webrtc", own_level_db=60.0))[Role.USER].segments
    assert len(lenient) == 2


# A fit window far shorter than the dialogue below (about 40 s): the fit must find the bleed in the blocks it
# picks, not by hearing the whole call.
SHORT_FIT = replace(SETTINGS, search_s=1.0, fit_s=4.0)


@pytest.mark.parametrize("bleed_db", [-25.0, -15.0, -10.0])
@pytest.mark.parametrize("settings", [SETTINGS, SHORT_FIT], ids=["default", "short-fit"])
def test_bleed_on_a_long_call_is_never_left_in(
    utterances: list[Track], bleed_db: float, settings: EchoSettings
) -> None:
    user, agent = _dialogue(utterances, 16)
    assert len(user) / RATE_HZ > 6 * settings.fit_s or settings is SETTINGS
    rng = np.random.default_rng(11)
    hiss = [rng.normal(0.0, 1e-3, len(user)).astype(np.float32) for _ in range(2)]
    into_user, into_agent = _late(agent, 0.017, bleed_db), _late(user, 0.009, bleed_db)
    clean_user, clean_agent, (path_user, path_agent) = cancel_crosstalk(
        user + into_user + hiss[0], agent + into_agent + hiss[1], RATE_HZ, settings
    )
    assert path_user.applied and path_agent.applied
    assert abs(path_user.delay_samples - round(0.017 * RATE_HZ)) <= 1
    assert abs(path_agent.delay_samples - round(0.009 * RATE_HZ)) <= 1
    assert _db(clean_user - user - hiss[0], into_user) < -20.0
    assert _db(clean_agent - agent - hiss[1], into_agent) < -20.0


@pytest.mark.parametrize("settings", [SETTINGS, SHORT_FIT], ids=["default", "short-fit"])
def test_a_long_call_without_bleed_is_left_alone(utterances: list[Track], settings: EchoSettings) -> None:
    user, agent = _dialogue(utterances, 16)
    rng = np.random.default_rng(13)
    user = user + rng.normal(0.0, 1e-3, len(user)).astype(np.float32)
    agent = agent + rng.normal(0.0, 1e-3, len(agent)).astype(np.float32)
    clean_user, clean_agent, paths = cancel_crosstalk(user, agent, RATE_HZ, settings)
    assert not any(path.applied for path in paths)
    assert clean_user is user and clean_agent is agent


def _through(signal: Track, kernel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.convolve(signal.astype(np.float64), kernel)[: len(signal)]


def test_both_paths_are_divided_out_as_the_formula_says(utterances: list[Track]) -> None:
    """The overlap-save FFTs give ``(1 + L + L^2)(a - H b)`` as direct convolutions do, to float32
    precision, and one path alone is a plain subtraction that leaves the other channel as it is."""
    user, agent = _call(utterances)
    first, second = user + _late(agent, 0.03, -10.0), agent + _late(user, 0.05, -12.0)
    clean_first, clean_second, (into_first, into_second) = cancel_crosstalk(first, second, RATE_HZ, SETTINGS)
    kernels = []
    for path in (into_first, into_second):
        kernel = np.zeros(path.first_lag + len(path.taps))
        kernel[path.first_lag :] = path.taps
        kernels.append(kernel)
    loop = np.convolve(kernels[0], kernels[1])
    demix = np.zeros(2 * len(loop) - 1)
    demix[0] = 1.0
    demix[: len(loop)] += loop
    demix += np.convolve(loop, loop)
    expected_first = _through((first - _through(second, kernels[0])).astype(np.float32), demix)
    expected_second = _through((second - _through(first, kernels[1])).astype(np.float32), demix)
    assert _db(clean_first - expected_first, first) < -90.0
    assert _db(clean_second - expected_second, second) < -90.0

    one_way = user + _late(agent, 0.03, -10.0)
    clean_user, clean_agent, (into_user, into_agent) = cancel_crosstalk(one_way, agent, RATE_HZ, SETTINGS)
    assert into_user.applied and not into_agent.applied
    assert clean_agent is agent
    kernel = np.zeros(into_user.first_lag + len(into_user.taps))
    kernel[into_user.first_lag :] = into_user.taps
    assert _db(clean_user - (one_way - _through(agent, kernel)), one_way) < -90.0
