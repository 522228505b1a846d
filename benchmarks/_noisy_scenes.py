"""Labelled two-party calls under noise, crosstalk bleed and a telephone line, for the noise benchmark.

The labelled set of ``_speech.py`` is what the turn-taking rules were tuned on; a figure measured on it
says little about calls the rules never saw. This generator composes *other* calls: new phrases, spoken
by other espeak-ng voices (``en-us+f3``, ``en+m4``, ``en-gb-scotland`` ... for the caller; ``en-gb-x-rp+f2``,
``en-029`` ... for the agent) at several speaking rates, each party at its own level. The truth is taken
the same way as there and only from the composition: every utterance is trimmed where its samples first and
last reach ``TRIM_DB`` below its peak and placed at a chosen sample, so onsets, offsets, response gaps,
interruptions, barge-ins and the agent's stop are sample positions, never a detector's opinion.

Each clean scene is then recorded under every ``Condition``:

* **noise**: white, pink (1/f) or babble (4-6 other espeak talkers, each its own voice and phrases) at a
  given SNR *per channel*: the noise power is set against that channel's own speech power over its truth
  spans, so a quiet caller gets quieter noise and the SNR is what the channel really has;
* **bleed**: each channel picks up the other's speech 5-30 ms late, as a handset's acoustic echo or a
  headset's crosstalk would, at a given level relative to this channel's own speech power (measured like
  the SNR, so a caller quieter than the agent still gets the asked echo-to-speech ratio);
* **telephone**: 300-3400 Hz band, 8 kHz, 8-bit mu-law (G.711); as in ``_speech.py`` the utterances are
  band-passed before they are trimmed, because a fricative above 3.4 kHz never reaches the caller;
* combinations: bleed first (the echo is part of what the microphone hears), then noise, then the line.

Everything is a pure function of ``(seed, kind, index, condition)``. Scenes are written once into a cache
folder (16-bit stereo WAV, user left, agent right, with the truth beside as JSON), keyed by the generator
version, the seed and the espeak-ng build; nothing generated is committed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from _speech import (
    RATE_HZ,
    TELEPHONE_BAND_HZ,
    TELEPHONE_RATE_HZ,
    Scenario,
    Truth,
    _band_pass,
    _cut,
    _mu_law,
    _rng,
    _Scene,
    espeak_version,
    write_stereo,
)
from _speech import (
    _speak as _speech_speak,
)
from convoscope.model import Role

__all__ = [
    "CONDITIONS",
    "GENERATOR_VERSION",
    "KINDS",
    "CachedScene",
    "Condition",
    "build_noisy_scenarios",
    "cached_scenes",
    "degrade",
    "speech_rms",
]

Track = npt.NDArray[np.float32]

GENERATOR_VERSION = "noisy-2"
"""Part of the cache key: bump it whenever a change here would change a scene."""

PEAK = 0.5
"""Utterances are rendered at this peak and then scaled by their party's level (``LEVEL_DB``)."""
LEVEL_DB = {Role.USER: (-9.0, 0.0), Role.AGENT: (-4.0, 0.0)}
"""Each party's level in a scene, drawn in this range (dB on PEAK): callers are often quieter than the
agent's TTS. SNR and bleed are set per channel against its own speech, so the level acts only through the
absolute level (the noise floor a detector sees, the mu-law steps)."""
FADE_S = 0.01
"""Raised-cosine fade where a yielding agent is cut, so the cut makes no click."""

USER_VOICES = ("en-us+f3", "en+m4", "en-gb-scotland", "en-us-nyc")
AGENT_VOICES = ("en-gb-x-rp+f2", "en-029", "en+f4", "en-gb-x-gbcwmd")
BABBLE_VOICES = ("en-gb-x-gbclan", "en+m2", "en-us+f1", "en+m6", "en-gb+f5", "en-029+m1", "en-us+m3")
USER_RATES_WPM = (150, 172, 190)
AGENT_RATES_WPM = (158, 176, 188)
BABBLE_RATE_WPM = 170

USER_PHRASES = (
    "Hi there I am calling about the bill I got in the mail this morning",
    "I moved last month and I need to update where my statements are sent",
    "The internet at my house keeps dropping out every evening around seven",
    "Can I get a quote for adding my daughter to the family plan",
    "I tried to log in to the portal but it says my password expired",
    "Someone from your office left me a voicemail about a missed payment",
    "We ordered a replacement part two weeks ago and it still has not shipped",
    "I would like to move my cleaning to a Friday if you have anything open",
)
USER_SHORT = (
    "Hang on that is not the plan I signed up for",
    "Excuse me I already gave you that number twice",
    "No wait I said Thursday not Tuesday",
    "Sorry can you slow down a little bit please",
)
"""Barge-ins the agent talks over: long enough (checked at the fastest rate) never to pass for a
backchannel, whose limit is 1 s."""
AGENT_PHRASES = (
    "Thank you for holding, I can see two open tickets on your account and I will go through both with you",
    "That plan includes unlimited calls and texts, and the data allowance resets on the first of every month",
    "I am sorry to hear that, I have booked a technician visit and you will receive a text with the window",
    "Your current balance is forty two dollars, and the next payment is due on the fifteenth of this month",
    "Let me transfer the request to our shipping team, they usually reply within one business day by email",
    "For security reasons I will send a one time code to the phone number we have on file for you right now",
)
BACKCHANNELS = ("mhm", "sure", "I see", "got it", "ah okay")
BABBLE_PHRASES = (
    "did you see the game last night it went to overtime",
    "the printer on the third floor is jammed again",
    "we should order lunch before the meeting starts",
    "my flight got moved to the afternoon so I will be late",
    "she said the report is due at the end of the week",
    "can you pass me the charger it is on your desk",
    "the traffic on the bridge was terrible this morning",
    "I think the new schedule starts on Monday",
    "they are painting the kitchen so we are eating out",
    "remember to bring the forms signed by your manager",
)

KINDS = ("gap", "agent_interrupts", "barge_in_yield", "barge_in_no_yield", "backchannel", "long_silence")
"""Scene kinds; each carries one labelled turn-taking event (``long_silence`` two replies and dead air)."""

BLEED_DELAY_S_RANGE = (0.005, 0.03)
PINK_MIN_HZ = 20.0
"""Pink noise is flat below this frequency (1/f would put unbounded power at DC)."""
BABBLE_TALKERS = (4, 6)
BABBLE_PAUSE_S = (0.05, 0.35)


@dataclass(frozen=True, slots=True)
class Condition:
    """How a clean scene is recorded: noise (kind and SNR), bleed level, and/or a telephone line."""

    name: str
    noise: str | None = None
    """``white``, ``pink`` or ``babble``."""
    snr_db: float | None = None
    bleed_db: float | None = None
    """Level of the other party's speech in this channel, dB relative to this channel's own speech."""
    telephone: bool = False


def _conditions() -> tuple[Condition, ...]:
    out = [Condition("clean")]
    for noise in ("white", "pink", "babble"):
        out += [Condition(f"{noise}{snr}", noise=noise, snr_db=float(snr)) for snr in (20, 10, 5)]
    out += [Condition(f"bleed{-db}", bleed_db=float(db)) for db in (-25, -15, -10)]
    out += [
        Condition("tel8k", telephone=True),
        Condition("white10-bleed15", noise="white", snr_db=10.0, bleed_db=-15.0),
        Condition("babble10-bleed15", noise="babble", snr_db=10.0, bleed_db=-15.0),
        Condition("pink5-bleed25", noise="pink", snr_db=5.0, bleed_db=-25.0),
        Condition("tel8k-babble10", noise="babble", snr_db=10.0, telephone=True),
    ]
    return tuple(out)


CONDITIONS: tuple[Condition, ...] = _conditions()
CONDITION_NAMES = tuple(c.name for c in CONDITIONS)


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice (language plus variant), its rate, and the party's level in the scene."""

    name: str
    rate_wpm: int
    gain: float = 1.0


def _speak(text: str, voice: str, rate_wpm: int, telephone: bool = False) -> Track:
    """The shared espeak-ng rendering (``_speech``), at this scene's speaking rate."""
    return _speech_speak(text, voice, telephone, rate_wpm)


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _compose(kind: str, rng: np.random.Generator, *, telephone: bool = False) -> tuple[_Scene, float, Truth]:
    """The clean scene of ``kind``: placed utterances, its duration and its truth.

    The same generator state gives the same voices, phrases and timings with or without ``telephone``;
    only the trim of each utterance (so the truth) follows what the telephone band lets through.
    """
    scene = _Scene()
    user = Voice(
        _pick(rng, USER_VOICES), _pick(rng, USER_RATES_WPM), 10.0 ** (rng.uniform(*LEVEL_DB[Role.USER]) / 20)
    )
    agent = Voice(
        _pick(rng, AGENT_VOICES),
        _pick(rng, AGENT_RATES_WPM),
        10.0 ** (rng.uniform(*LEVEL_DB[Role.AGENT]) / 20),
    )

    def say(options: Sequence[str], voice: Voice) -> Track:
        wave = _speak(_pick(rng, options), voice.name, voice.rate_wpm, telephone)
        return (wave * voice.gain).astype(np.float32)

    def long_agent(min_s: float) -> Track:
        wave = say(AGENT_PHRASES, agent)
        while len(wave) / RATE_HZ < min_s:
            breath = np.zeros(round(0.15 * RATE_HZ), dtype=np.float32)
            wave = np.concatenate([wave, breath, say(AGENT_PHRASES, agent)])
        return wave

    lead_s, tail_s = rng.uniform(0.4, 0.9), 1.0
    user_phrase = say(USER_PHRASES, user)
    if kind == "gap":
        u = scene.place(Role.USER, user_phrase, lead_s)
        gap_s = float(math.exp(rng.uniform(math.log(0.15), math.log(3.0))))
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, agent), u[1] + gap_s)
        return scene, a[1] + tail_s, scene.truth(response_gaps=((u[1], a[0]),), single_response=True)
    if kind == "agent_interrupts":
        user_s = len(user_phrase) / RATE_HZ
        onset_s = lead_s + rng.uniform(0.7, max(0.8, user_s - 0.9))
        wave = user_phrase
        if rng.random() < 0.5:  # the user gives way
            wave = _cut(wave, onset_s - lead_s + rng.uniform(0.35, 0.9))
        scene.place(Role.USER, wave, lead_s)
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, agent), onset_s)
        return scene, a[1] + tail_s, scene.truth(interruptions=((Role.AGENT, a[0]),))
    if kind in ("barge_in_yield", "barge_in_no_yield"):
        into_s = rng.uniform(0.8, 2.5)
        agent_wave = long_agent(into_s + 4.0)
        if kind == "barge_in_yield":
            agent_wave = _cut(agent_wave, into_s + rng.uniform(0.3, 1.0))
            user_wave = user_phrase
        else:
            user_wave = say(USER_SHORT, user)
        a = scene.place(Role.AGENT, agent_wave, lead_s)
        u = scene.place(Role.USER, user_wave, lead_s + into_s)
        stop = a[1] if kind == "barge_in_yield" else None
        return (
            scene,
            max(a[1], u[1]) + tail_s,
            scene.truth(interruptions=((Role.USER, u[0]),), barge_ins=((u[0], stop),)),
        )
    if kind == "backchannel":
        a = scene.place(Role.AGENT, long_agent(3.5), lead_s)
        scene.place(Role.USER, say(BACKCHANNELS, user), lead_s + rng.uniform(0.9, a[1] - a[0] - 1.4))
        end_s = a[1] + tail_s
        if rng.random() < 0.5:  # the agent backchannels inside the caller's next turn too
            u = scene.place(Role.USER, user_phrase, a[1] + rng.uniform(0.4, 1.1))
            inside = u[0] + rng.uniform(0.6, max(0.7, u[1] - u[0] - 1.0))
            scene.place(Role.AGENT, say(BACKCHANNELS, agent), inside)
            end_s = u[1] + tail_s
        return scene, end_s, scene.truth()
    if kind == "long_silence":
        u = scene.place(Role.USER, user_phrase, lead_s)
        a = scene.place(Role.AGENT, say(AGENT_PHRASES, agent), u[1] + rng.uniform(0.25, 1.2))
        u2 = scene.place(Role.USER, say(USER_PHRASES, user), a[1] + rng.uniform(10.5, 13.0))
        a2 = scene.place(Role.AGENT, say(AGENT_PHRASES, agent), u2[1] + rng.uniform(0.25, 1.2))
        return (
            scene,
            a2[1] + tail_s,
            scene.truth(response_gaps=((u[1], a[0]), (u2[1], a2[0])), long_silences=1),
        )
    raise ValueError(f"unknown scene kind {kind!r}; known: {', '.join(KINDS)}")


# --- conditions ----------------------------------------------------------------------------------------


def speech_rms(track: Track, spans: Sequence[tuple[float, float]], rate_hz: int = RATE_HZ) -> float:
    """RMS of ``track`` over the truth spans of its own party: the reference of that channel's SNR."""
    parts = [track[round(a * rate_hz) : round(b * rate_hz)] for a, b in spans]
    joined = np.concatenate(parts) if parts else np.zeros(1, dtype=np.float32)
    return float(np.sqrt(np.mean(np.square(joined, dtype=np.float64))))


def _pink(length: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Gaussian noise shaped to 1/f power (flat below PINK_MIN_HZ)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length, 1.0 / RATE_HZ)
    spectrum /= np.sqrt(np.maximum(freqs, PINK_MIN_HZ))
    return np.fft.irfft(spectrum, n=length)


def _babble(length: int, rng: np.random.Generator, telephone: bool) -> npt.NDArray[np.float64]:
    """4-6 other talkers, each a stream of phrases with short pauses, equally loud, summed."""
    talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    voices = rng.permutation(len(BABBLE_VOICES))[:talkers]
    mix = np.zeros(length, dtype=np.float64)
    for v in voices:
        pieces: list[npt.NDArray[np.float32]] = []
        filled = -int(rng.integers(0, 2 * RATE_HZ))  # each talker starts somewhere inside a phrase
        while filled < length:
            wave = _speak(_pick(rng, BABBLE_PHRASES), BABBLE_VOICES[int(v)], BABBLE_RATE_WPM, telephone)
            pause = np.zeros(round(rng.uniform(*BABBLE_PAUSE_S) * RATE_HZ), dtype=np.float32)
            pieces += [wave, pause]
            filled += len(wave) + len(pause)
        stream = np.concatenate(pieces).astype(np.float64)[-length:]
        mix += stream / float(np.sqrt(np.mean(np.square(stream))))
    return mix


def _noise(kind: str, length: int, rng: np.random.Generator, telephone: bool) -> npt.NDArray[np.float64]:
    if kind == "white":
        return rng.standard_normal(length)
    if kind == "pink":
        return _pink(length, rng)
    if kind == "babble":
        return _babble(length, rng, telephone)
    raise ValueError(f"unknown noise {kind!r}; known: white, pink, babble")


def _delayed(track: Track, delay: int) -> npt.NDArray[np.float64]:
    return np.concatenate([np.zeros(delay), track[: len(track) - delay].astype(np.float64)])


def degrade(
    condition: Condition, tracks: dict[Role, Track], truth: Truth, rng: np.random.Generator
) -> tuple[dict[Role, Track], int]:
    """The clean tracks as recorded under ``condition`` and their sample rate; the truth does not move.

    Bleed first: each channel hears the other 5-30 ms late, its speech ``bleed_db`` relative to this
    channel's own speech (both RMS over their truth spans, like the SNR, so the level says how hard the
    channel is whatever the two parties' levels). Then noise scaled to ``snr_db`` under that channel's own
    speech RMS (measured on the clean track), then the line.
    """
    out = {role: track.astype(np.float64) for role, track in tracks.items()}
    if condition.bleed_db is not None:
        levels = {role: speech_rms(tracks[role], truth.utterances(role)) for role in tracks}
        for role, other in ((Role.USER, Role.AGENT), (Role.AGENT, Role.USER)):
            gain = levels[role] / levels[other] * 10.0 ** (condition.bleed_db / 20.0)
            delay = round(rng.uniform(*BLEED_DELAY_S_RANGE) * RATE_HZ)
            out[role] = out[role] + gain * _delayed(tracks[other], delay)
    if condition.noise is not None and condition.snr_db is not None:
        for role in (Role.USER, Role.AGENT):
            noise = _noise(condition.noise, len(tracks[role]), rng, condition.telephone)
            target = speech_rms(tracks[role], truth.utterances(role)) * 10.0 ** (-condition.snr_db / 20.0)
            out[role] = out[role] + noise * (target / float(np.sqrt(np.mean(np.square(noise)))))
    if not condition.telephone:
        return {role: track.astype(np.float32) for role, track in out.items()}, RATE_HZ
    line: dict[Role, Track] = {}
    for role, track in out.items():
        band = _band_pass(track.astype(np.float32), RATE_HZ, *TELEPHONE_BAND_HZ)
        line[role] = _mu_law(soxr.resample(band, RATE_HZ, TELEPHONE_RATE_HZ).astype(np.float32))
    return line, TELEPHONE_RATE_HZ


def _condition(name: str) -> Condition:
    for condition in CONDITIONS:
        if condition.name == name:
            return condition
    raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITION_NAMES)}")


def build_noisy_scenarios(
    per_kind: int,
    *,
    seed: int = 23,
    kinds: Sequence[str] = KINDS,
    conditions: Sequence[str] = CONDITION_NAMES,
    first_index: int = 0,
) -> Iterator[tuple[Scenario, dict[Role, Track]]]:
    """Each scene under each condition, with the clean tracks it was made from (for checks).

    ``per_kind`` scenes of each kind, indices ``first_index`` onward; every condition records the same
    scene with its own noise draw.
    """
    for kind in kinds:
        for index in range(first_index, first_index + per_kind):
            composed = {
                telephone: _compose(kind, _rng(seed, "noisy", kind, index), telephone=telephone)
                for telephone in {_condition(name).telephone for name in conditions}
            }
            for name in conditions:
                condition = _condition(name)
                scene, duration_s, truth = composed[condition.telephone]
                clean = scene.render(duration_s)
                tracks, rate_hz = degrade(condition, clean, truth, _rng(seed, "noisy", kind, index, name))
                yield (
                    Scenario(
                        name=f"{kind}-{index:02d}-{name}",
                        kind=kind,
                        condition=name,
                        rate_hz=rate_hz,
                        user=tracks[Role.USER],
                        agent=tracks[Role.AGENT],
                        truth=truth,
                    ),
                    clean,
                )


# --- cache ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedScene:
    """A scene written to the cache: its WAV (user left, agent right) and its truth."""

    name: str
    kind: str
    condition: str
    path: Path
    truth: Truth
    duration_s: float


def _truth_to_json(truth: Truth) -> dict[str, Any]:
    return {
        "user": truth.user,
        "agent": truth.agent,
        "interruptions": [(role.value, onset) for role, onset in truth.interruptions],
        "response_gaps": truth.response_gaps,
        "barge_ins": truth.barge_ins,
        "long_silences": truth.long_silences,
        "unanswered": truth.unanswered,
        "single_response": truth.single_response,
    }


def _truth_from_json(data: dict[str, Any]) -> Truth:
    return Truth(
        user=tuple((a, b) for a, b in data["user"]),
        agent=tuple((a, b) for a, b in data["agent"]),
        interruptions=tuple((Role(role), onset) for role, onset in data["interruptions"]),
        response_gaps=tuple((a, b) for a, b in data["response_gaps"]),
        barge_ins=tuple((a, b) for a, b in data["barge_ins"]),
        long_silences=data["long_silences"],
        unanswered=data["unanswered"],
        single_response=data["single_response"],
    )


def cache_folder(root: Path, seed: int) -> Path:
    """Where the scenes of ``seed`` live under ``root``: keyed by the generator and the espeak-ng build."""
    build = hashlib.sha256(espeak_version().encode()).hexdigest()[:8]
    return root / f"{GENERATOR_VERSION}-seed{seed}-espeak{build}"


def cached_scenes(
    root: Path,
    per_kind: int,
    *,
    seed: int = 23,
    kinds: Sequence[str] = KINDS,
    conditions: Sequence[str] = CONDITION_NAMES,
) -> Iterator[CachedScene]:
    """Every scene of the set, from the cache where present, generated and written there where not.

    A scene whose WAV or truth is missing is generated alone (scenes are independent), so an interrupted
    run resumes and a larger ``per_kind`` reuses the smaller run's files.
    """
    folder = cache_folder(root, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        for index in range(per_kind):
            for name in conditions:
                stem = f"{kind}-{index:02d}-{name}"
                wav, meta = folder / f"{stem}.wav", folder / f"{stem}.json"
                if not (wav.exists() and meta.exists()):
                    for scenario, _ in build_noisy_scenarios(
                        1, seed=seed, kinds=(kind,), conditions=(name,), first_index=index
                    ):
                        write_stereo(wav.with_suffix(".tmp.wav"), scenario)
                        wav.with_suffix(".tmp.wav").replace(wav)
                        meta.write_text(
                            json.dumps(
                                {"duration_s": scenario.duration_s, "truth": _truth_to_json(scenario.truth)}
                            )
                        )
                data = json.loads(meta.read_text())
                yield CachedScene(
                    name=stem,
                    kind=kind,
                    condition=name,
                    path=wav,
                    truth=_truth_from_json(data["truth"]),
                    duration_s=float(data["duration_s"]),
                )
