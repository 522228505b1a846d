"""Start-up: how long the CLI and the server take before they do any work.

Measured per round, in a fixed order, as a user runs them (a fresh ``python -m convoscope`` each time):

* ``python -c pass`` -- the interpreter's own start, the floor every command stands on (the reference
  of the ratios);
* ``convoscope --help`` and ``convoscope calls list --help`` -- the CLI's import cost;
* ``convoscope calls list`` on a stopped data directory of 200 calls -- a whole read command that opens
  the store itself;
* ``convoscope serve`` on that existing data directory until ``/healthz`` answers 200.

Python caches compiled modules (``__pycache__``) after the first run, as it does on a user's machine, so
the children keep theirs under a temporary ``PYTHONPYCACHEPREFIX`` (the tree is left as it is) and a
warm-up round fills it before the timed rounds. ``--no-bytecode-cache`` measures the other case
(``PYTHONDONTWRITEBYTECODE=1``: every module compiled on every start), which is what a read-only install
without compiled files pays.

``--baseline-src DIR`` measures another revision's ``src`` folder (``git archive REV src | tar -x -C
DIR``) in the same rounds, interleaved, with its own data directory (a store is only opened by the
revision that wrote it): on a shared box only figures from the same run compare. Then the top entries of
``python -X importtime`` for ``--help``, ``calls list`` and the server show where the time goes.

Run: ``uv run python benchmarks/startup.py`` (about 2 minutes; ``--runs 3`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import API_KEY, environment, free_port, percentile, print_environment, print_table, write_json
from convoscope.testing import call_payload

CALLS = 200
HEALTHY_WITHIN_S = 120.0
TOP_IMPORTS = 12
GOALS_S = {"convoscope --help": 0.3, "convoscope calls list --help": 0.5, "server start → healthy": 2.0}
"""Seconds each may take, median; a command's help stands for the CLI's overhead before it works."""


class Variant:
    """One revision of the code: where its sources are, the data directory it wrote, its bytecode cache."""

    def __init__(self, name: str, src: Path | None, data_dir: Path, pycache: Path | None) -> None:
        self.name = name
        self.src = src
        self.data_dir = data_dir
        self.pycache = pycache

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVOSCOPE_", "PYTHONPYCACHE"))}
        env.update(CONVOSCOPE_DATA_DIR=str(self.data_dir), CONVOSCOPE_INIT_API_KEY=API_KEY, COLUMNS="120")
        if self.pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        return env

    def cli(self, *args: str, importtime: bool = False) -> list[str]:
        return [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "convoscope", *args]

    def run(self, *args: str) -> float:
        """Seconds one CLI command takes, start to exit; exits the benchmark if the command fails."""
        start = time.perf_counter()
        done = subprocess.run(self.cli(*args), env=self.env(), capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: convoscope {' '.join(args)} failed: {done.stderr[-2000:]}")
        return elapsed

    def serve_until_healthy(self, *, importtime: bool = False) -> tuple[float, str]:
        """Seconds from starting ``convoscope serve`` to a 200 from ``/healthz``, and its stderr."""
        port = free_port()
        log = self.data_dir.parent / f"{self.name}-serve.log"
        with open(log, "w") as err:
            start = time.perf_counter()
            process = subprocess.Popen(
                self.cli("serve", "--port", str(port), importtime=importtime),
                env=self.env(),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            try:
                while True:
                    if process.poll() is not None:
                        raise SystemExit(f"{self.name}: server exited: {log.read_text()[-2000:]}")
                    if time.perf_counter() - start > HEALTHY_WITHIN_S:
                        raise SystemExit(f"{self.name}: server not healthy in {HEALTHY_WITHIN_S} s")
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.01)
                elapsed = time.perf_counter() - start
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
        return elapsed, log.read_text()


def _reference() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def _prepare(variant: Variant, calls_file: Path) -> None:
    """An existing data directory: the calls ingested with no server running, the store then closed."""
    variant.run("ingest", str(calls_file))


MEASURES: dict[str, Callable[[Variant], float]] = {
    "convoscope --help": lambda v: v.run("--help"),
    "convoscope calls list --help": lambda v: v.run("calls", "list", "--help"),
    "convoscope calls list (stopped data dir)": lambda v: v.run("calls", "list"),
    "server start → healthy": lambda v: v.serve_until_healthy()[0],
}


def _top_imports(stderr: str, count: int = TOP_IMPORTS) -> list[tuple[int, str]]:
    """The ``count`` largest cumulative import times (µs) with the module's name, as importtime nests it."""
    rows: list[tuple[int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:count]


def _import_profiles(variant: Variant) -> None:
    for label, args in (("convoscope --help", ("--help",)), ("convoscope calls list", ("calls", "list"))):
        command = variant.cli(*args, importtime=True)
        done = subprocess.run(command, env=variant.env(), capture_output=True, text=True, timeout=300)
        _print_imports(f"{variant.name}: {label}", done.stderr)
    _, stderr = variant.serve_until_healthy(importtime=True)
    _print_imports(f"{variant.name}: convoscope serve until healthy", stderr)


def _print_imports(title: str, stderr: str) -> None:
    print(f"\ntop import times, {title} (cumulative ms):")
    for micros, name in _top_imports(stderr):
        print(f"  {micros / 1000:8.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="rounds (each measures everything once)")
    parser.add_argument("--baseline-src", type=Path, help="another revision's src folder, measured alongside")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--no-bytecode-cache", action="store_true", help="compile every module on every start"
    )
    args = parser.parse_args()

    env = environment()
    print_environment(env)
    with tempfile.TemporaryDirectory(prefix="convoscope-startup-") as tmp:
        root = Path(tmp)
        calls_file = root / "calls.json"
        calls_file.write_text(json.dumps([call_payload(external_id=f"startup-{i}") for i in range(CALLS)]))
        cached = not args.no_bytecode_cache
        variants = [
            Variant("this tree", None, root / "current" / "data", root / "pyc-current" if cached else None)
        ]
        if args.baseline_src is not None:
            variants.append(
                Variant(
                    "baseline",
                    args.baseline_src.resolve(),
                    root / "baseline" / "data",
                    root / "pyc-baseline" if cached else None,
                )
            )
        for variant in variants:
            variant.data_dir.parent.mkdir(parents=True)
            _prepare(variant, calls_file)
            if cached:  # the warm-up round: every measured path once, filling the bytecode cache
                for take in MEASURES.values():
                    take(variant)
        print(f"bytecode cache: {'kept between runs (warmed up)' if cached else 'off'}")

        times: dict[str, dict[str, list[float]]] = {v.name: {m: [] for m in MEASURES} for v in variants}
        reference: list[float] = []
        for round_number in range(args.runs):
            reference.append(_reference())
            for variant in variants:
                for measure, take in MEASURES.items():
                    times[variant.name][measure].append(take(variant))
            print(f"round {round_number + 1}/{args.runs} done", flush=True)

        floor = percentile(reference, 0.5)
        print(f"\nreference: python -c pass, median {floor * 1000:.0f} ms over {args.runs} runs\n")
        rows: list[list[object]] = []
        for measure in MEASURES:
            for variant in variants:
                series = times[variant.name][measure]
                median = percentile(series, 0.5)
                rows.append(
                    [
                        measure,
                        variant.name,
                        f"{median:.2f} s",
                        f"{min(series):.2f}–{max(series):.2f} s",
                        f"{median / floor:.0f}×",
                        f"{median - floor:.2f} s",
                        f"≤ {GOALS_S[measure]:.1f} s" if measure in GOALS_S else "—",
                    ]
                )
        print_table(["measure", "code", "median", "range", "÷ python -c pass", "over python", "goal"], rows)
        for variant in variants:
            _import_profiles(variant)
    payload: dict[str, Any] = {"environment": env, "reference_s": reference, "times_s": times}
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
