"""The CLI right after ``convoscope demo``: it finds the running demo, never creates a store by reading,
prints ids that ``calls show`` takes, and answers ``--limit`` the same with the server up or down."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from convoscope.testing import call_payload

from .conftest import AUTH, ServerProcess, cli_env, run_cli, stored_calls

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _post_calls(url: str, count: int, *, prefix: str, agent: str = "first-hour-agent") -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    calls = [
        call_payload(
            external_id=f"{prefix}-{i:05d}",
            agent_id=agent,
            started_at=(start + timedelta(minutes=i)).isoformat(),
        )
        for i in range(count)
    ]
    for first in range(0, count, 500):
        batch = calls[first : first + 500]
        response = httpx.post(f"{url}/api/v1/calls", json=batch, headers=AUTH, timeout=60)
        assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while len(stored_calls(url)) < count:
        assert time.monotonic() < deadline, "the posted calls were not stored in time"
        time.sleep(0.2)


def test_reading_commands_refuse_a_data_directory_without_a_store(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for args in (
        ["calls", "list"],
        ["calls", "show", "0190a0c0-0000-7000-8000-000000000000"],
        ["eval"],
        ["sources", "show"],
        ["audio", "reanalyze", "--since", "2026-01-01"],
    ):
        result = run_cli(*args, data_dir=root)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        message = " ".join(result.stderr.split())
        assert f"no convoscope data in {root}; start `convoscope serve` or pass --data-dir" in message, args
        assert "Traceback" not in result.stderr
        assert not root.exists(), args  # reading never creates a store

    # Demo data that no server serves: the error points at it.
    demo = root / "demo"
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps([call_payload(external_id="kept-in-demo")]))
    assert run_cli("ingest", str(calls_file), "--data-dir", str(demo), data_dir=root).returncode == 0
    result = run_cli("calls", "list", data_dir=root)
    assert result.returncode == 2
    assert f"--data-dir {demo}" in " ".join(result.stderr.split())
    assert not (root / "metadata.db").exists() and not (root / "chdb").exists()


def test_commands_find_the_running_demo_server(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()  # the server's log goes beside its data directory
    demo = ServerProcess(data_dir=root / "demo")  # where `convoscope demo` keeps its data under this root
    demo.start()
    try:
        _post_calls(demo.url, 3, prefix="demo")
        listed = run_cli("calls", "list", "--json", data_dir=root)
        assert listed.returncode == 0, listed.stderr
        assert f"using the demo server at {demo.url}" in listed.stderr
        ids = [item["id"] for item in json.loads(listed.stdout)["items"]]
        assert sorted(ids) == sorted(c["id"] for c in stored_calls(demo.url))
        shown = run_cli("calls", "show", ids[0], "--json", data_dir=root)
        assert shown.returncode == 0 and json.loads(shown.stdout)["call"]["id"] == ids[0]
        evaluated = run_cli("eval", data_dir=root)
        assert evaluated.returncode == 0, evaluated.stderr
        assert f"evaluated 3 of 3 calls in {demo.url}" in " ".join(evaluated.stdout.split())
        assert not (root / "metadata.db").exists() and not (root / "chdb").exists()

        # The saved CLI key is checked on the server, so a read loads no database driver...
        profiled = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "convoscope", "calls", "list"],
            env=cli_env(root),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert profiled.returncode == 0 and ids[0] in profiled.stdout, profiled.stderr[-2000:]
        loaded = {line.rsplit("|", 1)[-1].strip() for line in profiled.stderr.splitlines() if "|" in line}
        assert "convoscope.cli.backend" in loaded and "sqlalchemy" not in loaded and "chdb" not in loaded
        # ...and a key the server no longer knows is replaced by a new one.
        saved = root / "demo" / "credentials" / "default.key"
        saved.write_text("cvs_not_a_key_the_server_knows_0000\n")
        again = run_cli("calls", "list", "--json", data_dir=root)
        assert again.returncode == 0, again.stderr
        assert len(json.loads(again.stdout)["items"]) == 3
        assert saved.read_text().strip() != "cvs_not_a_key_the_server_knows_0000"
    finally:
        demo.stop()


def test_ids_print_whole_and_limits_answer_the_same_with_the_server_up_or_down(
    tmp_path: Path, server: ServerProcess
) -> None:
    server.start()
    _post_calls(server.url, 1050, prefix="many")
    expected = [c["id"] for c in stored_calls(server.url)][:1000]

    through_server = run_cli("calls", "list", "--limit", "1000", "--json", data_dir=server.data_dir)
    assert through_server.returncode == 0, through_server.stderr
    assert [i["id"] for i in json.loads(through_server.stdout)["items"]] == expected

    table = run_cli("calls", "list", "--limit", "30", data_dir=server.data_dir, COLUMNS="80")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), table.stdout
    printed = [m.group(0) for line in lines if (m := UUID.search(line))]
    assert printed == expected[:30], table.stdout
    assert "first-hour" in table.stdout  # other columns give way (the agent's name is ellipsized at 80)
    shown = run_cli("calls", "show", printed[-1], data_dir=server.data_dir, COLUMNS="80")
    assert shown.returncode == 0 and "first-hour-agent" in shown.stdout, shown.stderr

    refused_up = run_cli("calls", "list", "--limit", "0", data_dir=server.data_dir)
    server.stop()
    refused_down = run_cli("calls", "list", "--limit", "0", data_dir=server.data_dir)
    for refused in (refused_up, refused_down):
        assert refused.returncode == 2 and "--limit" in refused.stderr, refused.stderr

    from_store = run_cli("calls", "list", "--limit", "1000", "--json", data_dir=server.data_dir)
    assert from_store.returncode == 0, from_store.stderr
    assert [i["id"] for i in json.loads(from_store.stdout)["items"]] == expected
    missing = run_cli("calls", "show", "no-such-id", data_dir=server.data_dir)
    assert missing.returncode == 1 and "not found" in missing.stderr
