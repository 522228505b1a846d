"""``convoscope ingest failed`` and ``ingest retry ID``, through a running server and on the stores alone."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

from convoscope.config import Settings
from convoscope.server.services import open_services
from convoscope.testing import call_payload

from .conftest import AUTH, KEY, ServerProcess, run_cli, stored_calls

TOO_BIG_INDEX = call_payload(
    external_id="old-rules", turns=[{"index": 2**32, "role": "agent", "start_s": 0, "end_s": 1}]
)
"""A call an older version acknowledged before the store's bounds were checked at the edge."""


def _seed_outbox(data_dir: Path, document: object) -> int:
    """Commit a row to the outbox as an earlier server would have, with no server running."""
    services = open_services(Settings(data_dir=data_dir, init_api_key=KEY))
    try:
        return services.meta.enqueue(
            services.default_project.id,
            kind="calls",
            payload=orjson.dumps(document),
            content_type="application/json",
        )
    finally:
        services.close()


def _wait_for_status(url: str, ingest_id: int, status: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = httpx.get(f"{url}/api/v1/ingest/{ingest_id}", headers=AUTH, timeout=10).json()
        if found["status"] == status:
            return dict(found)
        time.sleep(0.1)
    raise AssertionError(f"ingest {ingest_id} never became {status}: {found}")


def test_dead_letters_are_listed_and_retried_through_the_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    row = _seed_outbox(data_dir, TOO_BIG_INDEX)
    server = ServerProcess(data_dir, env={"CONVOSCOPE_HEALTH_MAX_DEAD_LETTERS": "100"})
    server.start()
    try:
        _wait_for_status(server.url, row, "failed")
        listed = run_cli("ingest", "failed", data_dir=data_dir)
        assert listed.returncode == 0, listed.stderr
        line = next(line for line in listed.stdout.splitlines() if line.startswith(f"{row}\t"))
        assert "turns[0].index" in line and "no longer validates" in line
        assert "1 failed" in listed.stdout

        as_json = run_cli("ingest", "failed", "--json", data_dir=data_dir)
        assert [item["ingest_id"] for item in orjson.loads(as_json.stdout)] == [row]

        retried = run_cli("ingest", "retry", str(row), data_dir=data_dir)
        assert retried.returncode == 0, retried.stderr
        assert f"ingest {row} is pending" in retried.stdout
        # The payload is still out of bounds: it goes back to the dead letters, with its reason.
        assert "turns[0].index" in str(_wait_for_status(server.url, row, "failed")["error"])

        missing = run_cli("ingest", "retry", "999999", data_dir=data_dir)
        assert missing.returncode == 1 and "999999 not found" in missing.stderr
    finally:
        server.stop()


def test_a_retry_without_a_server_is_stored_when_the_server_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    services = open_services(Settings(data_dir=data_dir, init_api_key=KEY))
    try:
        store = services.store
        store.command(
            f"ALTER TABLE `{store.database}`.calls ADD CONSTRAINT no_poison CHECK external_id != 'poison'"
        )
        row = services.meta.enqueue(
            services.default_project.id,
            kind="calls",
            payload=orjson.dumps(call_payload(external_id="poison")),
            content_type="application/json",
        )
        services.worker.drain_once()  # refused by the store: retried later, not yet dead
        assert services.meta.status(row).status == "pending"  # type: ignore[union-attr]
        services.meta.mark_failed(row, "refused by the store")
        store.command(f"ALTER TABLE `{store.database}`.calls DROP CONSTRAINT no_poison")
    finally:
        services.close()

    listed = run_cli("ingest", "failed", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    assert f"{row}\tcalls" in listed.stdout and "refused by the store" in listed.stdout
    retried = run_cli("ingest", "retry", str(row), data_dir=data_dir)
    assert retried.returncode == 0 and f"ingest {row} is pending" in retried.stdout

    server = ServerProcess(data_dir)
    server.start()
    try:
        _wait_for_status(server.url, row, "done")
        assert [call["external_id"] for call in stored_calls(server.url)] == ["poison"]
    finally:
        server.stop()


def test_files_are_still_sent_with_the_short_form(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = tmp_path / "calls.json"
    path.write_bytes(orjson.dumps([call_payload(external_id="from-file")]))
    sent = run_cli("ingest", str(path), data_dir=data_dir)
    assert sent.returncode == 0, sent.stderr
    assert "ingested 1 calls" in sent.stdout
    named = run_cli("ingest", "files", str(path), "--project", "default", data_dir=data_dir)
    assert named.returncode == 0, named.stderr
    listed = run_cli("calls", "list", "--json", data_dir=data_dir)
    assert [item["external_id"] for item in orjson.loads(listed.stdout)["items"]] == ["from-file"]


def test_bad_dead_letter_commands_exit_2_naming_the_argument(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _seed_outbox(data_dir, call_payload(external_id="seeded"))
    not_a_number = run_cli("ingest", "retry", "abc", data_dir=data_dir)
    assert not_a_number.returncode == 2 and "ingest_id" in not_a_number.stderr
    bad_limit = run_cli("ingest", "failed", "--limit", "0", data_dir=data_dir)
    assert bad_limit.returncode == 2 and "--limit" in bad_limit.stderr
    nowhere = run_cli("ingest", "failed", data_dir=tmp_path / "empty")
    assert nowhere.returncode == 2 and "no convoscope data" in nowhere.stderr
    assert not (tmp_path / "empty").exists()
