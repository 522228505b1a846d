"""``convoscope audio`` as a user runs it: analyse files, re-analyse stored calls (with a server or not)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
import soundfile as sf

from convoscope.demo.data import demo_calls, demo_recordings, recording_bytes
from convoscope.testing import call_payload, write_stereo_wav

from .conftest import ServerProcess, run_cli

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schema" / "turn-taking.json").read_text()
)
USER = [(0.5, 2.0), (4.0, 6.0)]
AGENT = [(2.6, 3.8), (5.2, 7.5)]


@pytest.fixture
def stereo(tmp_path: Path) -> Path:
    return write_stereo_wav(tmp_path / "call.wav", left=USER, right=AGENT, duration_s=8.0, noise_db=-60)


def test_analyze_prints_a_table_and_a_document_that_validates(tmp_path: Path, stereo: Path) -> None:
    table = run_cli(
        "audio", "analyze", str(stereo), "--channel-map", "user,agent", "--vad", "webrtc", data_dir=tmp_path
    )
    assert table.returncode == 0, table.stderr
    assert "agent_interruptions" in table.stdout and "response_gap_p50_s" in table.stdout

    result = run_cli(
        "audio",
        "analyze",
        str(stereo),
        "--channel-map",
        "user,agent",
        "--vad",
        "webrtc",
        "--param",
        "long_silence_s=0.5",
        "--json",
        data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert document["segments"] == {"user": [list(i) for i in USER], "agent": [list(i) for i in AGENT]}
    assert document["params"]["turn_taking"]["long_silence_s"] == 0.5
    metrics = {m["metric"]: m for m in document["metrics"]}
    assert metrics["turn_taking.agent_interruptions"]["value"] == 1.0
    assert metrics["turn_taking.long_silences"]["value"] == 1.0  # only the 2.0-2.6 s gap exceeds 0.5 s


def test_analyze_a_pair_of_mono_files(tmp_path: Path, stereo: Path) -> None:
    samples, rate = sf.read(stereo, dtype="int16")
    user, agent = tmp_path / "user.wav", tmp_path / "agent.wav"
    sf.write(user, np.ascontiguousarray(samples[:, 0]), rate)
    sf.write(agent, np.ascontiguousarray(samples[:, 1]), rate)
    result = run_cli(
        "audio",
        "analyze",
        str(agent),
        str(user),
        "--channel-map",
        "agent,user",
        "--vad",
        "webrtc",
        "--json",
        data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["segments"]["user"] == [list(i) for i in USER]


def _bad_files(tmp_path: Path, stereo: Path) -> dict[str, Path]:
    whole = stereo.read_bytes()
    files = {
        "truncated": tmp_path / "truncated.wav",
        "corrupt": tmp_path / "corrupt.flac",
        "text": tmp_path / "notes.wav",
        "empty": tmp_path / "empty.wav",
        "mono": tmp_path / "mono.wav",
    }
    files["truncated"].write_bytes(whole[: len(whole) // 3])
    files["corrupt"].write_bytes(b"fLaC" + bytes(range(256)) * 8)
    files["text"].write_text("this is not audio\n")
    sf.write(files["empty"], np.zeros((0, 2), dtype=np.int16), 16000)
    sf.write(files["mono"], np.zeros(16000, dtype=np.int16), 16000)
    return files


@pytest.mark.parametrize(
    ("name", "channel_map", "problem"),
    [
        ("truncated", "user,agent", "truncated"),
        ("corrupt", "user,agent", "not a readable audio file"),
        ("text", "user,agent", "not a readable audio file"),
        ("empty", "user,agent", "no audio frames"),
        ("mono", "user,agent", "mono"),
        ("stereo", "user,agent,agent", "names 3 channels but the recording has 2"),
        ("stereo", None, "channel map unknown"),
    ],
)
def test_bad_input_names_the_file_and_exits_2(
    tmp_path: Path, stereo: Path, name: str, channel_map: str | None, problem: str
) -> None:
    path = stereo if name == "stereo" else _bad_files(tmp_path, stereo)[name]
    args = ["audio", "analyze", str(path), "--vad", "webrtc"]
    if channel_map is not None:
        args += ["--channel-map", channel_map]
    result = run_cli(*args, data_dir=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())
    assert str(path) in message and problem in message, message
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("min_overlap_s=-1", "min_overlap_s"),
        ("vad.state_reset_s=-0.5", "state_reset_s"),
        ("bleed_percentile=150", "bleed_percentile"),
        ("vad.edge_ms=zero", "edge_ms"),
    ],
)
def test_bad_parameter_exits_2(tmp_path: Path, stereo: Path, override: str, field: str) -> None:
    result = run_cli(
        "audio",
        "analyze",
        str(stereo),
        "--channel-map",
        "user,agent",
        "-p",
        override,
        data_dir=tmp_path,
    )
    assert result.returncode == 2 and field in result.stderr, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


def _get(server: ServerProcess, path: str, auth: dict[str, str]) -> Any:
    response = httpx.get(f"{server.url}{path}", headers=auth, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _scores_when(
    server: ServerProcess, call_id: str, auth: dict[str, str], ready: Any, timeout_s: float = 120.0
) -> dict[str, dict[str, Any]]:
    """The call's turn-taking scores once ``ready(scores, jobs)`` holds (analysis runs in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        detail = _get(server, f"/api/v1/calls/{call_id}", auth)
        scores = {s["metric"].removeprefix("turn_taking."): s for s in detail["scores"]}
        jobs = {j["kind"]: j for j in detail["jobs"]}
        if ready(scores, jobs):
            return scores
        assert time.monotonic() < deadline, detail["jobs"]
        time.sleep(0.3)


def _manifest_gap_p50(sha256: str) -> float:
    """The median response gap the demo recording was built with (agent start - preceding user end)."""
    recording = next(r for r in demo_recordings() if r.sha256 == sha256)
    gaps = [
        nxt.start_s - prev.end_s
        for prev, nxt in zip(recording.turns, recording.turns[1:], strict=False)
        if prev.role.value == "user" and nxt.role.value == "agent"
    ]
    return float(np.percentile(gaps, 50))


def _upload_demo_calls(server: ServerProcess, auth: dict[str, str]) -> dict[str, str]:
    """The demo's recorded calls, uploaded with their FLACs as a user would; call id -> agent."""
    agents: dict[str, str] = {}
    for call in demo_calls(now=datetime.now(UTC), count=len(demo_recordings())):
        [recording] = call.recordings
        assert recording.sha256 is not None
        document = call.model_copy(update={"recordings": []}).model_dump(mode="json", exclude_none=True)
        roles = ",".join(recording.channel_map[channel].value for channel in sorted(recording.channel_map))
        response = httpx.post(
            f"{server.url}/api/v1/calls",
            data={"call": json.dumps(document), "channel_map": roles},
            files={"recording": ("call.flac", recording_bytes(recording.sha256), "audio/flac")},
            headers=auth,
            timeout=60,
        )
        assert response.status_code == 202, response.text
        agents[response.json()["ids"][0]] = str(call.agent_id)
    return agents


def test_recorded_calls_are_analysed_and_reanalysed_through_the_server_then_directly(
    server: ServerProcess, auth: dict[str, str]
) -> None:
    server.start()
    agents = _upload_demo_calls(server, auth)

    def analysed(scores: dict[str, Any], jobs: dict[str, Any]) -> bool:
        return jobs.get("audio.analyze", {}).get("status") == "done" and "response_gap_p50_s" in scores

    for call_id in agents:
        scores = _scores_when(server, call_id, auth, analysed)
        sha = _get(server, f"/api/v1/calls/{call_id}", auth)["call"]["recordings"][0]["sha256"]
        # Real (espeak-ng) speech through the default silero detector, against the recording's own timing.
        assert scores["response_gap_p50_s"]["value"] == pytest.approx(_manifest_gap_p50(sha), abs=0.03)
        assert scores["response_gap_p50_s"]["params"]["vad"]["backend"] == "silero"

    dental = sorted(c for c, agent in agents.items() if agent == "dental-receptionist")
    others = sorted(c for c, agent in agents.items() if agent != "dental-receptionist")
    assert dental and others
    target = dental[0]
    result = run_cli(
        "audio", "reanalyze", "--call", target, "-p", "long_silence_s=0.3", data_dir=server.data_dir
    )
    assert result.returncode == 0, result.stderr
    assert f"queued 1 calls for re-analysis on {server.url}" in " ".join(result.stdout.split())
    scores = _scores_when(
        server, target, auth, lambda s, j: s["long_silences"]["params"]["long_silence_s"] == 0.3
    )
    assert scores["long_silences"]["value"] >= 1.0  # every gap of a voice agent is longer than 0.3 s

    server.stop()
    result = run_cli(
        "audio",
        "reanalyze",
        "--agent",
        "dental-receptionist",
        "--since",
        "2000-01-01",
        "-p",
        "turn_merge_s=0.7",
        data_dir=server.data_dir,
    )
    assert result.returncode == 0, result.stderr
    summary = " ".join(result.stdout.split())
    assert f"re-analysed {len(dental)} of {len(dental)} calls" in summary, summary
    for call_id in (dental[-1], others[0]):
        shown = run_cli("calls", "show", call_id, "--json", data_dir=server.data_dir)
        assert shown.returncode == 0, shown.stderr
        stored = {s["metric"]: s for s in json.loads(shown.stdout)["scores"]}
        params = stored["turn_taking.long_silences"]["params"]
        assert params["turn_merge_s"] == (0.7 if call_id in dental else 1.0)
        assert params["long_silence_s"] == 10.0  # the job's parameters replace the earlier re-analysis's


def test_direct_reanalysis_reports_failures_and_unknown_calls(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    missing = "0" * 64
    recording = {"uri": f"blob:{missing}", "channels": 2, "channel_map": {"0": "user", "1": "agent"}}
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps([call_payload(external_id="lost-audio", recordings=[recording])]))
    assert run_cli("ingest", str(calls_file), data_dir=data_dir).returncode == 0

    result = run_cli("audio", "reanalyze", "--since", "2000-01-01", data_dir=data_dir)
    assert result.returncode == 1, (result.stdout, result.stderr)
    output = " ".join(result.stdout.split())
    assert "re-analysed 0 of 1 calls" in output and "1 failed" in output and missing in output

    unknown = run_cli("audio", "reanalyze", "--call", "no-such-call", data_dir=data_dir)
    assert unknown.returncode == 2 and "no-such-call" in unknown.stderr
