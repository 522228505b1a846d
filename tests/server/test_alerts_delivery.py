"""An alert from a failing call to a receiver's inbox, through the server as composed: the evaluation
batch fires the rule, the event is queued for delivery, and the ``alerts.deliver`` job signs and posts it
to a webhook on loopback, with links to the call under the server's public address."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from convoscope.alerts.notifiers.registry import NOTIFIERS_PATH
from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing import call_payload

KEY = "cvs_test_key_project_default_0001"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "whsec-test-0123456789"
PUBLIC = "https://convoscope.example.test"


class _Inbox:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox() -> Iterator[_Inbox]:
    box = _Inbox()
    yield box
    box.close()


@pytest.fixture
def services(
    tmp_path: Path, clickhouse_store: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    monkeypatch.setenv("CONVOSCOPE_TEST_HOOK_SECRET", SECRET)
    settings = Settings(
        data_dir=tmp_path / "data",
        init_api_key=KEY,
        alerts_allowed_networks=["127.0.0.0/8"],
        public_url=PUBLIC,
    )
    opened = open_services(settings, store=clickhouse_store)
    yield opened
    opened.meta.close()


def _leaky_call() -> dict[str, Any]:
    turns = [
        {"role": "user", "text": "What card do you have on file?", "start_s": 0.0, "end_s": 2.0},
        {"role": "agent", "text": "It's 4111 1111 1111 1111.", "start_s": 2.5, "end_s": 5.0},
    ]
    return call_payload(external_id="leaky", turns=turns)


def test_a_failing_call_reaches_the_webhook_signed_with_a_link_to_it(
    services: Services, inbox: _Inbox
) -> None:
    project = services.default_project.id
    services.meta.update_project_settings(
        project,
        (*NOTIFIERS_PATH, "oncall"),
        {"kind": "webhook", "url": inbox.url, "secret_env": "CONVOSCOPE_TEST_HOOK_SECRET"},
    )
    client = TestClient(create_app(services, run_worker=False))
    rule = {
        "kind": "immediate",
        "name": "Card number read out",
        "severity": "critical",
        "notifiers": ["oncall"],
        "immediate": {"metric": "pii_leakage"},
    }
    assert client.put("/api/v1/alerts/rules/pii", json=rule, headers=AUTH).status_code == 201
    assert client.post("/api/v1/calls", json=[_leaky_call()], headers=AUTH).status_code == 202
    while services.worker.drain_once():
        pass
    services.jobs.run_until_idle()

    (headers, body), *rest = inbox.posts
    assert rest == []  # delivered once
    stamp, signature = (part.split("=", 1)[1] for part in headers["x-convoscope-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    event = json.loads(body)
    (call_id,) = event["call_ids"]
    assert event["state"] == "firing" and event["rule_id"] == "pii"
    assert event["call_urls"] == [f"{PUBLIC}/calls/{call_id}"]
    stored = client.get("/api/v1/alerts/events", params={"rule": "pii"}, headers=AUTH).json()["items"]
    assert [e["id"] for e in stored] == [event["id"]]


def test_an_unconfigured_notifier_fails_its_delivery_job_with_the_name(
    services: Services, inbox: _Inbox
) -> None:
    client = TestClient(create_app(services, run_worker=False))
    rule = {
        "kind": "immediate",
        "name": "leak",
        "notifiers": ["nobody"],
        "immediate": {"metric": "pii_leakage"},
    }
    assert client.put("/api/v1/alerts/rules/pii", json=rule, headers=AUTH).status_code == 201
    assert client.post("/api/v1/calls", json=[_leaky_call()], headers=AUTH).status_code == 202
    while services.worker.drain_once():
        pass
    services.jobs.run_until_idle()
    assert inbox.posts == []
    event_id = client.get("/api/v1/alerts/events", headers=AUTH).json()["items"][0]["id"]
    jobs = services.meta.jobs_for_call(services.default_project.id, f"{event_id}:nobody")
    assert [(j.kind, j.status) for j in jobs] == [("alerts.deliver", "failed")]
    assert "notifier 'nobody' is not configured" in (jobs[0].error or "")
