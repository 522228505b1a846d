"""The conditions a simulated caller calls from: background noise at a set SNR, and a lossy, jittery network.

**Noise beds.** Every bed is a loop buffer of :data:`LOOP_SECONDS` of audio at unit RMS, built once per
(kind, variant) and shared, so that feeding 20 ms of noise to each of hundreds of concurrent calls is a
slice copy. Synthetic beds (white, pink, brown, street, office) are made periodic by construction: the
coloured noise is shaped in the frequency domain over exactly one loop (an inverse FFT is circular), slow
level swells complete a whole number of cycles per loop, and sound events (passing cars, key clicks) wrap
around its end. Beds cut from material that is not periodic (babble, a recording) are looped with an
equal-power crossfade of their tail into their head, so there is no click at the loop point. A call's
``seed`` picks one of :data:`NOISE_VARIANTS` buffers and a start offset into it: every seed gives its own
stream, while memory stays bounded however many calls run.

**SNR.** The SNR of a noisy caller is the caller's *active speech level* over the noise bed's long-term
RMS. The active level is the RMS over the 20 ms frames whose mean power is within
:data:`ACTIVE_RANGE_DB` (30 dB) of the loudest frame: pauses between words and silences between turns
are left out, so a hesitant caller (long pauses) and a brisk one at the same loudness get the same noise
level for the same SNR. It is a simplified ITU-T P.56 active level (no hangover, the threshold relative
to the loudest frame rather than an adaptive envelope), which is sufficient for synthetic speech whose
loudness is steady. The noise gain is then ``speech_level / 10 ** (snr_db / 20)``, applied to the
unit-RMS bed. :func:`measure_snr` inverts this on a recording: noise power from the samples outside
speech, speech power as the power during speech minus that noise power.

**Network.** Frame loss follows the simple Gilbert model, the two-state Gilbert-Elliott chain in which
the Good state never loses a frame and the Bad state always does (netem's ``loss gemodel p r 1 0``).
With long-run loss rate ``π = loss_pct / 100`` and mean burst ``B = burst_frames``, the chain leaves Bad
with probability ``r = 1 / B`` per frame (burst lengths are geometric with mean B) and enters it with
``p = π r / (1 - π)`` (the stationary Bad probability ``p / (p + r)`` is then π). ``B = 1`` never loses
two frames in a row, the nearest this model gets to independent loss; ``p <= 1`` for every ``B >= 1``
as long as ``π <= 50 %``, which is why the loss rate is capped there. Jitter delays each frame's send by
``max(u, previous delay - 20 ms)`` with ``u`` uniform in ``[0, jitter_ms]``: the delay stays in that
range, and a frame never arrives before the one sent before it, because a media stream over TCP (a
WebSocket) reorders nothing; it only bunches frames up.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr  # type: ignore[import-untyped]

from ...errors import ConvoscopeError
from .codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Pcm
from .speech import VoiceSpec, render_speech

__all__ = [
    "ACTIVE_RANGE_DB",
    "DEFAULT_SNR_DB",
    "LOOP_SECONDS",
    "MAX_JITTER_MS",
    "MAX_LOSS_PCT",
    "MAX_SNR_DB",
    "MIN_SNR_DB",
    "NOISE_KINDS",
    "NOISE_VARIANTS",
    "ConditionsError",
    "FrameFate",
    "Impairer",
    "Mixer",
    "NetworkSpec",
    "NoiseBed",
    "NoiseSpec",
    "Samples",
    "active_speech_mask",
    "calibration_level",
    "measure_snr",
    "noise_gain",
    "parse_network",
    "parse_noise",
    "reference_level",
    "speech_level",
]

Samples = npt.NDArray[np.float32]
"""Floating-point audio at 8 kHz (noise beds are at unit RMS)."""

_Audio = npt.NDArray[np.int16] | npt.NDArray[np.floating[Any]]

NOISE_KINDS = ("white", "pink", "brown", "babble", "street", "office")
"""Synthetic noise kinds; a recording is ``file:PATH``."""
DEFAULT_SNR_DB = 20.0
"""SNR of a noise given without one: clearly noisy, still easy to understand."""
MIN_SNR_DB = -5.0
"""Below this the noise drowns the caller for any listener, human or machine."""
MAX_SNR_DB = 60.0
"""Above this the noise is below what μ-law can even represent under speech."""
LOOP_SECONDS = 20
"""Length of a synthetic bed's loop: long enough that no listener hears it repeat within a turn."""
NOISE_VARIANTS = 8
"""Distinct loop buffers per synthetic kind; seeds beyond share a buffer at different offsets."""
ACTIVE_RANGE_DB = 30.0
"""Frames within this many dB of the loudest frame count as active speech."""
MAX_LOSS_PCT = 50.0
"""Highest long-run frame loss (see the module docstring for why the model stops here)."""
MAX_JITTER_MS = 500.0
"""Highest jitter: beyond half a second a call is broken, not impaired."""

_LOOP = LOOP_SECONDS * SAMPLE_RATE
_FADE = SAMPLE_RATE // 2
_FILE_MAX_SECONDS = 60
_FRAME_S = FRAME_MS / 1000
_CALIBRATION_TEXT = (
    "Hello, I am calling about my account. Could you help me with a question about my last bill?"
)


class ConditionsError(ConvoscopeError, ValueError):
    """A noise or network condition that cannot be applied: an unknown kind, a value out of range, a
    noise file that is missing or not audio. A ``ValueError`` too, so it reads as bad input wherever a
    persona is validated."""

    kind = "voice_conditions_error"


# ------------------------------------------------------------------------------------------------ noise


@dataclass(frozen=True)
class NoiseSpec:
    """Background noise for a caller: a bed ``kind`` (or ``"file"`` with ``path``) at ``snr_db``."""

    kind: str
    snr_db: float = DEFAULT_SNR_DB
    path: Path | None = None
    """The recording of a ``file`` noise (absolute from :func:`parse_noise`; a relative one is resolved
    against the ``base_dir`` given to :class:`NoiseBed`)."""

    def __post_init__(self) -> None:
        if self.kind == "file":
            if self.path is None or not str(self.path):
                raise ConditionsError("noise kind 'file' needs a path: file:PATH[:SNR_DB]")
        elif self.kind in NOISE_KINDS:
            if self.path is not None:
                raise ConditionsError(f"noise kind {self.kind!r} takes no path")
        else:
            raise ConditionsError(_unknown_kind(self.kind))
        _check_snr(self.snr_db, f"noise {self.kind!r}")

    def __str__(self) -> str:
        head = f"file:{self.path}" if self.kind == "file" else self.kind
        return f"{head}:{self.snr_db:g}"


def _unknown_kind(kind: str) -> str:
    return f"unknown noise kind {kind!r}: expected one of {', '.join(NOISE_KINDS)}, or file:PATH"


def _check_snr(snr_db: float, where: str) -> None:
    if not math.isfinite(snr_db) or not MIN_SNR_DB <= snr_db <= MAX_SNR_DB:
        raise ConditionsError(f"{where}: SNR {snr_db:g} dB is outside {MIN_SNR_DB:g}..{MAX_SNR_DB:g} dB")


def _parse_snr(text: str, raw: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConditionsError(f"noise {raw!r}: SNR {text!r} is not a number of dB") from None
    if not math.isfinite(value):
        raise ConditionsError(f"noise {raw!r}: SNR {text!r} is not a number of dB")
    _check_snr(value, f"noise {raw!r}")
    return value


def _resolve(path: Path, base_dir: Path | None) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def parse_noise(text: str, *, base_dir: Path | None = None) -> NoiseSpec:
    """A persona's noise setting: ``KIND[:SNR_DB]`` or ``file:PATH[:SNR_DB]``, SNR default 20 dB.

    A file's path may itself contain colons: if ``PATH:X`` names an existing file it is the path,
    otherwise the text after the last colon is the SNR. The file is opened and decoded here, so that a
    missing, unreadable, empty or silent recording is reported when the persona is validated, not when a
    call is already connected. ``base_dir`` resolves a relative path (the persona file's folder; the
    working directory by default), and the spec holds the resolved path: the file that was checked is
    the file that is played, wherever the simulator runs from.
    """
    raw = text.strip()
    if not raw:
        raise ConditionsError("noise is empty: expected KIND[:SNR_DB] or file:PATH[:SNR_DB]")
    head, sep, rest = raw.partition(":")
    kind = head.strip().lower()
    if kind == "file":
        path_text, snr_text = rest, None
        if ":" in rest and not _resolve(Path(rest), base_dir).is_file():
            path_text, snr_text = rest.rsplit(":", 1)
        if not path_text.strip():
            raise ConditionsError(f"noise {raw!r}: file:PATH needs a path")
        snr = DEFAULT_SNR_DB if snr_text is None else _parse_snr(snr_text.strip(), raw)
        path = _resolve(Path(path_text), base_dir)
        _load_file(path)
        return NoiseSpec("file", snr, path)
    if kind not in NOISE_KINDS:
        raise ConditionsError(_unknown_kind(head.strip()))
    if ":" in rest:
        raise ConditionsError(f"noise {raw!r}: expected KIND[:SNR_DB], got more than one ':'")
    snr = _parse_snr(rest.strip(), raw) if sep else DEFAULT_SNR_DB
    return NoiseSpec(kind, snr)


class NoiseBed:
    """One call's endless noise stream: consecutive :meth:`next` calls continue it without a seam."""

    def __init__(self, spec: NoiseSpec, seed: int = 0, *, base_dir: Path | None = None) -> None:
        self.spec = spec
        if spec.kind == "file":
            assert spec.path is not None
            self._loop = _load_file(_resolve(spec.path, base_dir))
        else:
            self._loop = _synthetic(spec.kind, seed % NOISE_VARIANTS)
        start = np.random.SeedSequence([seed % 2**64, 0x6E6F_6973]).generate_state(1, np.uint64)[0]
        self._pos = int(start % len(self._loop))

    @property
    def loop_samples(self) -> int:
        """Length of the loop the stream repeats."""
        return len(self._loop)

    @property
    def loop_position(self) -> int:
        """Where in the loop the next sample comes from (the loop point is at 0)."""
        return self._pos

    def next(self, samples: int) -> Samples:
        """The next ``samples`` of the stream (a fresh array the caller may modify)."""
        if samples < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        size = len(self._loop)
        start = self._pos
        self._pos = (start + samples) % size
        if start + samples <= size:
            return self._loop[start : start + samples].copy()
        return np.take(self._loop, np.arange(start, start + samples) % size)


def _unit_rms(x: npt.NDArray[np.float64]) -> Samples:
    rms = math.sqrt(float(np.mean(np.square(x))))
    out = (x / rms).astype(np.float32)
    out.setflags(write=False)
    return out


def _crossfade_loop(x: npt.NDArray[np.float64], fade: int) -> npt.NDArray[np.float64]:
    """``x`` less its last ``fade`` samples, which are faded into its head (equal power, as the two are
    uncorrelated noise): the loop's last sample is followed by what followed it in ``x``."""
    size = len(x) - fade
    y = x[:size].copy()
    if fade > 0:
        t = (np.arange(fade) + 0.5) / fade
        y[:fade] = x[:fade] * np.sin(0.5 * np.pi * t) + x[size:] * np.cos(0.5 * np.pi * t)
    return y


def _rng(kind: str, variant: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(kind.encode()), variant]))


def _shaped(
    rng: np.random.Generator, size: int, exponent: float, low_hz: float, high_hz: float | None = None
) -> npt.NDArray[np.float64]:
    """Gaussian noise with power ∝ f^-exponent above ``low_hz`` (flat below, no DC), optionally rolled
    off above ``high_hz``; periodic over ``size`` samples, so it loops seamlessly."""
    freqs = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    spectrum = rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))
    amplitude = np.maximum(freqs, low_hz) ** (-exponent / 2)
    if high_hz is not None:
        amplitude /= 1 + (freqs / high_hz) ** 2
    amplitude[0] = 0.0
    x = np.fft.irfft(spectrum * amplitude, size)
    return x / math.sqrt(float(np.mean(np.square(x))))


def _lowpass(x: npt.NDArray[np.float64], corner_hz: float) -> npt.NDArray[np.float64]:
    """Circular (so a periodic signal stays periodic) second-order-like low-pass."""
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    return np.fft.irfft(np.fft.rfft(x) / (1 + (freqs / corner_hz) ** 2), len(x))


def _wrap_add(bed: npt.NDArray[np.float64], start: int, event: npt.NDArray[np.float64]) -> None:
    """Add a sound event at ``start``, wrapping past the loop's end so the loop stays seamless."""
    bed[(start + np.arange(len(event))) % len(bed)] += event


@lru_cache(maxsize=len(NOISE_KINDS) * NOISE_VARIANTS)
def _synthetic(kind: str, variant: int) -> Samples:
    rng = _rng(kind, variant)
    if kind == "white":
        return _unit_rms(rng.standard_normal(_LOOP))
    if kind == "pink":
        return _unit_rms(_shaped(rng, _LOOP, 1.0, 20.0))
    if kind == "brown":
        return _unit_rms(_shaped(rng, _LOOP, 2.0, 20.0))
    if kind == "babble":
        return _unit_rms(_babble(rng))
    if kind == "street":
        return _unit_rms(_street(rng))
    if kind == "office":
        return _unit_rms(_office(rng, variant))
    raise ConditionsError(_unknown_kind(kind))


_TALKERS: tuple[tuple[str, VoiceSpec], ...] = (
    (
        "The quarterly report was late again, so the manager called everyone into the small meeting "
        "room and asked who had the numbers. Nobody answered for a while.",
        VoiceSpec("en-us", rate_wpm=170, pitch=45),
    ),
    (
        "I told her we should take the early train, because the roads are always blocked on Fridays "
        "and the parking near the station costs a fortune.",
        VoiceSpec("en-gb", rate_wpm=160, pitch=40),
    ),
    (
        "Did you see the match last night? They were two goals down at half time and still won it in "
        "the last five minutes.",
        VoiceSpec("en-gb-scotland", rate_wpm=180, pitch=55),
    ),
    (
        "My sister is moving to a new flat next month, and she wants all of us to help carry the boxes "
        "up four flights of stairs.",
        VoiceSpec("en-us+f3", rate_wpm=165, pitch=60),
    ),
    (
        "The coffee machine on this floor has been broken since Tuesday, so everybody goes downstairs "
        "and the queue gets longer every morning.",
        VoiceSpec("en-029", rate_wpm=150, pitch=50),
    ),
    (
        "We could order lunch for the whole team, but someone has to collect the money and nobody ever "
        "remembers who paid last time.",
        VoiceSpec("en-gb-x-rp+f4", rate_wpm=175, pitch=65),
    ),
)
"""Babble talkers: a different line and voice each; rendered once per process."""


def _babble(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Six talkers, each repeating their line with pauses from a random point, summed at random levels
    within 4 dB of each other: overlapping speech with no gaps, as in a busy room."""
    size = _LOOP + _FADE
    out = np.zeros(size)
    for text, voice in _TALKERS:
        speech = render_speech(text, voice).astype(np.float64)
        speech /= speech_level(speech)
        period = np.concatenate([speech, np.zeros(int(rng.integers(SAMPLE_RATE // 4, SAMPLE_RATE)))])
        start = int(rng.integers(len(period)))
        track = np.tile(period, (start + size) // len(period) + 1)[start : start + size]
        out += track * 10 ** (rng.uniform(-4.0, 0.0) / 20)
    return _crossfade_loop(out, _FADE)


def _street(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Distant traffic: a low rumble with tyre hiss, swelling slowly, and cars passing close by (an
    engine whose pitch drops as it passes, plus a burst of tyre noise)."""
    t = np.arange(_LOOP) / SAMPLE_RATE
    bed = _shaped(rng, _LOOP, 2.0, 40.0) + 0.3 * _shaped(rng, _LOOP, 1.0, 300.0, 3000.0)
    swell = np.ones(_LOOP)
    for cycles in (1, 2, 3):  # whole cycles per loop: the swell is periodic too
        swell += 0.07 * np.sin(2 * np.pi * cycles * t / LOOP_SECONDS + rng.uniform(0, 2 * np.pi))
    bed *= swell
    tyre = _shaped(rng, _LOOP, 1.0, 400.0)
    span = 6 * SAMPLE_RATE
    local = (np.arange(span) - span / 2) / SAMPLE_RATE
    for _ in range(int(rng.integers(3, 6))):
        start = int(rng.integers(_LOOP))
        width = rng.uniform(0.6, 1.0)
        envelope = rng.uniform(0.5, 1.0) * np.exp(-0.5 * (local / width) ** 2)
        doppler = 1 + rng.uniform(0.03, 0.06) * -np.tanh(local / (width / 2))
        phase = 2 * np.pi * np.cumsum(rng.uniform(70.0, 140.0) * doppler) / SAMPLE_RATE
        engine = np.zeros(span)
        for harmonic in range(1, 7):
            engine += np.sin(harmonic * phase) / harmonic
        hiss = tyre[(start + np.arange(span)) % _LOOP]
        _wrap_add(bed, start, envelope * (0.8 * engine + 0.7 * hiss))
    return bed


def _office(rng: np.random.Generator, variant: int) -> npt.NDArray[np.float64]:
    """An open-plan office: air-conditioning (pink noise rolled off above 800 Hz), bursts of typing, and
    a far-off conversation (the babble bed, muffled)."""
    bed = _shaped(rng, _LOOP, 1.0, 30.0, 800.0)
    click_len = 48
    decay = np.exp(-np.arange(click_len) / 8.0)
    for _ in range(int(rng.integers(3, 6))):
        at = int(rng.integers(_LOOP))
        for _ in range(int(rng.integers(8, 30))):
            at += int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
            click = np.diff(rng.standard_normal(click_len + 1)) * decay
            _wrap_add(bed, at, rng.uniform(1.5, 3.0) * click)
    far = _lowpass(_synthetic("babble", variant).astype(np.float64), 1000.0)
    return bed + 0.25 * far / math.sqrt(float(np.mean(np.square(far))))


def _load_file(path: Path) -> Samples:
    try:
        stat = path.stat()
    except OSError:
        raise ConditionsError(f"noise file {path} does not exist") from None
    if not path.is_file():
        raise ConditionsError(f"noise file {path} is not a file")
    return _load_file_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load_file_cached(path: str, mtime_ns: int, size: int) -> Samples:
    """A recording as a seamless unit-RMS loop: mono, 8 kHz, no DC, at most the first minute."""
    del mtime_ns, size  # part of the cache key only: an edited file is read again
    try:
        info = sf.info(path)
        data = sf.read(
            path,
            frames=min(info.frames, info.samplerate * _FILE_MAX_SECONDS),
            dtype="float64",
            always_2d=True,
        )[0]
        rate = int(info.samplerate)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise ConditionsError(f"noise file {path} cannot be read as audio: {exc}") from None
    if data.size == 0:
        raise ConditionsError(f"noise file {path} has no audio")
    mono = np.asarray(data.mean(axis=1), dtype=np.float64)
    if rate != SAMPLE_RATE:
        mono = np.asarray(soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ"), dtype=np.float64)
    mono -= mono.mean()
    if mono.size == 0 or math.sqrt(float(np.mean(np.square(mono)))) < 1e-6:
        raise ConditionsError(f"noise file {path} is silent")
    return _unit_rms(_crossfade_loop(mono, min(_FADE, len(mono) // 4)))


# ------------------------------------------------------------------------------------------- SNR mixing


def active_speech_mask(pcm: _Audio) -> npt.NDArray[np.bool_]:
    """Which samples are active speech: those in 20 ms frames (on the signal's own frame grid, a short
    last frame included) whose mean power is within :data:`ACTIVE_RANGE_DB` of the loudest frame."""
    x = np.asarray(pcm, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    frames = -(-n // FRAME_SAMPLES)
    padded = np.zeros(frames * FRAME_SAMPLES)
    padded[:n] = x
    counts = np.full(frames, FRAME_SAMPLES, dtype=np.float64)
    counts[-1] = n - (frames - 1) * FRAME_SAMPLES
    power = np.square(padded).reshape(frames, FRAME_SAMPLES).sum(axis=1) / counts
    loudest = float(power.max())
    if loudest <= 0.0:
        return np.zeros(n, dtype=np.bool_)
    active = power >= loudest * 10 ** (-ACTIVE_RANGE_DB / 10)
    return np.repeat(active, FRAME_SAMPLES)[:n]


def speech_level(pcm: _Audio) -> float:
    """Active speech level (RMS over :func:`active_speech_mask`), in sample units; 0 for silence."""
    mask = active_speech_mask(pcm)
    if not mask.any():
        return 0.0
    x = np.asarray(pcm, dtype=np.float64)[mask]
    return math.sqrt(float(np.mean(np.square(x))))


def calibration_level(speak: Callable[[str, VoiceSpec], Pcm], voice: VoiceSpec) -> float:
    """:func:`reference_level` through any speaker (a TTS endpoint): its calibration sentence's level."""
    return speech_level(speak(_CALIBRATION_TEXT, voice))


@lru_cache(maxsize=64)
def reference_level(voice: VoiceSpec | None = None) -> float:
    """Active speech level of a fixed calibration sentence in ``voice``.

    The noise runs from the moment the call connects, before the caller's first line is rendered, and a
    real room does not get louder or quieter from one sentence to the next; so a call's noise gain is
    set once from its voice's level, and each line's actual SNR differs from the set one by no more than
    the voice's own loudness varies.
    """
    return speech_level(render_speech(_CALIBRATION_TEXT, voice))


def noise_gain(speech_rms: float, snr_db: float) -> float:
    """Gain for a unit-RMS bed so that speech at active level ``speech_rms`` is ``snr_db`` above it."""
    if not math.isfinite(speech_rms) or speech_rms < 0:
        raise ValueError(f"speech_rms must be a finite level >= 0, got {speech_rms}")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    return speech_rms * 10 ** (-snr_db / 20)


class Mixer:
    """The caller's outgoing audio: speech plus the call's noise bed at a fixed gain, as int16.

    Call :meth:`frame` every 20 ms whether or not the caller is speaking: the noise goes on between
    lines, as it does on a real call, and the agent's turn detection has to live with it. Sums beyond
    int16 are clipped (as a phone's converter would), never wrapped; leave speech a few dB of headroom
    for SNRs near 0 dB.
    """

    def __init__(self, bed: NoiseBed | None, *, speech_rms: float, snr_db: float | None = None) -> None:
        self._bed = bed
        if bed is None:
            self.gain = 0.0
        else:
            self.gain = noise_gain(speech_rms, bed.spec.snr_db if snr_db is None else snr_db)

    def mix(self, speech: Pcm) -> Pcm:
        """``speech`` with the next ``len(speech)`` samples of noise added."""
        if self._bed is None:
            return np.asarray(speech, dtype=np.int16).copy()
        out = speech.astype(np.float32) + self._bed.next(len(speech)) * np.float32(self.gain)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    def frame(self, speech: Pcm | None = None) -> Pcm:
        """One 20 ms frame: ``speech`` (up to one frame, zero-padded; None for none) plus noise."""
        padded = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if speech is not None:
            if len(speech) > FRAME_SAMPLES:
                raise ValueError(f"a frame holds {FRAME_SAMPLES} samples, got {len(speech)}")
            padded[: len(speech)] = speech
        return self.mix(padded)


def measure_snr(
    mixture: _Audio, speech_mask: npt.NDArray[np.bool_], noise_mask: npt.NDArray[np.bool_] | None = None
) -> float:
    """SNR in dB of a recording, given where the speech was: the noise power is measured where there
    was none, and taken off the power where there was.

    ``speech_mask`` should be the active speech (:func:`active_speech_mask` of the clean line, placed
    where it was played), so the result compares with the SNR set by :func:`noise_gain`. The noise is
    measured outside ``speech_mask``, and if given only where ``noise_mask`` is set too: pass the time
    outside the lines altogether, so that the faint edges of words, which are not active speech, do not
    count as noise (at high SNRs they would pull the estimate down). ``inf`` for a noiseless recording,
    ``-inf`` when the speech adds no measurable power.
    """
    x = np.asarray(mixture, dtype=np.float64)
    speech_at = np.asarray(speech_mask, dtype=np.bool_)
    noise_at = ~speech_at
    if noise_mask is not None:
        if np.shape(noise_mask) != x.shape:
            raise ValueError(f"noise_mask has shape {np.shape(noise_mask)}, the mixture {x.shape}")
        noise_at &= np.asarray(noise_mask, dtype=np.bool_)
    if speech_at.shape != x.shape:
        raise ValueError(f"speech_mask has shape {speech_at.shape}, the mixture {x.shape}")
    if not speech_at.any() or not noise_at.any():
        raise ValueError("measuring an SNR needs both speech samples and noise-only samples")
    noise = float(np.mean(np.square(x[noise_at])))
    speech = float(np.mean(np.square(x[speech_at]))) - noise
    if speech <= 0:
        return -math.inf
    if noise <= 0:
        return math.inf
    return 10 * math.log10(speech / noise)


# ---------------------------------------------------------------------------------------------- network


@dataclass(frozen=True)
class NetworkSpec:
    """One direction's impairment: Gilbert-model frame loss and order-preserving send jitter.

    ``seed`` pins the impairment pattern of a scenario; the :class:`Impairer`'s own seed tells the calls
    and directions of one run apart.
    """

    loss_pct: float = 0.0
    """Long-run share of frames lost, 0-50 %."""
    burst_frames: float = 1.0
    """Mean run of consecutive lost frames, >= 1 (1: never two in a row)."""
    jitter_ms: float = 0.0
    """Each frame's extra send delay is at most this, 0-500 ms."""
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range("loss_pct", self.loss_pct, 0.0, MAX_LOSS_PCT, "%")
        _check_range("burst_frames", self.burst_frames, 1.0, math.inf, " frames")
        _check_range("jitter_ms", self.jitter_ms, 0.0, MAX_JITTER_MS, " ms")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConditionsError(f"network.seed must be an integer, got {self.seed!r}")

    @property
    def impaired(self) -> bool:
        """Whether any frame can be lost or delayed."""
        return self.loss_pct > 0 or self.jitter_ms > 0


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConditionsError(f"network.{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConditionsError(f"network.{name} must be a finite number, got {value!r}")
    return float(value)


def _check_range(name: str, value: object, low: float, high: float, unit: str) -> None:
    number = _number(name, value)
    if not low <= number <= high:
        bound = f">= {low:g}{unit}" if high == math.inf else f"within {low:g}..{high:g}{unit}"
        raise ConditionsError(f"network.{name} must be {bound}, got {number:g}")


_NETWORK_FIELDS = ("loss_pct", "burst_frames", "jitter_ms", "seed")


def parse_network(mapping: Mapping[str, object]) -> NetworkSpec:
    """A persona's ``network`` mapping (``loss_pct``, ``burst_frames``, ``jitter_ms``, ``seed``; all
    optional) as a validated spec; an unknown key is an error rather than silently ignored, since a
    misspelt ``loss_pc`` would otherwise run a clean network."""
    unknown = sorted(set(mapping) - set(_NETWORK_FIELDS))
    if unknown:
        raise ConditionsError(
            f"network: unknown field(s) {', '.join(unknown)}; expected {', '.join(_NETWORK_FIELDS)}"
        )
    values: dict[str, Any] = {}
    for name in ("loss_pct", "burst_frames", "jitter_ms"):
        if name in mapping:
            values[name] = _number(name, mapping[name])
    if "seed" in mapping:
        values["seed"] = mapping["seed"]
    return NetworkSpec(**values)


@dataclass(frozen=True)
class FrameFate:
    """What the network does to one frame. ``delay_s`` is its extra send delay; for a dropped frame it is
    the delay it would have had (and can be ignored)."""

    dropped: bool
    delay_s: float


class Impairer:
    """The fates of one direction's frames, by index from 0.

    Fates are generated in blocks and only the latest are kept, so a call of any length costs constant
    memory: ask for indexes in (roughly) increasing order; one more than a block behind the newest is an
    error. The loss and the jitter draw from separate random streams, so changing the jitter of a
    scenario leaves which frames are lost unchanged.
    """

    _BLOCK = 512

    def __init__(self, spec: NetworkSpec, seed: int = 0) -> None:
        self.spec = spec
        loss_seed, jitter_seed = np.random.SeedSequence([spec.seed % 2**64, seed % 2**64]).spawn(2)
        self._loss_rng = np.random.default_rng(loss_seed)
        self._jitter_rng = np.random.default_rng(jitter_seed)
        rate = spec.loss_pct / 100
        self._leave_bad = 1 / spec.burst_frames
        self._enter_bad = rate * self._leave_bad / (1 - rate)
        self._bad = bool(self._loss_rng.random() < rate)  # frame 0 starts in the stationary distribution
        self._jitter_s = spec.jitter_ms / 1000
        self._last_delay = 0.0
        self._base = 0
        self._dropped = np.zeros(0, dtype=np.bool_)
        self._delay = np.zeros(0, dtype=np.float64)

    def fate(self, frame_index: int) -> FrameFate:
        """The fate of frame ``frame_index``, the same every time it is asked for."""
        if frame_index < 0:
            raise ValueError(f"frame indexes start at 0, got {frame_index}")
        if frame_index < self._base:
            raise ValueError(
                f"frame {frame_index} is too far behind: fates are kept from frame {self._base} on"
            )
        while frame_index >= self._base + len(self._dropped):
            self._extend()
        i = frame_index - self._base
        return FrameFate(dropped=bool(self._dropped[i]), delay_s=float(self._delay[i]))

    def _extend(self) -> None:
        n = self._BLOCK
        dropped = np.empty(n, dtype=np.bool_)
        if self._enter_bad == 0.0:
            dropped[:] = False
        else:
            draws = self._loss_rng.random(n)
            bad = self._bad
            for k in range(n):
                dropped[k] = bad
                bad = bool(draws[k] >= self._leave_bad) if bad else bool(draws[k] < self._enter_bad)
            self._bad = bad
        if self._jitter_s == 0.0:
            delay = np.zeros(n)
        else:
            # delay_k = max(u_k, delay_{k-1} - 20 ms), unrolled: max_j (u_j + 20 ms * j) - 20 ms * k.
            steps = _FRAME_S * np.arange(n)
            ahead = self._jitter_rng.random(n) * self._jitter_s + steps
            ahead[0] = max(ahead[0], self._last_delay - _FRAME_S)
            delay = np.clip(np.maximum.accumulate(ahead) - steps, 0.0, self._jitter_s)
            self._last_delay = float(delay[-1])
        keep = min(len(self._dropped), n)
        self._base += len(self._dropped) - keep
        self._dropped = np.concatenate([self._dropped[len(self._dropped) - keep :], dropped])
        self._delay = np.concatenate([self._delay[len(self._delay) - keep :], delay])
