"""The ways the reference agent's voice front can be told to misbehave on the telephone line.

Turn-taking metrics (response gap, agent interruptions, missed barge-ins, long silences) and audio
checks each need an agent that fails in exactly one known, measurable way. The chat faults cannot say
"answer 800 ms late" or "talk over the caller", so the voice front has its own, named in one string::

    latency:800,talks_over        # 800 ms more before every utterance, and replies over the caller
    dead_air:6+clipped            # one 6 s silence mid-call, and every utterance cut off and saturated

Parts are separated by ``,``, ``+`` or spaces; a value follows its name after ``:``. The behaviour faults
of the chat side (``no_disclosure``, ``loops``...) are accepted too and bend the policy the voice front
speaks for. Server faults and a call's faults add up (latencies and dead air add), and a name the agent
does not know is refused, never ignored, because a misspelt fault would let a test pass for the wrong
reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from ...simulate.voice.codec import FRAME_SAMPLES, Pcm
from .faults import BEHAVIOUR_FAULTS, Fault

__all__ = [
    "CLIP_GAIN",
    "CLIP_KEEP",
    "UnknownVoiceFault",
    "VoiceFault",
    "VoiceFaults",
    "clip_speech",
    "parse_voice_faults",
]

CLIP_KEEP = 0.6
"""With ``clipped``, the share of an utterance that is sent (the cut is placed near this point)."""
CLIP_GAIN = 4.0
"""With ``clipped``, the gain (12 dB) applied before saturating at full scale."""

_MAX_LATENCY_MS = 60_000
_MAX_DEAD_AIR_S = 600.0
_SEPARATORS = re.compile(r"[,+\s]+")


class VoiceFault(StrEnum):
    """One way the voice front misbehaves; each is what one turn-taking or audio check must catch."""

    LATENCY = "latency"
    """``latency:<ms>``: a fixed extra delay before every utterance (greeting included), added to the
    agent's processing time, so the measured response gap grows by exactly that much."""
    TALKS_OVER = "talks_over"
    """The reply starts after a fixed short time of caller speech (``talks_over_ms``) plus the usual
    processing, instead of after the end-of-turn silence: the agent talks over a caller who is still
    speaking, and that speech does not count as a barge-in on the reply it caused."""
    IGNORES_BARGE_IN = "ignores_barge_in"
    """The agent never sends ``clear``: a caller who talks over it hears it finish its line."""
    DEAD_AIR = "dead_air"
    """``dead_air:<s>``: one reply mid-call (the answer to the caller's ``dead_air_turn``-th turn) comes
    that many seconds later than the others: a long silence."""
    CLIPPED = "clipped"
    """Every utterance is cut off mid-word and hard-clipped; see :func:`clip_speech`."""


_VALUED = {VoiceFault.LATENCY, VoiceFault.DEAD_AIR}


class UnknownVoiceFault(ValueError):
    """A fault the voice front does not have, or a fault's value it cannot use."""


@dataclass(frozen=True)
class VoiceFaults:
    """The faults in effect on one call."""

    latency_ms: int = 0
    talks_over: bool = False
    ignores_barge_in: bool = False
    dead_air_s: float = 0.0
    clipped: bool = False
    policy: frozenset[Fault] = field(default_factory=frozenset)
    """Chat behaviour faults, handed to the :class:`~.policy.ReferencePolicy` the agent speaks for."""

    def __or__(self, other: VoiceFaults) -> VoiceFaults:
        return VoiceFaults(
            latency_ms=self.latency_ms + other.latency_ms,
            talks_over=self.talks_over or other.talks_over,
            ignores_barge_in=self.ignores_barge_in or other.ignores_barge_in,
            dead_air_s=self.dead_air_s + other.dead_air_s,
            clipped=self.clipped or other.clipped,
            policy=self.policy | other.policy,
        )

    def names(self) -> list[str]:
        """The faults as they are written, sorted (``[]`` for a well-behaved call)."""
        names = [fault.value for fault in self.policy]
        if self.latency_ms:
            names.append(f"latency:{self.latency_ms}")
        if self.dead_air_s:
            names.append(f"dead_air:{self.dead_air_s:g}")
        flags = {
            VoiceFault.TALKS_OVER: self.talks_over,
            VoiceFault.IGNORES_BARGE_IN: self.ignores_barge_in,
            VoiceFault.CLIPPED: self.clipped,
        }
        names.extend(fault.value for fault, on in flags.items() if on)
        return sorted(names)


def _known() -> str:
    voice = [
        f"{f.value}:<{'ms' if f is VoiceFault.LATENCY else 's'}>" if f in _VALUED else f.value
        for f in VoiceFault
    ]
    return ", ".join(voice + sorted(f.value for f in BEHAVIOUR_FAULTS))


def _number(part: str, value: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UnknownVoiceFault(f"fault {part!r} needs a number after ':'") from None
    if not 0 <= number <= limit:
        raise UnknownVoiceFault(f"fault {part!r} is out of range (0 to {limit:g})")
    return number


def _one(part: str) -> VoiceFaults:
    name, sep, value = part.partition(":")
    key = name.strip().lower().replace("-", "_")
    try:
        fault = VoiceFault(key)
    except ValueError:
        if not sep and key in {f.value for f in BEHAVIOUR_FAULTS}:
            return VoiceFaults(policy=frozenset({Fault(key)}))
        raise UnknownVoiceFault(f"unknown voice fault {part!r} (known: {_known()})") from None
    if (fault in _VALUED) != bool(sep):
        usage = f"{fault.value}:<value>" if fault in _VALUED else fault.value
        raise UnknownVoiceFault(f"fault {part!r} is written {usage}")
    if fault is VoiceFault.LATENCY:
        return VoiceFaults(latency_ms=round(_number(part, value, _MAX_LATENCY_MS)))
    if fault is VoiceFault.DEAD_AIR:
        return VoiceFaults(dead_air_s=_number(part, value, _MAX_DEAD_AIR_S))
    return VoiceFaults(
        talks_over=fault is VoiceFault.TALKS_OVER,
        ignores_barge_in=fault is VoiceFault.IGNORES_BARGE_IN,
        clipped=fault is VoiceFault.CLIPPED,
    )


def parse_voice_faults(spec: str | Iterable[str] | None) -> VoiceFaults:
    """The faults a string (``"latency:800,talks_over"``) or a list of such strings asks for.

    Raises :class:`UnknownVoiceFault` naming the part it cannot read and the faults it knows."""
    if spec is None:
        return VoiceFaults()
    texts = [spec] if isinstance(spec, str) else list(spec)
    faults = VoiceFaults()
    for text in texts:
        for part in _SEPARATORS.split(text.strip()):
            if part:
                faults = faults | _one(part)
    return faults


def clip_speech(pcm: Pcm) -> Pcm:
    """An utterance cut off mid-word and hard-clipped, as a broken TTS stream or a bad gain stage would.

    The cut goes through the middle of the loudest 20 ms frame between 50% and 70% of the utterance, so
    it always lands inside a word; what is kept is amplified by :data:`CLIP_GAIN` and saturated at
    full scale. Both damages are measurable on the agent's channel with no transcript:

    * saturation: samples sit at the largest μ-law code (±32124), which clean espeak-ng speech never
      reaches (its peaks stay below about 27,000); on the default lines 3.5-4.5% of all samples (about 5%
      of those above -40 dBFS) do, in flat-topped runs;
    * the abrupt end: the last 20 ms before the silence is near full scale (RMS about 20,000, where a
      clean line fades out to a few hundred), with no decaying tail, and the line is 35-45% shorter than
      unfaulted, so its mark echoes early and its last words are never heard (a transcript lacks them).
    """
    if pcm.size < 4 * FRAME_SAMPLES:
        return _saturate(pcm)
    frames = pcm.size // FRAME_SAMPLES
    first, last = max(1, round(frames * 0.5)), max(2, round(frames * (CLIP_KEEP + 0.1)))
    window = pcm[first * FRAME_SAMPLES : last * FRAME_SAMPLES].astype(np.float64).reshape(-1, FRAME_SAMPLES)
    loudest = first + int(np.argmax(np.mean(window**2, axis=1)))
    cut = loudest * FRAME_SAMPLES + FRAME_SAMPLES // 2
    return _saturate(pcm[:cut])


def _saturate(pcm: Pcm) -> Pcm:
    louder = pcm.astype(np.float64) * CLIP_GAIN
    return np.clip(louder, -32768, 32767).astype(np.int16)
