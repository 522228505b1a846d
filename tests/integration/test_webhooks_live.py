"""Vendor webhooks against a real server process: CLI-set secrets apply at once; kill -9 loses no 202."""

from __future__ import annotations

import threading
import time

import httpx
import orjson

from convoscope.ingest.signing import sign_generic

from .conftest import KEY, ServerProcess, run_cli


def _document(call_id: str) -> dict[str, object]:
    return {
        "call_id": call_id,
        "started_at": "2026-01-05T10:00:00Z",
        "transcript": [{"role": "user", "content": "hello", "start_time": 0.1, "end_time": 0.9}],
    }


def _stored_ids(url: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500, "source": "generic"}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(
            f"{url}/api/v1/calls", params=params, headers={"Authorization": f"Bearer {KEY}"}
        ).json()
        ids.extend(item["external_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


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


def test_acknowledged_webhook_events_survive_kill_9(server: ServerProcess) -> None:
    server.start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def post_events() -> None:
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

    poster = threading.Thread(target=post_events)
    poster.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    stop.set()
    poster.join(timeout=30)
    assert len(acknowledged) >= 100
    server.start()
    deadline = time.monotonic() + 120
    while len(stored := _stored_ids(server.url)) < len(acknowledged) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(acknowledged) <= set(stored), "every acknowledged event became a call"
    assert len(stored) == len(set(stored)), "replayed events did not duplicate a call"
