"""Labelled two-party calls for the turn-taking benchmarks: espeak-ng speech placed at exactly known times.

A detector can only be scored against truth that does not come from a detector. Every utterance here is
synthesised by espeak-ng, its leading and trailing silence is cut where the samples first and last reach
``TRIM_DB`` below the utterance's peak, and it is added to one party's channel at a chosen sample: the
truth onset and offset of that utterance are those two samples, whatever happens to the mix afterwards
(noise, bleed of the other party, a telephone channel). When an agent "yields" its utterance is cut at a
sample (with a short fade) and trimmed again, so the truth stop time also comes from the samples.

Everything is a pure function of ``(seed, kind, index)``: the same scenario comes out on every run and
machine that has the same espeak-ng, and any scenario can be rebuilt alone.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr  # type: ignore[import-untyped]

from convoscope.model import Role

__all__ = [
    "CONDITIONS",
    "KINDS",
    "RATE_HZ",
    "Scenario",
    "Truth",
    "build_call",
    "build_scenarios",
    "espeak_version",
    "write_stereo",
]

Track = npt.NDArray[np.float32]

RATE_HZ = 16000
"""Rate the scenes are composed at (the telephone variant is brought down to 8 kHz at the end)."""

TRIM_DB = -40.0
"""An utterance starts at its first sample and ends at its last sample within this many dB of its peak.
espeak-ng pads each utterance with near-digital silence, so -40 dB finds the first and last sound."""

PEAK = 0.5
"""Every utterance is scaled to this peak (about -6 dBFS), so the two parties are equally loud."""

FADE_S = 0.01
"""Raised-cosine fade applied where an utterance is cut (a yield), so the cut makes no click."""

USER_VOICE = "en-us"
AGENT_VOICE = "en-gb"
SPEED_WPM = 165

USER_PHRASES = (
    "I would like to change the delivery address for my last order",
    "Can you tell me when my package is going to arrive",
    "My card was charged twice for the same thing",
    "I need to cancel the appointment I made for Tuesday",
    "Is there any way to speak to a real person about this problem",
    "The number on my account is seven two nine four",
    "I have been waiting for the refund for almost three weeks now",
    "Could you send the confirmation to my email instead",
)
USER_SHORT = (
    "No no that is not what I asked for",
    "Wait hold on a second please",
    "Sorry but that is the wrong address",
    "Stop I already tried doing that",
)
"""Barge-ins the agent talks over: 1.3 s or longer, so they are clearly not backchannels (<= 1 s) to a
detector whose onset is a few tens of milliseconds off; the ambiguous 1 s band is left out on purpose."""
USER_RETRY = ("Hello are you still there", "Hello can you hear me")
AGENT_PHRASES = (
    "Of course I can help you with that, let me pull up your account details and check what we have on file",
    "Thanks for waiting, I can see the order here and it was shipped yesterday afternoon from our warehouse",
    "I understand how frustrating that must be, I am going to open a ticket with our billing team right away",
    "Your appointment is currently booked for Tuesday at ten in the morning with doctor Patel at the clinic",
    "I have updated the address on the order and you will receive a confirmation message in a few minutes",
    "Before we continue I need to verify your identity, could you please confirm your date of birth for me",
)
BACKCHANNELS = ("uh huh", "yeah", "okay", "mm hmm", "right")

KINDS = (
    "gap",
    "agent_interrupts",
    "barge_in_yield",
    "barge_in_no_yield",
    "backchannel",
    "long_silence",
    "dead_air",
)
"""Scenario kinds; each has one turn-taking event of interest, at the first onset of the party causing it."""

CONDITIONS = ("clean", "noise20", "noise10", "noise5", "bleed", "tel8k")
"""Channel conditions applied to every kind: white noise at 20/10/5 dB SNR (relative to speech), the agent's
voice bleeding into the user channel at -20..-30 dB, and an 8 kHz mu-law telephone band (300-3400 Hz)."""

NOISE_SNR_DB = {"noise20": 20.0, "noise10": 10.0, "noise5": 5.0}
BLEED_DB_RANGE = (-30.0, -20.0)
BLEED_DELAY_S_RANGE = (0.0, 0.015)
TELEPHONE_RATE_HZ = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU_LAW = 255.0
TELEPHONE_TAPS = 101


def espeak_version() -> str:
    """The espeak-ng build: the truth depends on its voices, so results name it."""
    binary = _espeak()
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip()


def _espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SystemExit("espeak-ng is required for the turn-taking benchmarks (apt-get install espeak-ng)")
    return binary


def _trim(wave: Track) -> Track:
    """Cut leading and trailing silence: keep first..last sample within TRIM_DB of the peak."""
    level = np.abs(wave)
    loud = np.flatnonzero(level >= float(level.max()) * 10.0 ** (TRIM_DB / 20.0))
    if not len(loud):
        return wave[:0]
    return wave[loud[0] : loud[-1] + 1]


@functools.cache
def _speak(text: str, voice: str, telephone: bool = False, rate_wpm: int = SPEED_WPM) -> Track:
    """espeak-ng's rendering of ``text`` at RATE_HZ, trimmed and scaled to PEAK (cached per run).

    With ``telephone`` the utterance is band-passed to the telephone band *before* it is trimmed: a
    fricative above 3.4 kHz ('th', 's') never reaches a caller, so the truth onset of a phone call is the
    first sound that survives the line, still found on the samples and not by any detector.
    """
    raw = subprocess.run(
        [_espeak(), "-v", voice, "-s", str(rate_wpm), "--stdout", text], capture_output=True, check=True
    ).stdout
    wave, rate = sf.read(io.BytesIO(raw), dtype="float32")
    wave = soxr.resample(wave, rate, RATE_HZ).astype(np.float32)
    if telephone:
        wave = _band_pass(wave, RATE_HZ, *TELEPHONE_BAND_HZ)
    wave = _trim(wave)
    return (PEAK * wave / float(np.abs(wave).max())).astype(np.float32)


def _cut(wave: Track, keep_s: float) -> Track:
    """The first ``keep_s`` of ``wave`` with a fade at the cut, re-trimmed so it ends on real sound."""
    keep = min(len(wave), max(1, round(keep_s * RATE_HZ)))
    head = wave[:keep].copy()
    fade = min(keep, round(FADE_S * RATE_HZ))
    head[keep - fade :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))).astype(np.float32)
    # The floor follows the utterance's own peak (PEAK for a fresh ``_speak``), so a scaled one cuts alike.
    loud = np.flatnonzero(np.abs(head) >= float(np.abs(wave).max()) * 10.0 ** (TRIM_DB / 20.0))
    return head[: loud[-1] + 1] if len(loud) else head[:0]


@dataclass(frozen=True, slots=True)
class Truth:
    """What happened in a scenario, in seconds, from the placed samples.

    ``interruptions`` are ``(interrupter, onset_s)``; ``response_gaps`` are ``(user_end_s, agent_start_s)``
    of agent turns answering a user turn; ``barge_ins`` are ``(user_onset_s, agent_stop_s or None)``, None
    when the agent talked on. ``single_response`` marks a scene with exactly one user turn and one agent
    reply, where every tool's notion of "response gap" is the same quantity.
    """

    user: tuple[tuple[float, float], ...]
    agent: tuple[tuple[float, float], ...]
    interruptions: tuple[tuple[Role, float], ...] = ()
    response_gaps: tuple[tuple[float, float], ...] = ()
    barge_ins: tuple[tuple[float, float | None], ...] = ()
    long_silences: int = 0
    unanswered: int = 0
    single_response: bool = False

    def utterances(self, role: Role) -> tuple[tuple[float, float], ...]:
        """The truth utterances of ``role``."""
        return self.user if role is Role.USER else self.agent


@dataclass(frozen=True, slots=True)
class Scenario:
    """One labelled two-channel clip: the tracks (at ``rate_hz``) and the truth."""

    name: str
    kind: str
    condition: str
    rate_hz: int
    user: Track = field(compare=False, repr=False)
    agent: Track = field(compare=False, repr=False)
    truth: Truth

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return len(self.user) / self.rate_hz


class _Scene:
    """Two tracks being composed, and the utterances placed on them."""

    def __init__(self) -> None:
        self.items: dict[Role, list[tuple[int, Track]]] = {Role.USER: [], Role.AGENT: []}

    def place(self, role: Role, wave: Track, start_s: float) -> tuple[float, float]:
        """Add ``wave`` to ``role``'s channel at ``start_s`` (rounded to a sample); its truth span."""
        first = round(start_s * RATE_HZ)
        self.items[role].append((first, wave))
        return first / RATE_HZ, (first + len(wave)) / RATE_HZ

    def render(self, duration_s: float) -> dict[Role, Track]:
        length = round(duration_s * RATE_HZ)
        tracks = {role: np.zeros(length, dtype=np.float32) for role in self.items}
        for role, items in self.items.items():
            for first, wave in items:
                tracks[role][first : first + len(wave)] += wave[: max(0, length - first)]
        return tracks

    def spans(self, role: Role) -> tuple[tuple[float, float], ...]:
        return tuple(
            sorted((first / RATE_HZ, (first + len(wave)) / RATE_HZ) for first, wave in self.items[role])
        )

    def truth(self, **labels: Any) -> Truth:
        """The scene's truth: the placed utterances of both parties, and what the scene says happened."""
        return Truth(self.spans(Role.USER), self.spans(Role.AGENT), **labels)


SCENE_LEAD_S = 0.5
"""Silence before the first speech of a scene."""
SCENE_TAIL_S = 1.0
"""Silence after the last speech of a scene."""


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


Say = Callable[[Sequence[str], str], Track]
"""Speak one phrase drawn from the options with the given voice (the scene's generator and channel)."""


def _long_agent(say: Say, min_s: float) -> Track:
    """An agent utterance at least ``min_s`` long (two phrases joined by a 0.12 s breath if needed)."""
    wave = say(AGENT_PHRASES, AGENT_VOICE)
    while len(wave) / RATE_HZ < min_s:
        breath = np.zeros(round(0.12 * RATE_HZ), dtype=np.float32)
        wave = np.concatenate([wave, breath, say(AGENT_PHRASES, AGENT_VOICE)])
    return wave


def _gap_s(rng: np.random.Generator) -> float:
    """A response gap drawn log-uniformly over 100 ms .. 4 s (human gaps to slow agents)."""
    return float(math.exp(rng.uniform(math.log(0.1), math.log(4.0))))


def _compose(kind: str, rng: np.random.Generator, *, telephone: bool = False) -> tuple[_Scene, float, Truth]:
    """The clean scene of one scenario kind, its duration and its truth (tracks untouched by conditions).

    The same generator state gives the same phrases and timings with or without ``telephone``; only the
    trimming of each utterance (and so the truth) follows what the telephone band lets through.
    """
    scene = _Scene()

    def say(options: Sequence[str], voice: str) -> Track:
        return _speak(_pick(rng, options), voice, telephone)

    user_phrase = say(USER_PHRASES, USER_VOICE)
    if kind == "gap":
        u = scene.place(Role.USER, user_phrase, SCENE_LEAD_S)
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, AGENT_VOICE), u[1] + _gap_s(rng))
        return (
            scene,
            a[1] + SCENE_TAIL_S,
            scene.truth(
                response_gaps=((u[1], a[0]),),
                single_response=True,
            ),
        )
    if kind == "agent_interrupts":
        user_wave = user_phrase
        user_s = len(user_wave) / RATE_HZ
        onset_s = SCENE_LEAD_S + rng.uniform(0.8, max(0.9, user_s - 1.0))
        if rng.random() < 0.5:  # the user yields to the agent
            user_wave = _cut(user_wave, onset_s - SCENE_LEAD_S + rng.uniform(0.3, 0.8))
        scene.place(Role.USER, user_wave, SCENE_LEAD_S)
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, AGENT_VOICE), onset_s)
        return (
            scene,
            a[1] + SCENE_TAIL_S,
            scene.truth(interruptions=((Role.AGENT, a[0]),)),
        )
    if kind in ("barge_in_yield", "barge_in_no_yield"):
        lead_s = rng.uniform(1.0, 2.5)
        agent_wave = _long_agent(say, lead_s + 4.0)
        if kind == "barge_in_yield":
            stop_after_s = rng.uniform(0.25, 1.2)
            agent_wave = _cut(agent_wave, lead_s + stop_after_s)
            user_wave = user_phrase
        else:
            user_wave = say(USER_SHORT, USER_VOICE)
        a = scene.place(Role.AGENT, agent_wave, SCENE_LEAD_S)
        u = scene.place(Role.USER, user_wave, SCENE_LEAD_S + lead_s)
        stop: float | None = a[1] if kind == "barge_in_yield" else None
        end_s = max(a[1], u[1]) + SCENE_TAIL_S
        return (
            scene,
            end_s,
            scene.truth(
                interruptions=((Role.USER, u[0]),),
                barge_ins=((u[0], stop),),
            ),
        )
    if kind == "backchannel":
        agent_wave = _long_agent(say, 3.5)
        a = scene.place(Role.AGENT, agent_wave, SCENE_LEAD_S)
        back = say(BACKCHANNELS, USER_VOICE)
        scene.place(Role.USER, back, SCENE_LEAD_S + rng.uniform(1.0, a[1] - a[0] - 1.5))
        end_s = a[1] + SCENE_TAIL_S
        if rng.random() < 0.5:  # and the agent backchannels during the user's next turn
            u = scene.place(Role.USER, user_phrase, a[1] + rng.uniform(0.3, 1.0))
            inside = u[0] + rng.uniform(0.6, max(0.7, u[1] - u[0] - 1.0))
            scene.place(Role.AGENT, say(BACKCHANNELS, AGENT_VOICE), inside)
            end_s = u[1] + SCENE_TAIL_S
        return scene, end_s, scene.truth()
    if kind == "long_silence":
        u = scene.place(Role.USER, user_phrase, SCENE_LEAD_S)
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, AGENT_VOICE), u[1] + rng.uniform(0.3, 1.0))
        u2 = scene.place(Role.USER, say(USER_PHRASES, USER_VOICE), a[1] + rng.uniform(10.5, 14.0))
        a2 = scene.place(Role.AGENT, say(AGENT_PHRASES, AGENT_VOICE), u2[1] + rng.uniform(0.3, 1.0))
        return (
            scene,
            a2[1] + SCENE_TAIL_S,
            scene.truth(
                response_gaps=((u[1], a[0]), (u2[1], a2[0])),
                long_silences=1,
            ),
        )
    if kind == "dead_air":
        u = scene.place(Role.USER, user_phrase, SCENE_LEAD_S)
        u2 = scene.place(Role.USER, say(USER_RETRY, USER_VOICE), u[1] + rng.uniform(11.0, 14.0))
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, AGENT_VOICE), u2[1] + rng.uniform(0.3, 1.0))
        return (
            scene,
            a[1] + SCENE_TAIL_S,
            scene.truth(
                response_gaps=((u2[1], a[0]),),
                long_silences=1,
                unanswered=1,
            ),
        )
    raise ValueError(f"unknown scenario kind {kind!r}; known: {', '.join(KINDS)}")


def _speech_rms(tracks: dict[Role, Track], truth: Truth) -> float:
    """RMS of the speech itself (over the truth spans of both parties), the reference of the SNR."""
    parts = [
        tracks[role][round(a * RATE_HZ) : round(b * RATE_HZ)]
        for role in (Role.USER, Role.AGENT)
        for a, b in truth.utterances(role)
    ]
    joined = np.concatenate(parts)
    return float(np.sqrt(np.mean(np.square(joined, dtype=np.float64))))


def _band_pass(track: Track, rate_hz: int, low_hz: float, high_hz: float) -> Track:
    """A linear-phase windowed-sinc band-pass (TELEPHONE_TAPS taps, Hamming), centred so it adds no delay.

    A telephone channel's filter rolls off over a few hundred hertz; an FFT brick wall instead would ring
    across the whole clip and smear every offset, which no real line does.
    """
    n = np.arange(TELEPHONE_TAPS) - (TELEPHONE_TAPS - 1) / 2.0
    window = np.hamming(TELEPHONE_TAPS)

    def low_pass(cutoff_hz: float) -> npt.NDArray[np.float64]:
        taps: npt.NDArray[np.float64] = 2.0 * cutoff_hz / rate_hz * np.sinc(2.0 * cutoff_hz / rate_hz * n)
        return taps * window

    taps = low_pass(high_hz) - low_pass(low_hz)
    return np.convolve(track.astype(np.float64), taps, mode="same").astype(np.float32)


def _mu_law(track: Track) -> Track:
    """8-bit mu-law companding and back, the quantisation of a G.711 telephone channel."""
    clipped = np.clip(track.astype(np.float64), -1.0, 1.0)
    encoded = np.sign(clipped) * np.log1p(MU_LAW * np.abs(clipped)) / math.log1p(MU_LAW)
    quantised = np.round(encoded * 127.0) / 127.0
    decoded = np.sign(quantised) * np.expm1(np.abs(quantised) * math.log1p(MU_LAW)) / MU_LAW
    return decoded.astype(np.float32)


def _apply(
    condition: str, tracks: dict[Role, Track], truth: Truth, rng: np.random.Generator
) -> tuple[dict[Role, Track], int]:
    """The tracks as recorded under ``condition`` and their sample rate; the truth does not move."""
    if condition == "clean":
        return tracks, RATE_HZ
    if condition in NOISE_SNR_DB:
        noise_rms = _speech_rms(tracks, truth) * 10.0 ** (-NOISE_SNR_DB[condition] / 20.0)
        return {
            role: (track + rng.standard_normal(len(track)) * noise_rms).astype(np.float32)
            for role, track in tracks.items()
        }, RATE_HZ
    if condition == "bleed":
        gain = 10.0 ** (rng.uniform(*BLEED_DB_RANGE) / 20.0)
        delay = round(rng.uniform(*BLEED_DELAY_S_RANGE) * RATE_HZ)
        echo = np.concatenate(
            [np.zeros(delay, dtype=np.float32), tracks[Role.AGENT][: len(tracks[Role.AGENT]) - delay]]
        )
        return {
            Role.USER: (tracks[Role.USER] + gain * echo).astype(np.float32),
            Role.AGENT: tracks[Role.AGENT],
        }, RATE_HZ
    if condition == "tel8k":
        out = {}
        for role, track in tracks.items():
            narrow = soxr.resample(track, RATE_HZ, TELEPHONE_RATE_HZ).astype(np.float32)
            out[role] = _mu_law(narrow)
        return out, TELEPHONE_RATE_HZ
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")


def _rng(seed: int, *parts: str | int) -> np.random.Generator:
    """A generator keyed by the seed and a name, independent of Python's string hashing."""
    key = [
        seed,
        *[sum(ord(c) * 31**i for i, c in enumerate(p)) % 2**32 if isinstance(p, str) else p for p in parts],
    ]
    return np.random.default_rng(key)


def build_scenarios(
    per_kind: int, *, seed: int = 7, kinds: Sequence[str] = KINDS, conditions: Sequence[str] = CONDITIONS
) -> Iterator[Scenario]:
    """``per_kind`` clean scenes of each kind, each recorded under every condition (same scene, new noise)."""
    for kind in kinds:
        for index in range(per_kind):
            composed = {
                telephone: _compose(kind, _rng(seed, kind, index), telephone=telephone)
                for telephone in {condition == "tel8k" for condition in conditions}
            }
            for condition in conditions:
                scene, duration_s, truth = composed[condition == "tel8k"]
                tracks, rate_hz = _apply(
                    condition, scene.render(duration_s), truth, _rng(seed, kind, index, condition)
                )
                yield Scenario(
                    name=f"{kind}-{index:02d}-{condition}",
                    kind=kind,
                    condition=condition,
                    rate_hz=rate_hz,
                    user=tracks[Role.USER],
                    agent=tracks[Role.AGENT],
                    truth=truth,
                )


def build_call(duration_s: float, *, seed: int = 11) -> dict[Role, Track]:
    """A stereo call of ``duration_s`` at RATE_HZ: alternating turns with gaps, barge-ins and backchannels.

    For the speed benchmark: scenes of the labelled set strung together, each starting one response gap
    (100 ms .. 4 s) after the previous one's last speech, so the line is rarely silent for long (someone
    speaks about half the time, the agent about twice as much as the user, as on a support line); a
    shortcut taken on silence gets no more help here than it would in production.
    """
    rng = _rng(seed, "call")
    scene = _Scene()
    t = 0.0
    while True:
        kind = ("gap", "gap", "barge_in_yield", "backchannel", "agent_interrupts")[int(rng.integers(5))]
        part, part_s, _ = _compose(kind, rng)
        if t + part_s > duration_s:
            break
        for role, items in part.items.items():
            for first, wave in items:
                scene.items[role].append((first + round(t * RATE_HZ), wave))
        # Each scene starts its speech SCENE_LEAD_S in and ends SCENE_TAIL_S after it.
        t += part_s - SCENE_TAIL_S - SCENE_LEAD_S + _gap_s(rng)
    return scene.render(duration_s)


def write_stereo(path: Path, scenario: Scenario) -> Path:
    """The scenario as a 16-bit PCM stereo WAV: channel 0 the user, channel 1 the agent."""
    stereo = np.stack([scenario.user, scenario.agent], axis=1)
    sf.write(path, np.clip(stereo, -1.0, 1.0), scenario.rate_hz, subtype="PCM_16")
    return path
