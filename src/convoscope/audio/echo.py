"""Crosstalk bleed and echo removal: each channel minus the other party's voice as it leaks in.

On a two-channel call each microphone also hears the other party, late and attenuated (a handset's
acoustic echo, a headset's crosstalk, a hybrid's reflection). A level rule cannot tell that bleed from
this party's own quiet speech once the bleed is within about 15 dB of it; but the bleed is not an unknown
sound: it is the other channel's signal through a short linear path. This module estimates that path per
direction on the recording itself and subtracts the predicted bleed, so what is left on a channel is its
own party (and its own noise), whatever the bleed level.

The path is a ``taps``-long FIR filter placed at the delay where the two channels correlate most (within
``max_delay``), fitted by least squares (the Wiener solution) from correlations accumulated over blocks of
the call: the other party's voice correlates with its bleed, while this party's speech and either
channel's noise do not, so the fit needs no voice activity and no double-talk detector. Each block is
weighted by how much of the far party and how little of the near one it holds, and the fit listens only to
the most telling blocks (``fit_s`` of them, where the far party is loud and the near one quiet): the rest
add next to nothing to the weighted sums, and the fit then costs the same on a five-minute call as on a
one-minute one. The delay is searched with FFTs of those blocks; the taps are fitted from each block's
correlations at the window's lags, summed once and reweighted for free.

A fitted path is only applied when it is real: the filters fitted on the even and on the odd blocks must
agree (``min_agreement``, the cosine similarity of their outputs), which a chance correlation between two
unrelated channels never does; and a path that explains all but less than ``min_residual_db`` of the near
channel's power is not bleed but a shared mix (one signal on both channels), which subtracting would
erase, so it is left alone. One applied path is subtracted by direct convolution; where both directions
bleed, each party's voice that came back through both paths is divided out to second order, with
overlap-save FFTs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["EchoPath", "EchoSettings", "cancel_crosstalk", "fit_path"]

FloatArray = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
IndexArray = npt.NDArray[np.intp]

# Tikhonov load on the normal equations, relative to the far channel's power: keeps the solve finite on a
# silent far channel and is far below any real bleed (-60 dB).
_RIDGE = 1e-6
# The fit runs on both channels pre-emphasised (x[n] - 0.95 x[n-1]; the same filter on both sides leaves
# the path unchanged): speech puts most of its power below 300 Hz, where the two parties' voices correlate
# by chance over a call; flattening the spectrum lets the fit hear the path across the whole band.
_PRE_EMPHASIS = 0.95
# A block's weight is one over this channel's own power in it (what the path does not explain), floored
# at this percentile of the block powers and at _MIN_POWER_RATIO of their mean: the fit then listens where
# this party is silent and the bleed stands alone, a block of double talk, whose own speech is noise to the
# fit, counts little, and digital silence (no power at all) cannot take every weight.
_FLOOR_PERCENTILE = 10.0
_MIN_POWER_RATIO = 1e-4


@dataclass(frozen=True, slots=True)
class EchoSettings:
    """The canceller's knobs, in seconds and dB (``VadParams`` holds the versioned values)."""

    max_delay_s: float
    span_s: float
    block_s: float
    min_agreement: float
    min_residual_db: float
    search_s: float
    fit_s: float


@dataclass(frozen=True, slots=True)
class EchoPath:
    """A fitted bleed path: ``taps[j]`` applies to the far signal ``first_lag + j`` samples late.

    ``agreement`` is the cosine similarity of what the paths fitted on even and on odd blocks predict,
    ``gain_db`` the path's gain on the far signal, ``residual_db`` the near channel's power left after
    subtraction (0 dB: none of it is bleed); ``applied`` says whether both tests passed.
    """

    taps: Float64Array
    first_lag: int
    agreement: float
    gain_db: float
    residual_db: float
    applied: bool

    @property
    def delay_samples(self) -> int:
        """The lag of the path's strongest tap, in samples."""
        return self.first_lag + int(np.argmax(np.abs(self.taps))) if len(self.taps) else 0


def _block_size(rate_hz: int, settings: EchoSettings) -> int:
    """A power of two of at least ``block_s`` and the longest lag fitted (a block meets the one before)."""
    need = max(settings.block_s * rate_hz, (settings.max_delay_s + settings.span_s) * rate_hz, 64)
    return 1 << math.ceil(math.log2(need))


@dataclass(frozen=True, slots=True)
class _Channel:
    """A channel pre-emphasised, in ``block``-sample blocks, with a block of zeros before and after.

    ``power[k]`` is block k's mean square; ``rows`` cuts any blocks out at any offset from their start.
    """

    samples: FloatArray
    block: int
    count: int
    power: Float64Array

    @classmethod
    def of(cls, samples: FloatArray, block: int) -> _Channel:
        count = max(1, math.ceil(len(samples) / block))
        padded = np.zeros((count + 3) * block, dtype=np.float32)
        body = padded[block : block + len(samples)]
        body[:] = samples
        body[1:] -= np.float32(_PRE_EMPHASIS) * samples[:-1]
        return cls(padded, block, count, cls._powers(padded, block, count, 0))

    @staticmethod
    def _powers(padded: FloatArray, block: int, count: int, offset: int) -> Float64Array:
        rows = padded[block + offset : block + offset + count * block].reshape(count, block)
        result: Float64Array = np.einsum("ij,ij->i", rows, rows).astype(np.float64) / block
        return result

    def powers(self, offset: int) -> Float64Array:
        """Each block's mean square with the channel advanced by ``offset`` samples (0 <= offset < block)."""
        return self.power if offset == 0 else self._powers(self.samples, self.block, self.count, offset)

    def rows(self, blocks: IndexArray, offset: int, width: int) -> FloatArray:
        """``width`` samples from ``offset`` samples after the start of each of ``blocks`` (a copy);
        ``-block <= offset`` and ``offset + width <= 2 * block``."""
        base = self.samples[self.block + offset :]
        step = base.strides[0]
        view = np.lib.stride_tricks.as_strided(
            base, shape=(self.count, width), strides=(self.block * step, step), writeable=False
        )
        result: FloatArray = view[blocks]
        return result


def _toeplitz(auto: Float64Array, taps: int) -> Float64Array:
    index = np.abs(np.arange(taps)[:, None] - np.arange(taps)[None, :])
    result: Float64Array = auto[index]
    return result


def _solve(cross: Float64Array, auto: Float64Array) -> Float64Array:
    """Least-squares FIR taps at lags ``0 .. len(cross) - 1`` (the normal equations, Toeplitz)."""
    taps = len(cross)
    matrix = _toeplitz(auto, taps) + _RIDGE * max(float(auto[0]), 1e-30) * np.eye(taps)
    result = np.linalg.solve(matrix, cross).astype(np.float64)
    return result


def _agreement(a: Float64Array, b: Float64Array, auto: Float64Array) -> float:
    """Cosine similarity of two paths' outputs on the far signal (``auto``: its autocorrelation).

    Compared on what they predict, not tap by tap: speech leaves some tap combinations all but
    unconstrained, and two fits may differ there without predicting different bleed.
    """
    matrix = _toeplitz(auto, len(a))
    norm = math.sqrt(max(float(a @ matrix @ a) * float(b @ matrix @ b), 0.0))
    return float(a @ matrix @ b) / norm if norm > 0.0 else 0.0


def _weights(near: Float64Array, recent: Float64Array, far: Float64Array, gain: float) -> Float64Array:
    """Each block's weight in the fit (from the block powers): how much of the far channel is the far
    party, over the near channel's own power (its power less ``gain`` times the far's: what the path does
    not explain).

    The first factor keeps out the blocks where the far channel carries only the near party's bleed (the
    near party speaking alone): regressing the near voice on its own delayed copy fits the voice's
    periodicity, not the path. The far party's share is taken as the far channel's share of the two
    channels' power, the near channel's being its most in the block and the block before (``recent``):
    the far channel's echo of the near party outlasts the near party's speech by the echo delay.
    """
    own = np.maximum(near - gain * far, 0.0)
    floor = max(float(np.percentile(near, _FLOOR_PERCENTILE)), _MIN_POWER_RATIO * float(near.mean()), 1e-30)
    share = far / np.maximum(far + np.maximum(near, recent), 1e-30)
    result: Float64Array = share * share / (own + floor)
    return result


def _most_telling(importance: Float64Array, limit: int) -> IndexArray:
    """The blocks (in order) of the ``limit`` largest positive ``importance``."""
    blocks = np.flatnonzero(importance > 0.0)
    if len(blocks) > limit:
        blocks = np.sort(blocks[np.argpartition(importance[blocks], len(blocks) - limit)[-limit:]])
    return blocks


def _delay_correlation(
    near: _Channel, far: _Channel, blocks: IndexArray, weights: Float64Array, lags: int
) -> Float64Array:
    """``sum near(t) far(t - lag)`` over ``blocks``, each weighted, for lags ``0 .. lags - 1`` (lags <=
    block): each near block zero-padded to two blocks against the far channel's two blocks ending with it,
    so the sums are exact, with no wrap-around."""
    block = near.block
    near_spectra = np.fft.rfft(near.rows(blocks, 0, block), n=2 * block, axis=1)
    far_spectra = np.fft.rfft(far.rows(blocks, -block, 2 * block), axis=1)
    np.conjugate(near_spectra, out=near_spectra)
    near_spectra *= far_spectra
    circular = np.fft.irfft(weights @ near_spectra, n=2 * block)
    # circular[m] pairs near(t) with far(t + m - block): lag block - m.
    result: Float64Array = circular[block - np.arange(lags)]
    return result


def _lagged(
    near: _Channel, far: _Channel, blocks: IndexArray, first: int, taps: int
) -> tuple[Float64Array, Float64Array]:
    """Per block k of ``blocks`` (on the far channel's clock), ``sum near(t + first) far(t - j)`` and
    ``sum far(t) far(t - j)`` for ``j = 0 .. taps - 1``: rows of the normal equations any weighting of the
    blocks sums in one product."""
    block = far.block
    near_rows = near.rows(blocks, first, block)
    history = far.rows(blocks, 1 - taps, block + taps - 1)
    # late[k, i, t] = far(t - (taps - 1 - i)) for the t of block k: lag j is column taps - 1 - j.
    late = np.lib.stride_tricks.sliding_window_view(history, block, axis=1)
    cross = np.einsum("kt,kit->ki", near_rows, late)[:, ::-1].astype(np.float64)
    auto = np.einsum("kt,kit->ki", history[:, taps - 1 :], late)[:, ::-1].astype(np.float64)
    return cross, auto


def _fit(near: _Channel, far: _Channel, rate_hz: int, settings: EchoSettings) -> EchoPath:
    """The path from ``far`` into ``near``, with its tests.

    The delay is where the weighted cross-correlation peaks; the taps are then fitted against the near
    channel advanced by the window's first lag, so the two sides of the normal equations sum over the
    same stretches of the far signal: with the weights changing from block to block, a window shifted
    by the delay on one side only biased the taps by half when the delay was a sixth of a block.
    """
    block = near.block
    taps = max(1, round(settings.span_s * rate_hz))
    lags = min(round(settings.max_delay_s * rate_hz) + taps, block)
    limit = max(2, round(settings.fit_s * rate_hz / block))
    search = max(2, round(settings.search_s * rate_hz / block))
    recent = near.power.copy()
    recent[1:] = np.maximum(recent[1:], near.power[:-1])
    weights = _weights(near.power, recent, far.power, 0.0)
    blocks = _most_telling(weights * far.power, search)
    if len(blocks) == 0:
        return EchoPath(np.zeros(taps), 0, 0.0, -math.inf, 0.0, False)
    cross = _delay_correlation(near, far, blocks, weights[blocks], lags)
    peak = int(np.argmax(np.abs(cross[: lags - taps + 1])))
    first = max(0, min(peak - taps // 4, lags - taps))
    advanced = near.powers(first)
    weights = _weights(advanced, recent, far.power, 0.0)
    blocks = _most_telling(weights * far.power, limit)
    rows_cross, rows_auto = _lagged(near, far, blocks, first, taps)
    auto = weights[blocks] @ rows_auto
    if auto[0] <= 0.0:
        return EchoPath(np.zeros(taps), 0, 0.0, -math.inf, 0.0, False)
    path = _solve(weights[blocks] @ rows_cross, auto)
    # The second pass weighs blocks by what the first path leaves unexplained; its sums over the even
    # and the odd blocks give the agreement test, and together the whole fit.
    gain = float(path @ _toeplitz(auto, taps) @ path) / float(auto[0])
    weights = _weights(advanced, recent, far.power, gain)[blocks]
    sums = [
        (even_odd @ rows_cross, even_odd @ rows_auto)
        for even_odd in (np.where(blocks % 2 == parity, weights, 0.0) for parity in (0, 1))
    ]
    halves = [_solve(c, a) if a[0] > 0.0 else np.zeros(taps) for c, a in sums]
    cross, auto = sums[0][0] + sums[1][0], sums[0][1] + sums[1][1]
    path = _solve(cross, auto)
    agreement = _agreement(halves[0], halves[1], auto)
    gain = float(path @ _toeplitz(auto, taps) @ path) / float(auto[0])
    gain_db = 10.0 * math.log10(gain) if gain > 0.0 else -math.inf
    explained = min(gain * float(far.power.sum()) / max(float(advanced.sum()), 1e-30), 1.0)
    residual_db = 10.0 * math.log10(max(1.0 - explained, 1e-12))
    applied = agreement >= settings.min_agreement and residual_db >= settings.min_residual_db
    return EchoPath(path, first, agreement, gain_db, residual_db, applied)


def fit_path(
    near: npt.NDArray[np.floating], far: npt.NDArray[np.floating], rate_hz: int, settings: EchoSettings
) -> EchoPath:
    """The bleed path from ``far`` into ``near`` (both the same length, same rate), with its tests."""
    block = _block_size(rate_hz, settings)
    return _fit(
        _Channel.of(near.astype(np.float32), block),
        _Channel.of(far.astype(np.float32), block),
        rate_hz,
        settings,
    )


def _filtered(signal: FloatArray, path: EchoPath) -> FloatArray:
    """``signal`` through ``path`` (as long as ``signal``), by direct convolution: ``taps`` multiplications
    a sample, cheaper than the FFTs of a block convolution for one short path."""
    out = np.zeros(len(signal), dtype=np.float32)
    if path.first_lag < len(signal):
        kept = len(signal) - path.first_lag
        out[path.first_lag :] = np.convolve(signal[:kept], path.taps.astype(np.float32))[:kept]
    return out


def _response(path: EchoPath, size: int) -> ComplexArray:
    """The path's frequency response on a ``size``-point grid."""
    kernel = np.zeros(size)
    kernel[path.first_lag : path.first_lag + len(path.taps)] = path.taps
    result: ComplexArray = np.fft.rfft(kernel)
    return result


def _demixed(
    first: FloatArray, second: FloatArray, into_first: EchoPath, into_second: EchoPath
) -> tuple[FloatArray, FloatArray]:
    """Both channels less their bleed, divided by the loop (to second order), by overlap-save FFTs.

    The FFT is four times the longest kernel (the loop squared after a path, ``span`` samples) and at
    least 4096 points, so each block keeps three quarters of its outputs or more.
    """
    ends = [path.first_lag + len(path.taps) - 1 for path in (into_first, into_second)]
    span = max(ends) + 2 * sum(ends) + 1
    size = 1 << max(12, math.ceil(math.log2(4 * span)))
    hop = size - span + 1
    length = len(first)
    count = max(1, math.ceil(length / hop))
    h_first, h_second = _response(into_first, size), _response(into_second, size)
    loop = h_first * h_second
    demix = 1.0 + loop + loop * loop
    # Each output is demix times its own channel plus (-demix H) times the other: two products a bin.
    crossed_first, crossed_second = -demix * h_first, -demix * h_second

    def spectra(samples: FloatArray) -> ComplexArray:
        padded = np.zeros((count - 1) * hop + size, dtype=np.float64)
        padded[span - 1 : span - 1 + length] = samples
        step = padded.strides[0]
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(count, size), strides=(hop * step, step), writeable=False
        )
        result: ComplexArray = np.fft.rfft(frames, axis=1)
        return result

    def samples_of(spectrum: ComplexArray) -> FloatArray:
        out = np.empty(count * hop, dtype=np.float32)
        out.reshape(count, hop)[:] = np.fft.irfft(spectrum, n=size, axis=1)[:, span - 1 :]
        result: FloatArray = out[:length]
        return result

    spec_first, spec_second = spectra(first), spectra(second)
    mixed = spec_first * demix
    mixed += spec_second * crossed_first
    clean_first = samples_of(mixed)
    np.multiply(spec_second, demix, out=mixed)
    spec_first *= crossed_second
    mixed += spec_first
    return clean_first, samples_of(mixed)


def cancel_crosstalk(
    first: FloatArray, second: FloatArray, rate_hz: int, settings: EchoSettings
) -> tuple[FloatArray, FloatArray, tuple[EchoPath, EchoPath]]:
    """Both channels with the other party's bleed removed, and the two paths (second->first, first->second).

    With ``a = s_a + H_b s_b`` and ``b = s_b + H_a s_a`` (``H_b``: the path from the second channel into
    the first), each party's own signal is ``(a - H_b b) / (1 - H_b H_a)``: the subtraction leaves a's
    voice through both paths, which the division removes (expanded to second order, exact to a few
    hundredths of a percent for any bleed under -6 dB). With one path applied there is no loop: that
    channel is its samples less the path's output (a direct convolution), and the other keeps its samples
    (the same array), as both do when neither path passes its tests.
    """
    block = _block_size(rate_hz, settings)
    chan_a, chan_b = _Channel.of(first, block), _Channel.of(second, block)
    into_a = _fit(chan_a, chan_b, rate_hz, settings)
    into_b = _fit(chan_b, chan_a, rate_hz, settings)
    paths = (into_a, into_b)
    if into_a.applied and into_b.applied:
        return (*_demixed(first, second, into_a, into_b), paths)
    if into_a.applied:
        return first - _filtered(second, into_a), second, paths
    if into_b.applied:
        return first, second - _filtered(first, into_b), paths
    return first, second, paths
