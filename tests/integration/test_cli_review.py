"""``convoscope review fill|queue|label|export|calibration`` as a user runs them: on a stopped data
directory (the reviewer is ``local:<name>``), then through the running server that holds it (the CLI's
key is the reviewer), over the same queue and labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convoscope.testing import call_payload

from .conftest import ServerProcess, run_cli

WINDOW = ("--since", "2025-06-01", "--until", "2025-07-01")


def _ok(*args: str, data: Path) -> Any:
    done = run_cli(*args, data_dir=data)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def test_review_on_a_stopped_data_directory_then_through_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    calls = tmp_path / "calls.jsonl"
    rows = []
    for i in range(4):
        payload = call_payload(external_id=f"r{i}", started_at=f"2025-06-0{i + 1}T10:00:00+00:00")
        if i < 2:  # the end_reason metric fails these
            payload.update(end_reason="error", end_reason_raw="pipeline-error")
        rows.append(json.dumps(payload))
    calls.write_text("\n".join(rows) + "\n")
    _ok("ingest", str(calls), data=data)
    _ok("eval", data=data)

    filled = _ok("review", "fill", *WINDOW, "--json", data=data)
    assert filled["examined"] == 4 and filled["queued"]["low_score"] >= 2
    assert _ok("review", "fill", *WINDOW, "--json", data=data)["queued"]["low_score"] == 0  # idempotent

    answer = _ok("review", "queue", "--reviewer", "alice", "--json", data=data)
    (call,) = answer["items"]
    metrics = {item["metric"]: item for item in call["items"]}
    assert metrics["end_reason"]["result"]["passed"] is False
    assert metrics["end_reason"]["claimed_by"] == {"id": "local:alice", "name": "alice"}

    label = ("review", "label", call["call_id"], "end_reason", "--reviewer", "alice")
    kept = _ok(*label, "--pass", "--note", "the caller hung up", "--json", data=data)
    assert kept["reviewer"] == {"id": "local:alice", "name": "alice"} and kept["verdict"] == "pass"
    assert kept["note"] == "the caller hung up" and kept["created_at"] and kept["rule"] == "low_score"
    twice = run_cli(*label, "--fail", data_dir=data)
    assert twice.returncode == 1 and "already has your label" in twice.stderr
    replaced = _ok(*label, "--fail", "--replace", data=data)
    assert replaced.startswith("replaced") and "fail by alice" in replaced
    unknown = run_cli("review", "label", call["call_id"], "no_such_metric", "--pass", data_dir=data)
    assert unknown.returncode == 1 and "metric" in unknown.stderr

    calibration = {row["metric"]: row for row in _ok("review", "calibration", "--json", data=data)}
    assert calibration["end_reason"]["compared"] == 1 and calibration["end_reason"]["status"] == "undefined"
    assert calibration["csat"]["status"] == "uncalibrated"
    exported = tmp_path / "labels.jsonl"
    _ok("review", "export", "-o", str(exported), data=data)
    (line,) = [json.loads(text) for text in exported.read_text().splitlines()]
    assert line["call_id"] == call["call_id"] and line["label"] == "fail" and line["transcript"]

    server = ServerProcess(data)
    server.start()
    try:
        # Alice still holds the call's other items, so the server's key is handed another call.
        (other,) = _ok("review", "queue", "--json", data=data)["items"]
        assert other["call_id"] != call["call_id"]
        first = other["items"][0]
        through = _ok("review", "label", other["call_id"], first["metric"], "--fail", "--json", data=data)
        assert not through["reviewer"]["id"].startswith("local:") and through["reviewer"]["name"]
        refused = run_cli("review", "label", other["call_id"], first["metric"], "--pass", data_dir=data)
        assert refused.returncode == 1 and "already has your label" in refused.stderr
        lines = _ok("review", "export", "--metric", first["metric"], data=data).splitlines()
        assert other["call_id"] in {json.loads(text)["call_id"] for text in lines}
        rows_now = {row["metric"]: row for row in _ok("review", "calibration", "--json", data=data)}
        assert rows_now[first["metric"]]["labels"] >= 1
    finally:
        server.stop()
