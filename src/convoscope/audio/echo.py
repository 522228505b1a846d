"""Crosstalk bleed and echo removal: each channel minus the other party's voice as it leaks in.

On a two-channel call each microphone also hears the other party, late and attenuated (a handset's
acoustic echo, a headset's crosstalk, a hybrid's reflection). A level rule cannot tell that bleed from
this party's own quiet speech once the bleed is within about 15 dB of it; but the bleed is not an unknown
sound: it is the other channel's signal through a short linear path. This module estimates that path per
direction on the recording itself and subtracts the predicted bleed, so what is left on a channel is its
own party (and its own noise), whatever the bleed level.

The path is a ``taps``-long FIR filter placed at the delay where the two channels correlate most (within
``max_delay``), fitted by least squares (the Wiener solution) from correlations accumulated over blocks of
the whole call with FFTs: the other party's voice correlates with its bleed, while this party's speech and
either channel's noise do not, so the fit needs no voice activity and no double-talk detector. Because each
channel also carries the *other* direction's bleed, a first pass is refined by a second one fitted against
the other channel with its own bleed of this party removed (otherwise subtracting would put a faint,
delayed copy of this party back onto its own channel).

A fitted path is only applied when it is real: the filters fitted on the even and on the odd blocks must
agree (``min_agreement``, the cosine similarity of their outputs), which a chance correlation between two
unrelated channels never does; and a path that explains all but less than ``min_residual_db`` of the near
channel's power is not bleed but a shared mix (one signal on both channels), which subtracting would
erase, so it is left alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["EchoPath", "EchoSettings", "cancel_crosstalk", "fit_path"]

FloatArray = npt.NDArray[np.float32]
ComplexArray = npt.NDArray[np.complex128]

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


@dataclass(frozen=True, slots=True)
class EchoPath:
    """A fitted bleed path: ``taps[j]`` applies to the far signal ``first_lag + j`` samples late.

    ``agreement`` is the cosine similarity of what the paths fitted on even and on odd blocks predict,
    ``gain_db`` the path's gain on the far signal, ``residual_db`` the near channel's power left after
    subtraction (0 dB: none of it is bleed); ``applied`` says whether both tests passed.
    """

    taps: npt.NDArray[np.float64]
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
class _Blocks:
    """A channel cut into ``block``-sample blocks, each one's spectrum zero-padded to ``2 * block``.

    ``padded[k]`` is block k at the start of its window; ``late[k]`` the same block at the window's end
    (a shift by ``block``, which multiplies bin f by (-1)^f); ``segments_conj[k]`` the conjugate spectrum
    of the window holding blocks k-1 and k. Block k against segment k pairs every sample of the block
    with every sample up to ``block`` earlier, with no wrap-around, so the correlations are exact sums
    over the whole call.
    """

    padded: ComplexArray
    late: ComplexArray
    segments_conj: ComplexArray
    power: npt.NDArray[np.float64]

    @classmethod
    def of(cls, samples: npt.NDArray[np.float64], block: int) -> _Blocks:
        count = max(1, math.ceil(len(samples) / block))
        flat = np.zeros(count * block, dtype=np.float64)
        flat[: len(samples)] = samples
        rows = flat.reshape(count, block)
        padded = np.fft.rfft(rows, n=2 * block, axis=1)
        sign = np.where(np.arange(block + 1) % 2 == 0, 1.0, -1.0)
        late = padded * sign
        segments = late.copy()
        segments[1:] += padded[:-1]
        np.conjugate(segments, out=segments)
        power = np.einsum("ij,ij->i", rows, rows) / block
        return cls(padded, late, segments, power)


def _emphasised(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = samples.copy()
    out[1:] -= _PRE_EMPHASIS * samples[:-1]
    return out


@dataclass(frozen=True, slots=True)
class _Products:
    """A near/far pair's weighted correlations, summed straight from the block spectra.

    Each weighted sum is one pass over the two spectra (no per-block product is stored: writing one
    out cost more than all the FFTs of the fit).
    """

    near: _Blocks
    far: _Blocks

    @classmethod
    def of(cls, near: _Blocks, far: _Blocks) -> _Products:
        return cls(near, far)

    def correlations(
        self, weights: npt.NDArray[np.float64], lags: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``sum near(t) far(t - lag)`` and ``sum far(t) far(t - lag)`` for lags ``0 .. lags - 1``, each
        block's sums weighted by ``weights`` (zero leaves a block out)."""
        # einsum, not a BLAS product: BLAS threads would break "one core".
        scaled = self.far.segments_conj * weights[:, None]
        cross = np.fft.irfft(np.einsum("kf,kf->f", self.near.late, scaled))[:lags]
        auto = np.fft.irfft(np.einsum("kf,kf->f", self.far.late, scaled))[:lags]
        return cross, auto


def _toeplitz(auto: npt.NDArray[np.float64], taps: int) -> npt.NDArray[np.float64]:
    index = np.abs(np.arange(taps)[:, None] - np.arange(taps)[None, :])
    result: npt.NDArray[np.float64] = auto[index]
    return result


def _solve(
    cross: npt.NDArray[np.float64], auto: npt.NDArray[np.float64], first: int, taps: int
) -> npt.NDArray[np.float64]:
    """Least-squares FIR taps at lags ``first .. first + taps - 1`` (the normal equations, Toeplitz)."""
    matrix = _toeplitz(auto, taps) + _RIDGE * max(float(auto[0]), 1e-30) * np.eye(taps)
    result = np.linalg.solve(matrix, cross[first : first + taps]).astype(np.float64)
    return result


def _agreement(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], auto: npt.NDArray[np.float64]
) -> float:
    """Cosine similarity of two paths' outputs on the far signal (``auto``: its autocorrelation).

    Compared on what they predict, not tap by tap: speech leaves some tap combinations all but
    unconstrained, and two fits may differ there without predicting different bleed.
    """
    matrix = _toeplitz(auto, len(a))
    norm = math.sqrt(max(float(a @ matrix @ a) * float(b @ matrix @ b), 0.0))
    return float(a @ matrix @ b) / norm if norm > 0.0 else 0.0


def _weights(
    near: _Blocks, recent: npt.NDArray[np.float64], far: _Blocks, gain: float
) -> npt.NDArray[np.float64]:
    """Each block's weight in the fit: how much of the far channel is the far party, over the near
    channel's own power (its power less ``gain`` times the far's: what the path does not explain).

    The first factor keeps out the blocks where the far channel carries only the near party's bleed (the
    near party speaking alone): regressing the near voice on its own delayed copy fits the voice's
    periodicity, not the path. The far party's share is taken as the far channel's share of the two
    channels' power, the near channel's being its most in the block and the block before (``recent``):
    the far channel's echo of the near party outlasts the near party's speech by the echo delay.
    """
    own = np.maximum(near.power - gain * far.power, 0.0)
    floor = max(
        float(np.percentile(near.power, _FLOOR_PERCENTILE)),
        _MIN_POWER_RATIO * float(near.power.mean()),
        1e-30,
    )
    share = far.power / np.maximum(far.power + np.maximum(near.power, recent), 1e-30)
    result: npt.NDArray[np.float64] = share * share / (own + floor)
    return result


def _fit(
    near: npt.NDArray[np.float64],
    near_blocks: _Blocks,
    far: _Blocks,
    block: int,
    rate_hz: int,
    settings: EchoSettings,
) -> EchoPath:
    """The path from ``far`` into ``near`` (pre-emphasised samples and their blocks), with its tests.

    The delay is where the weighted cross-correlation peaks; the taps are then fitted against the near
    channel advanced by the window's first lag, so the two sides of the normal equations sum over the
    same stretches of the far signal: with the weights changing from block to block, a window shifted
    by the delay on one side only biased the taps by half when the delay was a sixth of a block.
    """
    taps = max(1, round(settings.span_s * rate_hz))
    lags = round(settings.max_delay_s * rate_hz) + taps
    recent = near_blocks.power.copy()
    recent[1:] = np.maximum(recent[1:], near_blocks.power[:-1])
    weights = _weights(near_blocks, recent, far, 0.0)
    cross, auto = _Products.of(near_blocks, far).correlations(weights, lags)
    if auto[0] <= 0.0:
        return EchoPath(np.zeros(taps), 0, 0.0, -math.inf, 0.0, False)
    peak = int(np.argmax(np.abs(cross[: lags - taps + 1])))
    first = max(0, min(peak - taps // 4, lags - taps))
    advanced = _Blocks.of(np.concatenate([near[first:], np.zeros(first)]), block) if first else near_blocks
    products = _Products.of(advanced, far)
    weights = _weights(advanced, recent, far, 0.0)
    cross, auto = products.correlations(weights, taps)
    path = _solve(cross, auto, 0, taps)
    # The second pass weighs blocks by what the first path leaves unexplained; its sums over the even
    # and the odd blocks give the agreement test, and together the whole fit.
    weights = _weights(advanced, recent, far, float(path @ _toeplitz(auto, taps) @ path) / float(auto[0]))
    sums = [
        products.correlations(np.where(np.arange(len(weights)) % 2 == parity, weights, 0.0), taps)
        for parity in (0, 1)
    ]
    halves = [_solve(c, a, 0, taps) if a[0] > 0.0 else np.zeros(taps) for c, a in sums]
    cross, auto = sums[0][0] + sums[1][0], sums[0][1] + sums[1][1]
    path = _solve(cross, auto, 0, taps)
    agreement = _agreement(halves[0], halves[1], auto)
    gain = float(path @ _toeplitz(auto, taps) @ path) / float(auto[0])
    gain_db = 10.0 * math.log10(gain) if gain > 0.0 else -math.inf
    explained = min(gain * float(far.power.sum()) / max(float(advanced.power.sum()), 1e-30), 1.0)
    residual_db = 10.0 * math.log10(max(1.0 - explained, 1e-12))
    applied = agreement >= settings.min_agreement and residual_db >= settings.min_residual_db
    return EchoPath(path, first, agreement, gain_db, residual_db, applied)


def fit_path(
    near: npt.NDArray[np.float64], far: npt.NDArray[np.float64], rate_hz: int, settings: EchoSettings
) -> EchoPath:
    """The bleed path from ``far`` into ``near`` (both the same length, same rate), with its tests."""
    block = _block_size(rate_hz, settings)
    near, far = _emphasised(near), _emphasised(far)
    return _fit(near, _Blocks.of(near, block), _Blocks.of(far, block), block, rate_hz, settings)


def _response(path: EchoPath, block: int) -> ComplexArray:
    """The path's frequency response on the ``2 * block`` grid (zero where it is not applied)."""
    kernel = np.zeros(2 * block)
    if path.applied:
        kernel[path.first_lag : path.first_lag + len(path.taps)] = path.taps
    result: ComplexArray = np.fft.rfft(kernel)
    return result


def _overlap_add(spectra: ComplexArray, block: int, length: int) -> FloatArray:
    """The time signal of per-block output spectra whose blocks start ``block`` samples apart."""
    frames = np.fft.irfft(spectra, n=2 * block, axis=1)
    out = np.zeros((len(frames) + 1) * block, dtype=np.float64)
    out[: len(frames) * block] += frames[:, :block].reshape(-1)
    out[block:] += frames[:, block:].reshape(-1)
    return out[:length].astype(np.float32)


def cancel_crosstalk(
    first: FloatArray, second: FloatArray, rate_hz: int, settings: EchoSettings
) -> tuple[FloatArray, FloatArray, tuple[EchoPath, EchoPath]]:
    """Both channels with the other party's bleed removed, and the two paths (second->first, first->second).

    With ``a = s_a + H_b s_b`` and ``b = s_b + H_a s_a`` (``H_b``: the path from the second channel into
    the first), each party's own signal is ``(a - H_b b) / (1 - H_b H_a)``: the subtraction leaves a's
    voice through both paths, which the division removes (expanded to second order, exact to a few
    hundredths of a percent for any bleed under -6 dB). A channel whose path fails its tests keeps its
    samples (the same array) when the other's failed too.
    """
    block = _block_size(rate_hz, settings)
    raw_a, raw_b = first.astype(np.float64), second.astype(np.float64)
    emph_a, emph_b = _emphasised(raw_a), _emphasised(raw_b)
    fit_a, fit_b = _Blocks.of(emph_a, block), _Blocks.of(emph_b, block)
    into_a = _fit(emph_a, fit_a, fit_b, block, rate_hz, settings)
    into_b = _fit(emph_b, fit_b, fit_a, block, rate_hz, settings)
    if not (into_a.applied or into_b.applied):
        return first, second, (into_a, into_b)
    a, b = _Blocks.of(raw_a, block), _Blocks.of(raw_b, block)
    h_into_a, h_into_b = _response(into_a, block), _response(into_b, block)
    loop = h_into_a * h_into_b
    demix = 1.0 + loop + loop * loop
    clean_a = _overlap_add(demix * (a.padded - h_into_a * b.padded), block, len(first))
    clean_b = _overlap_add(demix * (b.padded - h_into_b * a.padded), block, len(second))
    return (
        clean_a if into_a.applied or into_b.applied else first,
        clean_b,
        (into_a, into_b),
    )
