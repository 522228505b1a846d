"""Every call that got a 202 survives ``kill -9`` of the server and is stored exactly once."""

from __future__ import annotations

import threading
import time

import httpx

from convoscope.testing import call_payload

from .conftest import ServerProcess


def _all_calls(url: str, auth: dict[str, str]) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{url}/api/v1/calls", params=params, headers=auth, timeout=30).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_acknowledged_calls_survive_kill_9(server: ServerProcess, auth: dict[str, str]) -> None:
    server.start()
    acknowledged: list[str] = []
    sent: list[str] = []
    stop = threading.Event()

    def post_batches() -> None:
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            batch = 0
            while not stop.is_set() and batch < 400:
                ids = [f"k{batch}-{i}" for i in range(25)]
                sent.extend(ids)
                try:
                    response = client.post("/api/v1/calls", json=[call_payload(external_id=x) for x in ids])
                except httpx.TransportError:
                    return
                if response.status_code == 202:
                    acknowledged.extend(ids)
                batch += 1

    poster = threading.Thread(target=post_batches)
    poster.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    stop.set()
    poster.join(timeout=30)
    assert len(acknowledged) >= 500

    server.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        if health["checks"]["ingest"]["pending"] == 0:
            break
        time.sleep(0.3)
    stored = _all_calls(server.url, auth)
    external = [str(c["external_id"]) for c in stored]
    assert len(external) == len(set(external)), "a call is stored twice"
    assert set(acknowledged) <= set(external), "an acknowledged call was lost"
    assert set(external) <= set(sent)
