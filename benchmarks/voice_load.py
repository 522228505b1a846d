"""Voice load: how many concurrent real-time calls the simulator sustains on this box.

The reference agent's voice front runs in its own process in light mode (energy VAD, pre-rendered
replies, no speech recognition), started here on loopback; the simulator calls it with scripted callers
(pre-rendered speech) at each step of the ramp, as ``convoscope load`` does. Reported per step: the
simulator's pacing jitter (how late its 20 ms frames went out: p50, p99, max), its CPU and the agent's
CPU (from ``/proc``, separately), calls completed and errored, the caller → agent response gap from the
recordings (p50, p95) and the time to first audio, each beside the first step as the reference measured
in the same run. The goal is the highest step whose jitter p99 stays under 20 ms. After the last step,
the time to analyse every recording (turn-taking analysis) is printed.

Run: ``uv run python benchmarks/voice_load.py [--ramp 25..200] [--steps 5] [--step-s 30]``. Do not run it
beside other benchmarks; it prints the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from convoscope.simulate.definitions import AgentSpec, Persona, Scenario, Script
from convoscope.simulate.ramp import parse_ramp
from convoscope.simulate.voice.connector import VoiceConnector
from convoscope.simulate.voice.load import StepResult, run_load

AGENT = """
import sys, uvicorn
from convoscope.demo.agent.server import create_app
from convoscope.demo.agent.voice import VoiceOptions
uvicorn.run(create_app(voice=VoiceOptions(light=True)), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="warning", ws_ping_interval=None)
"""
LINES = ["I would like to book a checkup.", "Tuesday morning, please.", "Yes, that works."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the reference agent did not start")


def _share(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """The agent's CPU over [start, end] as a percentage of one core, from the sampled CPU times."""
    inside = [(t, cpu) for t, cpu in samples if start <= t <= end]
    if len(inside) < 2:
        return 0.0
    return 100 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ramp", default="25..200")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step-s", type=float, default=30.0)
    args = parser.parse_args()
    levels = parse_ramp(args.ramp, steps=args.steps)
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}; levels {levels}")
    port = _free_port()
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(port)])
    try:
        _wait_for(port)
        connector = VoiceConnector(f"ws://127.0.0.1:{port}/twilio")
        spec = AgentSpec(id="reference-light", connector={"kind": "twilio", "url": connector.url})
        scenario = Scenario(id="book", goal="book", script=Script(lines=LINES, closing="Thanks, bye."))
        samples: list[tuple[float, float]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.25):
                samples.append((time.monotonic(), _cpu_s(agent.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        report = asyncio.run(
            run_load(connector, spec, [scenario], [Persona(id="neutral")], levels, step_s=args.step_s)
        )
        sampling.set()
        sampler.join()
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    data = report.to_json()
    agent_cpu = {
        step.concurrency: _share(samples, step.held.started, step.held.started + step.held.wall_s)
        for step in report.steps
        if isinstance(step, StepResult)
    }
    base = data["steps"][0]
    print(
        f"{'callers':>7} {'calls':>5} {'err':>4} {'jitter p50':>10} {'p99':>8} {'max':>8} {'sim CPU':>8} "
        f"{'agent CPU':>9} {'gap p50':>8} {'gap p95':>8} {'first audio':>11} {'p99 vs first':>12}"
    )
    for step in data["steps"]:
        jitter, gap = step["pacing_jitter_ms"], step["response_gap_s"]
        first = step["time_to_first_audio_s"]["p50"] or 0
        ratio = (
            (jitter["p99"] or 0) / base["pacing_jitter_ms"]["p99"] if base["pacing_jitter_ms"]["p99"] else 0
        )
        cells = [
            f"{step['concurrency']:>7} {step['calls']:>5} {step['errored']:>4}",
            f"{jitter['p50'] or 0:>8.2f}ms {jitter['p99'] or 0:>6.1f}ms {jitter['max'] or 0:>6.0f}ms",
            f"{step['simulator_cpu_pct'] or 0:>7.0f}% {agent_cpu.get(step['concurrency'], 0):>8.0f}%",
            f"{(gap['p50'] or 0) * 1000:>6.0f}ms {(gap['p95'] or 0) * 1000:>6.0f}ms {first * 1000:>9.0f}ms",
            f"{ratio:>11.2f}x",
        ]
        print(" ".join(cells))
    sustained = [
        s["concurrency"]
        for s in data["steps"]
        if (s["pacing_jitter_ms"]["p99"] or 0) < 20 and not s["errored"]
    ]
    best = max(sustained) if sustained else "none"
    print(f"highest step with pacing jitter p99 < 20 ms and no errors: {best}")
    print(f"every recording analysed {data['analysis_s']:.1f} s after the last call")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
