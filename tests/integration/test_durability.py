"""Every call that got a 202 survives ``kill -9`` of the server and is stored exactly once."""

from __future__ import annotations

import threading
import time

import httpx

from convoscope.testing import call_payload

from .conftest import ServerProcess, kill9_while_sending, stored_calls


def test_acknowledged_calls_survive_kill_9(server: ServerProcess, auth: dict[str, str]) -> None:
    server.start()
    acknowledged: list[str] = []
    sent: list[str] = []

    def post_batches(stop: threading.Event) -> None:
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

    kill9_while_sending(server, post_batches, acknowledged, at_least=500)

    server.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        if health["checks"]["ingest"]["pending"] == 0:
            break
        time.sleep(0.3)
    stored = stored_calls(server.url)
    external = [str(c["external_id"]) for c in stored]
    assert len(external) == len(set(external)), "a call is stored twice"
    assert set(acknowledged) <= set(external), "an acknowledged call was lost"
    assert set(external) <= set(sent)
