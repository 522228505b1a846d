"""The CLI as a user runs it: subprocesses against a data directory, with and without a server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from convoscope.testing import call_payload

from .conftest import KEY, ServerProcess, run_cli


def _write_jsonl(path: Path, n: int, prefix: str) -> None:
    path.write_text("\n".join(json.dumps(call_payload(external_id=f"{prefix}{i}")) for i in range(n)) + "\n")


def test_ingest_directly_then_list_and_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "calls.jsonl"
    _write_jsonl(source, 12, "d")
    result = run_cli("ingest", str(source), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "ingested 12 calls" in result.stdout
    listed = run_cli("calls", "list", "--json", "--limit", "50", data_dir=data)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert sorted(c["external_id"] for c in items) == sorted(f"d{i}" for i in range(12))
    shown = run_cli("calls", "show", items[0]["id"], "--json", data_dir=data)
    assert json.loads(shown.stdout)["call"]["external_id"] == items[0]["external_id"]
    table = run_cli("calls", "show", items[0]["id"], data_dir=data)
    assert table.returncode == 0 and "user" in table.stdout


def test_ingest_through_a_running_server(tmp_path: Path, server: ServerProcess) -> None:
    server.start()
    source = tmp_path / "calls.json"
    source.write_text(json.dumps({"calls": [call_payload(external_id=f"s{i}") for i in range(7)]}))
    result = run_cli("ingest", str(source), data_dir=server.data_dir)
    assert result.returncode == 0, result.stderr
    # The CLI went through the server (it could not have opened the store the server holds).
    for _ in range(100):
        page = httpx.get(
            f"{server.url}/api/v1/calls", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        ).json()
        if len(page["items"]) == 7:
            break
    assert sorted(c["external_id"] for c in page["items"]) == sorted(f"s{i}" for i in range(7))
    listed = run_cli("calls", "list", "--json", data_dir=server.data_dir)
    assert len(json.loads(listed.stdout)["items"]) == 7


def test_bad_file_gives_a_clear_error_and_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good, bad = call_payload(external_id="ok"), call_payload(external_id="bad")
    bad["turns"][0]["end_s"] = "late"
    source = tmp_path / "mixed.jsonl"
    source.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = run_cli("ingest", str(source), data_dir=data)
    assert result.returncode == 1
    assert "turns[0].end_s" in result.stderr and "mixed.jsonl" in result.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(good) + "\n{not json\n")
    result = run_cli("ingest", str(broken), data_dir=data)
    assert result.returncode == 1 and "broken.jsonl:2" in result.stderr
    listed = run_cli("calls", "list", "--json", data_dir=data)
    assert listed.returncode == 2 and f"no convoscope data in {data}" in listed.stderr
    assert not data.exists()  # nothing stored, not even an empty store
    missing = run_cli("calls", "show", "no-such-id", data_dir=data)
    assert missing.returncode == 2 and "no convoscope data" in missing.stderr


def test_keys_create_prints_a_working_key(tmp_path: Path, server: ServerProcess) -> None:
    server.start()
    created = run_cli("keys", "create", "--project", "team-b", data_dir=server.data_dir)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cvs_")
    response = httpx.get(f"{server.url}/api/v1/calls", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200 and response.json()["items"] == []
    assert key not in (server.data_dir / "metadata.db").read_bytes().decode("latin-1")


def test_schema_command_prints_the_published_schema(tmp_path: Path) -> None:
    result = run_cli("schema", data_dir=tmp_path)
    published = Path(__file__).resolve().parents[2] / "docs" / "schema" / "call.json"
    assert json.loads(result.stdout) == json.loads(published.read_text())
