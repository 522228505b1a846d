"""Every fenced ``bash`` block of the README runs as written, in order, against a real demo server.

What the test changes, and nothing else:

* the port: the demo listens on a free port (``CONVOSCOPE_PORT``) and ``127.0.0.1:8000`` in a block
  becomes that address;
* the data directory: ``CONVOSCOPE_DATA_DIR`` points at a temporary folder, so the demo lives in its
  ``demo`` sub-folder exactly as it would under ``~/.convoscope``;
* the key: ``cvs_...`` becomes the key the demo printed, and ``$KEY`` is set for later blocks as the
  reader's shell would have it from the first.

Two blocks are checked rather than run: ``pip install uv`` (uv is already here: the test needs it on
``PATH``) and ``./scripts/test`` (it runs this suite). Ingest answers 202 before the call is stored, so a
block whose check fails is run again for a few seconds, as a reader would after a moment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
INSTALL = "pip install uv && "
README_ADDRESS = "127.0.0.1:8000"
KEY_PLACEHOLDER = "cvs_..."
SETTLE_S = 10.0
DEMO_START_S = 180.0
SIMULATION_S = 300.0


def readme_blocks() -> list[str]:
    """The README's bash blocks, in order."""
    return [match.group(1) for match in FENCE.finditer(README.read_text())]


@dataclass
class Demo:
    """``uv run convoscope demo`` as the README starts it, and what a block needs to talk to it."""

    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    log: Path
    key: str = ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + DEMO_START_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            printed = re.search(r"API key for this project: (\S+)", self.log.read_text())
            if printed:
                # The key is printed just before the server starts listening: wait for it to answer.
                self.key = printed.group(1)
                try:
                    healthz = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                assert healthz.status_code == 200, healthz.text
                return
            time.sleep(0.5)
        raise AssertionError(f"the demo did not start in {DEMO_START_S} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVOSCOPE_")}
    env.update(CONVOSCOPE_DATA_DIR=str(tmp_path / "convoscope"), CONVOSCOPE_PORT=str(port), COLUMNS="80")
    return env


@pytest.fixture
def uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv is not on PATH (scripts/test installs it)"
    return found


def _start_demo(block: str, tmp_path: Path, started: list[Demo]) -> Demo:
    """The install block: ``pip install uv`` is not run; the rest is, in the background."""
    assert block.startswith(INSTALL), block
    command = block.removeprefix(INSTALL).strip()
    port = free_port()
    env = _env(tmp_path, port)
    helped = subprocess.run(
        f"{command} --help", shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert helped.returncode == 0 and "demo data" in helped.stdout, helped.stderr
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the demo runs under uv: stop both with one signal to the group
        )
    demo = Demo(process, port, env, log)
    started.append(demo)  # stopped by the fixture even when it never becomes ready
    demo.wait_ready()
    return demo


def _run(block: str, demo: Demo) -> subprocess.CompletedProcess[str]:
    script = block.replace(KEY_PLACEHOLDER, demo.key).replace(README_ADDRESS, f"127.0.0.1:{demo.port}")
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env={**demo.env, "KEY": demo.key},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _leading_json(output: str) -> tuple[object, str]:
    """The JSON document curl printed first (it ends no line), and what followed it."""
    document, end = json.JSONDecoder().raw_decode(output.lstrip())
    return document, output.lstrip()[end:]


def _posted_ids(output: str) -> list[str]:
    answer, _ = _leading_json(output)
    assert isinstance(answer, dict), output
    assert answer["accepted"] == len(answer["ids"]) >= 1, answer
    return [str(i) for i in answer["ids"]]


def _check_listing(block: str, demo: Demo, posted: list[str]) -> None:
    """A block after a POST prints every posted call, once per command in it."""
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    deadline = time.monotonic() + SETTLE_S
    while True:
        result = _run(block, demo)
        assert result.returncode == 0, (block, result.stdout, result.stderr)
        if all(result.stdout.count(call_id) == len(commands) for call_id in posted):
            break
        assert time.monotonic() < deadline, (block, result.stdout, result.stderr)
        time.sleep(0.5)
    listed, rest = _leading_json(result.stdout)
    assert isinstance(listed, dict) and [item["id"] for item in listed["items"]] == posted, listed
    assert all(len(line) <= 80 for line in rest.splitlines()), rest  # the CLI's table, at 80 columns


def _check_simulation(block: str, demo: Demo) -> None:
    """The block starts the reference agent in the background, runs the suite against two versions and
    stops the agent; it runs in its own session so nothing it started outlives it."""
    script = block.replace(KEY_PLACEHOLDER, demo.key).replace(README_ADDRESS, f"127.0.0.1:{demo.port}")
    process = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env={**demo.env, "KEY": demo.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=SIMULATION_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, (out, err)
    text = " ".join(out.split())
    assert "run run-" in text and "18 passed, 0 failed, 0 errored of 18" in text, out
    # the second version refuses the transfer every time it is asked: its checks fail and it loops
    assert "detectably worse: (conversation passed), loop_detection, scenario_checks" in text, out
    assert "clinic-v2 is worse" in text, out


@pytest.fixture
def demo_cleanup() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.stop()


def test_every_readme_example_runs_as_written(tmp_path: Path, uv: str, demo_cleanup: list[Demo]) -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 4, "the README's examples were not found"
    demo: Demo | None = None
    posted: list[str] = []
    for block in blocks:
        if block.startswith(INSTALL):
            demo = _start_demo(block, tmp_path, demo_cleanup)
        elif block.strip() == "./scripts/test":
            script = ROOT / "scripts" / "test"
            assert script.is_file() and os.access(script, os.X_OK)
        elif "convoscope simulate" in block:
            assert demo is not None, "the simulation block runs while the demo serves"
            _check_simulation(block, demo)
        elif "-X POST" in block:
            assert demo is not None, "a block talks to the server before the demo starts"
            result = _run(block, demo)
            assert result.returncode == 0, (block, result.stdout, result.stderr)
            posted = _posted_ids(result.stdout)
        elif posted:
            assert demo is not None
            _check_listing(block, demo, posted)
        else:
            raise AssertionError(f"a README block this test does not know how to check:\n{block}")
    assert demo is not None and posted, "the README no longer starts the demo and sends a call"
    # The demo's data stayed in its own folder; reading it created no store beside it.
    data_root = tmp_path / "convoscope"
    assert (data_root / "demo" / "metadata.db").exists()
    assert not (data_root / "metadata.db").exists() and not (data_root / "chdb").exists()
