"""Vendor webhooks against a real server process: CLI-set secrets apply at once; kill -9 loses no 202."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from convoscope.ingest.signing import sign_generic

from .conftest import KEY, ServerProcess, kill9_while_sending, run_cli, stored_calls


def _document(call_id: str) -> dict[str, object]:
    return {
        "call_id": call_id,
        "started_at": "2026-01-05T10:00:00Z",
        "transcript": [{"role": "user", "content": "hello", "start_time": 0.1, "end_time": 0.9}],
    }


def _stored_ids(url: str) -> list[str]:
    return [str(item["external_id"]) for item in stored_calls(url, source="generic")]


def test_sources_configure_applies_to_the_running_server(server: ServerProcess) -> None:
    server.start()
    body = orjson.dumps(_document("signed-1"))
    url = f"{server.url}/api/v1/ingest/generic?key={KEY}"
    assert httpx.post(url, content=body).status_code == 202, "no secret yet: unsigned is accepted"
    configured = run_cli(
        "sources",
        "configure",
        "generic",
        "--secret-env",
        "WEBHOOK_SECRET",
        "--channel-map",
        "user,agent",
        data_dir=server.data_dir,
        WEBHOOK_SECRET="live-secret",
    )
    assert configured.returncode == 0, configured.stderr
    assert "secret set" in configured.stdout and "live-secret" not in configured.stdout
    assert httpx.post(url, content=body).status_code == 401
    signed = {"x-convoscope-signature": sign_generic("live-secret", body, int(time.time()))}
    assert httpx.post(url, content=body, headers=signed).status_code == 202
    shown = run_cli("sources", "show", data_dir=server.data_dir)
    assert shown.returncode == 0 and "live-secret" not in shown.stdout
    generic_line = next(line for line in shown.stdout.splitlines() if "generic" in line)
    assert "set" in generic_line and "user,agent" in generic_line
    bad = run_cli("sources", "configure", "generic", "--channel-map", "left,right", data_dir=server.data_dir)
    assert bad.returncode == 1 and "channel map" in bad.stderr
    unknown = run_cli("sources", "configure", "nosuch", "--secret", "x", data_dir=server.data_dir)
    assert unknown.returncode == 1 and "unknown source" in unknown.stderr
    # The change is in the audit log, the secret is not; the refused changes left nothing.
    audit = run_cli(
        "audit", "export", "--project", "default", "--action", "settings.*", data_dir=server.data_dir
    )
    (entry,) = [orjson.loads(line) for line in audit.stdout.splitlines()]
    assert entry["target"] == "settings:sources.generic" and entry["source"] == "cli"
    assert entry["detail"]["changed"] == ["secret set", "channel map user,agent"]
    assert "live-secret" not in audit.stdout


def test_acknowledged_webhook_events_survive_kill_9(server: ServerProcess) -> None:
    server.start()
    acknowledged: list[str] = []

    def post_events(stop: threading.Event) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(600):
                if stop.is_set():
                    return
                call_id = f"w{i}"
                try:
                    response = client.post(
                        f"/api/v1/ingest/generic?key={KEY}", content=orjson.dumps(_document(call_id))
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 202:
                    acknowledged.append(call_id)

    kill9_while_sending(server, post_events, acknowledged, at_least=100)
    server.start()
    deadline = time.monotonic() + 120
    while len(stored := _stored_ids(server.url)) < len(acknowledged) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(acknowledged) <= set(stored), "every acknowledged event became a call"
    assert len(stored) == len(set(stored)), "replayed events did not duplicate a call"
