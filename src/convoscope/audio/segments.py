"""Voice-activity segments: the interface between voice detection and the turn-taking metrics.

``detect_speech`` (in :mod:`convoscope.audio.vad`) produces one :class:`ChannelActivity` per party; the
event and metric code reads only these shapes, so a different detector (or transcript timing) can feed
the same metrics. Times are seconds on the call clock (the loader has already applied any clock offset).
Every knob that shapes the segments lives in :class:`VadParams`, a frozen, versioned model that results
echo, so two numbers computed with different settings are never silently compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..model import Role

__all__ = ["DEFAULT_STATE_RESET_S", "VAD_PARAMS_VERSION", "ChannelActivity", "Segment", "Speech", "VadParams"]

VAD_PARAMS_VERSION = "vad-4"
"""Bumped whenever the meaning of a field or the post-processing changes, so stored results say which
rules produced them. vad-2: silero starts afresh after a skipped stretch of ``state_reset_s``. vad-3: each
channel's bleed of the other party is fitted and subtracted before detection (``echo_*``), and speech
evidence far under the channel's own speech level is dropped (``own_level_*``). vad-4: the bleed path's
delay is searched on ``echo_search_s`` and its taps fitted on ``echo_fit_s`` of the call's most telling
blocks (the canceller's cost no longer grows with the call), and subtracted in the time domain."""

DEFAULT_STATE_RESET_S = 0.5
"""``VadParams.state_reset_s``'s default, also the default of a silero backend built on its own."""


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """One stretch of speech on one channel, ``[start_s, end_s)`` in call seconds.

    Ordered by start then end, so ``sorted(segments)`` is time order.
    """

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ValueError(f"segment bounds must be finite, got {self.start_s!r}..{self.end_s!r}")
        if self.start_s < 0.0:
            raise ValueError(f"segment start must be >= 0 s, got {self.start_s!r}")
        if self.end_s < self.start_s:
            raise ValueError(f"segment end {self.end_s!r} s is before its start {self.start_s!r} s")

    @property
    def duration_s(self) -> float:
        """Length of the segment in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class ChannelActivity:
    """Who spoke when on one channel.

    ``segments`` are sorted and never overlap (post-processing merges them). ``probabilities`` is the
    per-frame speech evidence on a ``frame_s`` grid starting at call time 0 (after gating, before
    segment post-processing), kept so a chart can show why a segment is there; ``None`` when the source
    had no frame-level evidence (transcript timing, for example). It is excluded from equality because
    arrays do not compare as booleans.
    """

    role: Role
    segments: tuple[Segment, ...]
    frame_s: float
    probabilities: npt.NDArray[np.float32] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not (self.frame_s > 0.0 and math.isfinite(self.frame_s)):
            raise ValueError(f"frame_s must be a positive number of seconds, got {self.frame_s!r}")
        previous_end = 0.0
        for segment in self.segments:
            if segment.start_s < previous_end:
                raise ValueError(
                    f"{self.role} segments must be sorted and disjoint: "
                    f"{segment.start_s} s starts before the previous end {previous_end} s"
                )
            previous_end = segment.end_s

    @property
    def speech_s(self) -> float:
        """Total seconds of speech on this channel."""
        return sum(segment.duration_s for segment in self.segments)


Speech = dict[Role, ChannelActivity]
"""The detector's answer for a call: one activity per party (normally ``Role.USER`` and ``Role.AGENT``)."""

_DEFAULT_HYSTERESIS = 0.15


class VadParams(BaseModel):
    """Every parameter that shapes speech segments, with the reason for its default.

    Frozen and echoed into each metric result, with ``version``, so results are reproducible and
    comparable only when computed under the same rules.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["silero", "webrtc"] = Field(
        default="silero",
        description=(
            "Default 'silero': a neural VAD that holds up under noise and music far better than the "
            "GMM-based webrtcvad; 'webrtc' is the cheap, dependency-light option for bulk rescoring."
        ),
    )
    threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description=(
            "Default 0.5: speech probability at or above which a silero frame enters speech; silero's "
            "own recommended operating point."
        ),
    )
    neg_threshold: float = Field(
        default=-1.0,
        le=1.0,
        description=(
            "Default threshold - 0.15 (filled in when omitted): probability below which an ongoing "
            "speech run ends. The gap between the two thresholds (hysteresis) keeps a probability "
            "wobbling around one value from chopping a word into pieces; silero's reference uses 0.15."
        ),
    )
    webrtc_mode: Literal[0, 1, 2, 3] = Field(
        default=2,
        description=(
            "Default 2: webrtcvad aggressiveness (0 most permissive .. 3 most aggressive). 2 rejects most "
            "line noise without clipping soft onsets, the common choice for telephone audio."
        ),
    )
    webrtc_frame_ms: Literal[10, 20, 30] = Field(
        default=30,
        description=(
            "Default 30: webrtcvad decision length (it accepts only 10, 20 or 30 ms). 30 ms decisions "
            "are the most reliable; boundaries are refined on the finer energy grid afterwards anyway."
        ),
    )
    frame_ms: float = Field(
        default=10.0,
        ge=5.0,
        le=50.0,
        description=(
            "Default 10 ms: hop of the energy grid on which VAD evidence is resampled, gated and turned "
            "into segments. It sets boundary precision (the onset error goal is a median of 20 ms), so "
            "it is finer than silero's 32 ms window."
        ),
    )
    min_speech_s: float = Field(
        default=0.1,
        ge=0.0,
        description=(
            "Default 0.1 s: speech runs shorter than this (after merging) are dropped. A click or a "
            "cough is shorter; the shortest backchannel ('mm') is about 0.15 s, so it survives."
        ),
    )
    min_silence_s: float = Field(
        default=0.2,
        ge=0.0,
        description=(
            "Default 0.2 s: silences shorter than this inside one party's speech are merged away. Stop "
            "closures and micro-pauses are shorter; human within-turn pauses that matter for turn-taking "
            "(Heldner & Edlund) are longer, so they stay visible as pauses."
        ),
    )
    hangover_s: float = Field(
        default=0.1,
        ge=0.0,
        description=(
            "Default 0.1 s: speech is held this long after the evidence drops before the frame is "
            "called silence, bridging weak frames inside a word. Offsets are then re-refined on frame "
            "energy, so the hangover does not push segment ends later."
        ),
    )
    speech_pad_s: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "Default 0 s: widen every final segment by this much on both sides. Zero because boundaries "
            "are already refined on 10 ms energy frames and padding would bias every onset early and "
            "every offset late; raise it only to cut audio clips around segments."
        ),
    )
    crosstalk_db: float = Field(
        default=15.0,
        ge=0.0,
        description=(
            "Default 15 dB: the strictest crosstalk rule. While another channel is active, a frame more "
            "than this much quieter than that channel in the same frame is always that party's bleed; "
            "within it, the bleed measured on the recording decides (bleed_margin_db, bleed_percentile). "
            "Bleed or echo arrives 20-30 dB down and double talk within a few dB, so 15 dB is the fallback "
            "when there is too little of the other party to measure its bleed (bleed_min_s)."
        ),
    )
    bleed_margin_db: float = Field(
        default=8.0,
        ge=0.0,
        description=(
            "Default 8 dB: a frame counts as the other party's bleed when it is at most this much louder "
            "than the bleed estimated for it (the other channel's level plus the bleed gain measured on "
            "this recording, see bleed_percentile). Bleed follows the other voice within a few dB frame to "
            "frame (a late echo path is absorbed by crosstalk_window_s), while a barge-in's first, quiet "
            "phoneme is 10 dB and more above it. The rule is never stricter than crosstalk_db."
        ),
    )
    bleed_percentile: float = Field(
        default=50.0,
        gt=0.0,
        lt=100.0,
        description=(
            "Default 50: the bleed gain of a channel is this percentile, over the other party's louder "
            "half of frames, of this channel's power above its noise floor relative to the other channel. "
            "A low percentile keeps this party's own speech over the other (barge-ins, backchannels) out "
            "of the estimate unless it covers three quarters of the other's loud speech; a clean channel "
            "with no bleed gives a gain far below its noise floor, so every frame above the noise gate "
            "is speech."
        ),
    )
    bleed_min_s: float = Field(
        default=0.5,
        ge=0.0,
        description=(
            "Default 1 s: the bleed gain is estimated only from at least this much of the other party's "
            "loud speech; with less, crosstalk_db alone decides."
        ),
    )
    crosstalk_window_s: float = Field(
        default=0.03,
        ge=0.0,
        description=(
            "Default 0.03 s: the other channel's energy is taken as its maximum within this many "
            "seconds either side of the frame, so bleed that is a few milliseconds late (an echo path, "
            "a jitter buffer) is still compared with the speech that caused it."
        ),
    )
    boundary_search_s: float = Field(
        default=0.1,
        ge=0.0,
        description=(
            "Default 0.1 s: how far a segment boundary may move outward from the VAD decision onto "
            "frames whose energy is above the gate. Silero decides on 32 ms windows and reacts a window "
            "or two late; the energy grid puts onsets and offsets back within about one 10 ms frame."
        ),
    )
    boundary_gap_s: float = Field(
        default=0.03,
        ge=0.0,
        description=(
            "Default 0.03 s: the boundary search (boundary_search_s) crosses dips this short below the "
            "gate or bleed threshold. A quiet first phoneme at 10 dB SNR passes the noise gate only every "
            "other frame, and a search that stopped at the first dip left such onsets 20-50 ms late, "
            "where the VAD first fired; two frames are far shorter than any pause between words."
        ),
    )
    edge_ms: float = Field(
        default=2.0,
        gt=0.0,
        description=(
            "Default 2 ms: a segment's first and last frame are split into sub-windows of about this "
            "length, and the boundary goes to the first (last) one that passes the same noise-gate and "
            "bleed test as the frame. A 10 ms frame that the speech enters half-way would otherwise put "
            "the onset 5 ms early and the offset 5 ms late on average, a bias that every difference of "
            "two boundaries (a stop time, a response gap) inherits; set it to frame_ms to keep frame edges."
        ),
    )
    noise_floor_percentile: float = Field(
        default=10.0,
        gt=0.0,
        lt=100.0,
        description=(
            "Default 10: the channel's noise floor is this percentile of its frame energies. Any call "
            "has at least 10% of frames without that party's speech (they listen), so the 10th "
            "percentile sits on background noise, not on speech."
        ),
    )
    snr_gate_db: float = Field(
        default=3.0,
        ge=0.0,
        description=(
            "Default 3 dB: frames whose energy is less than this above the noise floor are never speech. "
            "Stationary noise varies by about +-1 dB over 10 ms frames (and its 10th percentile sits "
            "0.6 dB under its mean), so 3 dB, together with min_speech_s, rejects hiss or hum that a VAD "
            "takes for speech, while speech at 10 dB SNR keeps its boundaries (6 dB chopped words apart "
            "and moved onsets 50 ms late in the synthetic tests)."
        ),
    )
    echo_cancel: bool = Field(
        default=True,
        description=(
            "Default True: on a two-party recording, the other party's voice leaking into each channel "
            "(echo, headset crosstalk) is fitted as a short linear path and subtracted before any "
            "detection (convoscope.audio.echo). The level rule (crosstalk_db, bleed_*) cannot tell bleed "
            "within 15 dB of this party's speech from that speech; subtraction removes it whatever its "
            "level. A path that fails its tests (echo_min_agreement, echo_min_residual_db) is not applied, "
            "so a call without bleed is analysed as before."
        ),
    )
    echo_max_delay_s: float = Field(
        default=0.1,
        gt=0.0,
        description=(
            "Default 0.1 s: the latest the bleed may arrive after the other party's own channel. A "
            "handset's or headset's echo path is 5-30 ms, a jitter buffer adds tens; a longer search only "
            "costs a longer fit block."
        ),
    )
    echo_span_s: float = Field(
        default=0.002,
        gt=0.0,
        description=(
            "Default 0.002 s: length of the fitted path (FIR taps) around its strongest lag. A pure delay "
            "needs one tap and a band-limited line a few; longer paths fit the two voices' chance "
            "correlation as well and subtract some of this party's own speech."
        ),
    )
    echo_block_s: float = Field(
        default=0.128,
        gt=0.0,
        description=(
            "Default 0.128 s (rounded up to a power of two of samples, and to at least echo_max_delay_s + "
            "echo_span_s): correlations are summed over blocks this long, each weighted by how little of "
            "this party it holds, so the fit listens where only the bleed is heard. Shorter than a word, "
            "so a block is seldom half double talk."
        ),
    )
    echo_min_agreement: float = Field(
        default=0.8,
        ge=-1.0,
        le=1.0,
        description=(
            "Default 0.8: the paths fitted on the even and on the odd blocks must predict the same bleed "
            "(cosine similarity of their outputs) for the path to be applied. A real path agrees to 0.95 "
            "and more even at -25 dB under 5 dB SNR noise; two unrelated channels' chance fits scatter "
            "around 0."
        ),
    )
    echo_min_residual_db: float = Field(
        default=-10.0,
        le=0.0,
        description=(
            "Default -10 dB: a path that leaves less than this of a channel's power after subtraction is "
            "not bleed but one signal on both channels (a mix copied to both sides), which subtracting "
            "would erase; it is left alone. Real bleed leaves the party's own speech: 0 to -3 dB."
        ),
    )
    echo_search_s: float = Field(
        default=4.0,
        gt=0.0,
        description=(
            "Default 4 s: the delay of the path is searched on this much of the call, the blocks where the "
            "other party is loudest and this one quietest: there the bleed stands alone, and a few seconds "
            "of it put the correlation peak far above any chance one (even 20 dB under the noise)."
        ),
    )
    echo_fit_s: float = Field(
        default=300.0,
        gt=0.0,
        description=(
            "Default 300 s: the path's taps are fitted on at most this much of the call, the blocks that "
            "tell the most about it (where the other party is loudest and this one quietest). A call up to "
            "this long is fitted whole, as before; a longer one costs no more. Fewer blocks fit worse: on a "
            "5-minute call with -25 dB echo, 60 s of them left the residue at -38 dB of the bleed instead "
            "of -45 dB, enough to move a segment edge."
        ),
    )
    own_level_db: float = Field(
        default=20.0,
        ge=0.0,
        description=(
            "Default 20 dB: a run of speech evidence whose loudest frame lies more than this under the "
            "channel's own speech level (own_level_percentile) is not this party: its microphone is at "
            "its mouth, so another voice heard on it (the residue of the other party's bleed after "
            "cancellation, talkers in the background) is far quieter. A soft backchannel stays within "
            "about 12 dB of the same speaker's loud syllables."
        ),
    )
    own_level_percentile: float = Field(
        default=99.0,
        gt=0.0,
        le=100.0,
        description=(
            "Default 99: the channel's own speech level is this percentile of its frame energies: the "
            "party's loud syllables even when it speaks only 2% of the call (a caller who only says "
            "'mhm'), and not one click."
        ),
    )
    state_reset_s: float = Field(
        default=DEFAULT_STATE_RESET_S,
        ge=0.0,
        description=(
            "Default 0.5 s: silero's recurrent state (and audio context) starts afresh, as at the start "
            "of a file, after the backend has skipped at least this long a stretch of windows that "
            "cannot be speech. Each stretch of evaluated windows between resets is then an independent "
            "stream, so the streams run as the rows of one batch with exactly the one-at-a-time "
            "numbers; the windows evaluated before every possible onset warm the fresh state up."
        ),
    )
    version: str = Field(
        default=VAD_PARAMS_VERSION,
        description="Version of these rules; stored with every result so changed rules are not mixed up.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_neg_threshold(cls, data: Any) -> Any:
        """Derive the hysteresis threshold from ``threshold`` when the caller did not set it."""
        if isinstance(data, dict) and data.get("neg_threshold") is None:
            threshold = float(data.get("threshold", 0.5))
            return {**data, "neg_threshold": max(0.0, round(threshold - _DEFAULT_HYSTERESIS, 6))}
        return data

    @model_validator(mode="after")
    def _check_thresholds(self) -> VadParams:
        if not 0.0 <= self.neg_threshold <= self.threshold:
            raise ValueError(
                f"neg_threshold must lie in [0, threshold]: got {self.neg_threshold} with threshold "
                f"{self.threshold}"
            )
        return self

    @property
    def frame_s(self) -> float:
        """``frame_ms`` in seconds."""
        return self.frame_ms / 1000.0
