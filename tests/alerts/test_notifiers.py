"""Slack and webhook notifiers and the ``alerts.deliver`` job, against a real HTTP receiver on loopback.

The receiver records every request and answers from a script per path (a status and a body, the last one
repeating), or holds the request without answering (the timeout case). Deliveries run through the real
``JobRunner`` over a real SQLite metadata store; the notifiers live in the project's settings document and
the events in a small in-test source (the :class:`AlertSource` seam). Backoff is read from the job's
``run_after``, never waited for. The webhook signature is checked with the recipe the docs give.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from convoscope.alerts.events import AlertEvent, DeliveryError, Severity
from convoscope.alerts.notifiers import (
    NOTIFIERS_PATH,
    SIGNATURE_HEADER,
    DeliveryJob,
    RetryPolicy,
    SettingsMarks,
    build_notifier,
    configured_notifiers,
    delivery_jobs,
    delivery_statuses,
    parse_notifier,
    slack_message,
    sparkline,
    webhook_body,
)
from convoscope.cli.main import app as cli_app
from convoscope.errors import InputError, NotFound, PayloadError
from convoscope.runtime.jobs import JobRetry, JobRunner
from convoscope.runtime.kinds import ALERTS_DELIVER
from convoscope.store.meta import JobRow
from convoscope.store.metadata import MetadataStore
from convoscope.testing.http_server import serve_http

LOOPBACK = (ip_network("127.0.0.1/32"),)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "alerts-notifiers.md"
SECRET = "whsec_test_0123456789"
SLACK_PATH = "/services/T000/B000/sEcReTtOkEn"
ENV = {
    "HOOK_SECRET": SECRET,
    "RECEIVER_AUTH": "Bearer abc123",
    "SLACK_URL": "",  # filled per test with the receiver's address
}
HANG = -1
"""A scripted status that holds the request unanswered until the test ends."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 answering POSTs from a script per path, recording each request."""

    base: str = ""
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, bytes, dict[str, str]]]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, *answers: tuple[int, bytes] | tuple[int, bytes, dict[str, str]]) -> str:
        """Script ``path``'s answers in order (the last repeats); returns the path's URL."""
        self.script[path] = [(a[0], a[1], a[2] if len(a) > 2 else {}) for a in answers]  # type: ignore[misc]
        return self.base + path

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answers = receiver.script.get(self.path) or [(404, b"no such hook", {})]
            status, text, headers = answers.pop(0) if len(answers) > 1 else answers[0]
            if status == HANG:
                receiver.release.wait(30)
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            try:
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    with serve_http(_handler(state)) as url:
        state.base = url
        yield state
        state.release.set()


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    yield store
    store.close()


@pytest.fixture
def project(meta: MetadataStore) -> str:
    return meta.ensure_project("default").id


class Source:
    """The alert source seam: events kept in memory, notifiers in the project's settings document."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self.events: dict[str, AlertEvent] = {}

    def add(self, event: AlertEvent) -> AlertEvent:
        self.events[event.id] = event
        return event

    def load_event(self, project_id: str, event_id: str) -> AlertEvent:
        try:
            return self.events[event_id]
        except KeyError:
            raise NotFound(f"alert event {event_id} not found") from None

    def load_notifier(self, project_id: str, name: str) -> Any:
        notifiers = configured_notifiers(self.meta.project_settings(project_id))
        if name not in notifiers:
            raise NotFound(f"notifier {name!r} not found")
        return notifiers[name]


def event(project_id: str, **changes: Any) -> AlertEvent:
    fields: dict[str, Any] = {
        "id": "ev-1",
        "project_id": project_id,
        "rule_id": "p95-latency",
        "rule_name": "p95 agent latency",
        "state": "firing",
        "severity": Severity.CRITICAL,
        "at": datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        "summary": "p95 agent latency 2.31 s > 1.5 s over 15 min <see calls> & more",
        "value": 2.31,
        "threshold": 1.5,
        "sample_size": 120,
        "window_s": 900.0,
        "call_ids": tuple(f"0190f3a2-0000-7000-8000-00000000000{i}" for i in range(8)),
        "series": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0),
        "details": {"baseline": 1.2},
        "ui_base_url": "http://ui.test",
    }
    fields.update(changes)
    return AlertEvent(**fields)


def configure(meta: MetadataStore, project_id: str, name: str, config: dict[str, Any]) -> None:
    meta.update_project_settings(project_id, (*NOTIFIERS_PATH, name), config)


def runner(meta: MetadataStore, source: Source, *, allowed: Any = LOOPBACK, env: Any = None) -> JobRunner:
    handler = DeliveryJob(source, SettingsMarks(meta), env=env or ENV, allowed_networks=allowed)
    return JobRunner(meta, {ALERTS_DELIVER: handler})


def job_row(meta: MetadataStore, key: str) -> JobRow:
    with Session(meta.engine) as session:
        return session.scalars(
            select(JobRow).where(JobRow.kind == ALERTS_DELIVER, JobRow.call_id == key)
        ).one()


def make_due(meta: MetadataStore, key: str) -> None:
    """Move a retried job's ``run_after`` into the past (the backoff is checked, not waited for)."""
    with meta.engine.begin() as connection:
        connection.execute(
            update(JobRow)
            .where(JobRow.call_id == key)
            .values(run_after=datetime.now(UTC) - timedelta(seconds=1))
        )


def backoff_s(row: JobRow) -> float:
    run_after = row.run_after if row.run_after.tzinfo else row.run_after.replace(tzinfo=UTC)
    updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    return (run_after - updated).total_seconds()


def documented_verify() -> Any:
    """``verify_convoscope_signature`` exactly as docs/alerts-notifiers.md gives it."""
    text = DOCS.read_text()
    section = text.split("### Verifying the signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    return namespace["verify_convoscope_signature"]


# Formatting -------------------------------------------------------------------------------------------


def test_sparkline_spans_the_eight_bars() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([1.0, float("nan"), 3.0]) == "▁ █"
    assert sparkline([]) == ""
    assert sparkline(list(range(100)), width=10) == "▁▂▃▃▄▅▆▆▇█"


def test_slack_message_tells_firing_from_resolved_and_carries_the_numbers() -> None:
    firing = slack_message(event("p"), max_links=3)
    header = firing["blocks"][0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert header["text"]["text"] == ":red_circle: FIRING · critical · p95 agent latency"
    assert firing["blocks"][1]["text"]["text"] == (
        "p95 agent latency 2.31 s &gt; 1.5 s over 15 min &lt;see calls&gt; &amp; more"
    )
    assert firing["text"].startswith("[FIRING] critical: p95 agent latency: ")
    assert firing["text"].endswith("&lt;see calls&gt; &amp; more")
    attachment = firing["attachments"][0]
    assert attachment["color"] == "#E01E5A"
    fields = [f["text"] for f in attachment["blocks"][0]["fields"]]
    assert fields[:4] == [
        "*Value*\n`2.31`",
        "*Threshold*\n`1.5`",
        "*Sample size*\n120 calls",
        "*Window*\n15 min",
    ]
    assert "*baseline*\n1.2" in fields
    blob = json.dumps(firing, ensure_ascii=False)
    assert "`▁▂▃▄▅▆▇█`  last 8 buckets, oldest first" in blob
    links = re.findall(r"<(http://ui\.test/calls/[^|>]+)\|", blob)
    assert links == [f"http://ui.test/calls/0190f3a2-0000-7000-8000-00000000000{i}" for i in range(3)]
    assert "and 5 more" in blob

    resolved = slack_message(event("p", state="resolved", value=1.1))
    assert (
        resolved["blocks"][0]["text"]["text"] == ":white_check_mark: RESOLVED · critical · p95 agent latency"
    )
    assert resolved["attachments"][0]["color"] == "#2EB67D"
    assert resolved["text"].startswith("[RESOLVED]")
    assert resolved["attachments"][0]["blocks"][0]["fields"][0]["text"] == "*Value now*\n`1.1`"

    unlinked = json.dumps(slack_message(event("p", ui_base_url=None, series=())), ensure_ascii=False)
    assert "http://ui.test" not in unlinked and "`0190f3a2-0000-7000-8000-000000000000`" in unlinked
    assert "oldest first" not in unlinked


def test_webhook_body_is_the_event_with_a_schema_version() -> None:
    body = webhook_body(event("p", details={"baseline": 1.2, "ratio": float("nan")}))
    assert body["schema_version"] == 1 and body["type"] == "alert.firing"
    assert body["at"] == "2026-01-31T12:00:00+00:00" and body["severity"] == "critical"
    assert body["call_urls"][0] == "http://ui.test/calls/0190f3a2-0000-7000-8000-000000000000"
    assert set(body) >= {"id", "project_id", "rule_id", "rule_name", "state", "summary", "value", "threshold"}
    assert set(body) >= {"sample_size", "window_s", "call_ids", "series", "details", "ui_base_url"}


@pytest.mark.parametrize(
    ("config", "location", "words"),
    [
        ({"kind": "slack", "url": "ftp://hooks.example.com/x"}, "url", "http(s) URL"),
        ({"kind": "slack", "url": "https://"}, "url", "no host"),
        ({"kind": "slack"}, "url", "exactly one of url and url_env"),
        ({"kind": "webhook", "url": "http://x.test", "secret_env": "not a var"}, "secret_env", "pattern"),
        ({"kind": "webhook", "url": "http://x.test", "headers": {"Content-Type": "x"}}, "headers", "set by"),
        (
            {"kind": "webhook", "url": "http://x.test", "headers": {"X-A": "a\r\nB: b"}},
            "headers.X-A",
            "pattern",
        ),
        ({"kind": "webhook", "url": "http://x.test", "timeout_s": 0}, "timeout_s", "greater than 0"),
        ({"kind": "webhook", "url": "http://x.test", "surprise": 1}, "surprise", "not permitted"),
        ({"kind": "teams", "url": "http://x.test"}, "kind", "slack, webhook, email"),
        (
            {"kind": "email", "host": "h", "sender": "a@b.test", "to": ["c@d.test"], "username": "u"},
            "password_env",
            "password",
        ),
        ({"kind": "email", "host": "h", "sender": "nobody", "to": ["c@d.test"]}, "sender", "not an address"),
        ({"kind": "email", "host": "h", "sender": "a@b.test", "to": []}, "to", "at least 1"),
    ],
)
def test_a_bad_config_is_refused_naming_its_field(config: dict[str, Any], location: str, words: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_notifier("ops", config)
    assert str(raised.value).startswith(f"notifier 'ops': {location}: ")
    assert raised.value.errors[0]["loc"] == location and words in str(raised.value.errors[0]["msg"])


def test_a_missing_secret_variable_is_an_error_naming_the_field() -> None:
    config = parse_notifier("ops", {"kind": "webhook", "url": "http://x.test", "secret_env": "NOPE_UNSET"})
    with pytest.raises(
        DeliveryError, match="secret_env: environment variable NOPE_UNSET is not set"
    ) as raised:
        build_notifier("ops", config, env={})
    assert not raised.value.retryable


def test_delivery_jobs_are_keyed_by_event_and_notifier() -> None:
    jobs = delivery_jobs(event("p"), ["ops", "mail", "ops"])
    assert [(j.kind, j.call_id) for j in jobs] == [
        (ALERTS_DELIVER, "ev-1:ops"),
        (ALERTS_DELIVER, "ev-1:mail"),
    ]
    assert jobs[0].params == {"event_id": "ev-1", "notifier": "ops"}
    with pytest.raises(InputError, match="notifier name 'a:b'"):
        delivery_jobs(event("p"), ["a:b"])


# Delivery over HTTP ---------------------------------------------------------------------------------


def test_slack_receives_the_block_kit_message(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer(SLACK_PATH, (200, b"ok"))
    configure(meta, project, "ops", {"kind": "slack", "url_env": "SLACK_URL", "max_links": 2})
    source = Source(meta)
    sent = source.add(event(project))
    meta.enqueue_jobs(project, delivery_jobs(sent, ["ops"]))

    assert runner(meta, source, env={**ENV, "SLACK_URL": url}).run_until_idle() == 1

    (request,) = receiver.at(SLACK_PATH)
    assert request.headers["content-type"].startswith("application/json")
    assert json.loads(request.body) == slack_message(sent, max_links=2)
    assert delivery_statuses(meta, project, sent.id, ["ops"])["ops"].status == "done"


def test_slack_without_its_ok_fails_for_good(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer(SLACK_PATH, (200, b"<html>a proxy page</html>"))
    config = parse_notifier("ops", {"kind": "slack", "url": url})
    with pytest.raises(DeliveryError, match="without Slack's ok") as raised:
        build_notifier("ops", config, env={}, allowed_networks=LOOPBACK).deliver(event(project))
    assert not raised.value.retryable and "sEcReTtOkEn" not in str(raised.value)


def test_webhook_is_signed_as_the_docs_verify(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer("/hook", (204, b""))
    configure(
        meta,
        project,
        "hook",
        {
            "kind": "webhook",
            "url": url,
            "secret_env": "HOOK_SECRET",
            "headers": {"X-Team": "voice"},
            "headers_env": {"Authorization": "RECEIVER_AUTH"},
        },
    )
    source = Source(meta)
    sent = source.add(event(project))
    meta.enqueue_jobs(project, delivery_jobs(sent, ["hook"]))
    runner(meta, source).run_until_idle()

    (request,) = receiver.at("/hook")
    verify = documented_verify()
    signature = request.headers[SIGNATURE_HEADER.lower()]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert verify(SECRET, signature, request.body)
    assert not verify(SECRET, signature, request.body.replace(b"2.31", b"0.31"))
    assert not verify("another secret", signature, request.body)
    stamp = int(signature.split(",")[0].removeprefix("t="))
    assert not verify(SECRET, signature, request.body, now=stamp + 301)  # outside the replay window
    assert verify(SECRET, signature, request.body, now=stamp + 299)

    assert json.loads(request.body) == json.loads(json.dumps(webhook_body(sent)))
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-convoscope-event"] == "alert.firing"
    assert request.headers["x-convoscope-delivery"] == "ev-1:hook"
    assert request.headers["x-team"] == "voice" and request.headers["authorization"] == "Bearer abc123"


def test_a_5xx_is_retried_with_backoff_then_delivered(
    receiver: Receiver, meta: MetadataStore, project: str
) -> None:
    url = receiver.answer("/flaky", (500, b"upstream down"), (503, b"still down"), (200, b"thanks"))
    configure(meta, project, "hook", {"kind": "webhook", "url": url})
    source = Source(meta)
    sent = source.add(event(project))
    meta.enqueue_jobs(project, delivery_jobs(sent, ["hook"]))
    jobs = runner(meta, source)
    key = "ev-1:hook"

    assert jobs.run_once() == 1
    row = job_row(meta, key)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "answered 500: upstream down" in (row.error or "") and "webhook notifier 'hook'" in (
        row.error or ""
    )
    assert abs(backoff_s(row) - RetryPolicy().base_s) < 5
    assert jobs.run_once() == 0  # not due before its backoff

    make_due(meta, key)
    jobs.run_once()
    row = job_row(meta, key)
    assert (row.status, row.attempts) == ("pending", 2) and "answered 503" in (row.error or "")
    assert abs(backoff_s(row) - 2 * RetryPolicy().base_s) < 5

    make_due(meta, key)
    jobs.run_once()
    row = job_row(meta, key)
    assert (row.status, row.error) == ("done", None)
    assert len(receiver.at("/flaky")) == 3
    assert {r.headers["x-convoscope-delivery"] for r in receiver.at("/flaky")} == {key}


def test_retry_after_is_honoured(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer("/busy", (429, b"slow down", {"Retry-After": "900"}))
    configure(meta, project, "hook", {"kind": "webhook", "url": url})
    source = Source(meta)
    meta.enqueue_jobs(project, delivery_jobs(source.add(event(project)), ["hook"]))
    runner(meta, source).run_once()
    row = job_row(meta, "ev-1:hook")
    assert row.status == "pending" and "answered 429" in (row.error or "")
    assert abs(backoff_s(row) - 900) < 5


def test_a_receiver_that_does_not_answer_is_a_retry(
    receiver: Receiver, meta: MetadataStore, project: str
) -> None:
    url = receiver.answer("/stuck", (HANG, b""))
    configure(meta, project, "hook", {"kind": "webhook", "url": url, "timeout_s": 0.3})
    source = Source(meta)
    meta.enqueue_jobs(project, delivery_jobs(source.add(event(project)), ["hook"]))
    (job,) = meta.claim_jobs([ALERTS_DELIVER], 1)
    handler = DeliveryJob(source, SettingsMarks(meta), env=ENV, allowed_networks=LOOPBACK)

    with pytest.raises(JobRetry, match=r"no answer within 0\.3 s") as raised:
        handler(job)
    assert raised.value.after_s == RetryPolicy().base_s


def test_a_4xx_fails_for_good_with_the_error_on_the_job(
    receiver: Receiver, meta: MetadataStore, project: str
) -> None:
    url = receiver.answer(SLACK_PATH, (400, b"invalid_payload"))
    configure(meta, project, "ops", {"kind": "slack", "url": url})
    source = Source(meta)
    sent = source.add(event(project))
    meta.enqueue_jobs(project, delivery_jobs(sent, ["ops"]))
    jobs = runner(meta, source)

    jobs.run_until_idle()

    status = delivery_statuses(meta, project, sent.id, ["ops"])["ops"]
    assert status.status == "failed" and status.attempts == 1
    assert status.error == f"slack notifier 'ops': {receiver.base} answered 400: invalid_payload"
    assert "sEcReTtOkEn" not in status.error  # the webhook's path is its secret
    assert jobs.failed_jobs == 1


@pytest.mark.parametrize(
    ("answer", "words"),
    [((302, b"", {"Location": "http://elsewhere.test/x"}), "redirect to http://elsewhere.test")],
)
def test_a_redirect_is_not_followed(
    receiver: Receiver, meta: MetadataStore, project: str, answer: Any, words: str
) -> None:
    url = receiver.answer("/moved", answer)
    config = parse_notifier("hook", {"kind": "webhook", "url": url})
    with pytest.raises(DeliveryError, match=words) as raised:
        build_notifier("hook", config, env={}, allowed_networks=LOOPBACK).deliver(event(project))
    assert not raised.value.retryable


def test_loopback_is_refused_unless_allowed(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer("/hook", (200, b"ok"))
    configure(meta, project, "hook", {"kind": "webhook", "url": url})
    source = Source(meta)
    meta.enqueue_jobs(project, delivery_jobs(source.add(event(project)), ["hook"]))

    runner(meta, source, allowed=()).run_until_idle()

    row = job_row(meta, "ev-1:hook")
    assert row.status == "failed" and "is a loopback address" in (row.error or "")
    assert "CONVOSCOPE_ALERTS_ALLOWED_NETWORKS" in (row.error or "")
    assert receiver.requests == []


def test_what_cannot_be_loaded_fails_the_job(receiver: Receiver, meta: MetadataStore, project: str) -> None:
    url = receiver.answer("/hook", (200, b"ok"))
    configure(meta, project, "hook", {"kind": "webhook", "url": url, "secret_env": "UNSET_SECRET"})
    source = Source(meta)
    sent = source.add(event(project))
    meta.enqueue_jobs(project, delivery_jobs(sent, ["hook", "gone"]))
    meta.enqueue_jobs(project, delivery_jobs(event(project, id="ev-missing"), ["hook"]))

    runner(meta, source).run_until_idle()

    statuses = delivery_statuses(meta, project, sent.id, ["hook", "gone"])
    assert statuses["hook"].status == "failed"
    assert statuses["hook"].error == (
        "webhook notifier 'hook': secret_env: environment variable UNSET_SECRET is not set or empty"
    )
    assert statuses["gone"].status == "failed" and statuses["gone"].error == "notifier 'gone' not found"
    assert job_row(meta, "ev-missing:hook").error == "alert event ev-missing not found"
    assert receiver.requests == []


def test_one_rule_state_is_delivered_once_per_notifier(
    receiver: Receiver, meta: MetadataStore, project: str
) -> None:
    url = receiver.answer("/hook", (200, b"ok"))
    configure(meta, project, "hook", {"kind": "webhook", "url": url})
    configure(meta, project, "other", {"kind": "webhook", "url": url})
    source = Source(meta)
    jobs = runner(meta, source)
    t0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

    def deliver(sent: AlertEvent, names: list[str]) -> list[str]:
        before = len(receiver.requests)
        meta.enqueue_jobs(project, delivery_jobs(source.add(sent), names))
        jobs.run_until_idle()
        return [r.headers["x-convoscope-delivery"] for r in receiver.requests[before:]]

    first = event(project, id="ev-1", at=t0)
    assert deliver(first, ["hook"]) == ["ev-1:hook"]
    assert deliver(first, ["hook"]) == []  # queued again: the job is reset, the event is not sent again
    assert deliver(first, ["other"]) == ["ev-1:other"]  # another notifier has not had it
    again = event(project, id="ev-2", at=t0 + timedelta(minutes=5))
    assert deliver(again, ["hook"]) == []  # the rule is already reported firing
    resolved = event(project, id="ev-3", state="resolved", at=t0 + timedelta(minutes=10))
    assert deliver(resolved, ["hook"]) == ["ev-3:hook"]
    late = event(project, id="ev-0", at=t0 - timedelta(minutes=1))
    assert deliver(late, ["hook"]) == []  # older than the resolve already delivered
    refire = event(project, id="ev-4", at=t0 + timedelta(minutes=20))
    assert deliver(refire, ["hook"]) == ["ev-4:hook"]

    assert job_row(meta, "ev-2:hook").status == "done"
    assert meta.project_settings(project)["alerts"]["delivered"]["hook"]["p95-latency"]["event_id"] == "ev-4"


# convoscope alerts test -----------------------------------------------------------------------------


def test_cli_sends_a_sample_through_configured_and_given_notifiers(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = receiver.answer("/hook", (200, b"ok"))
    broken = receiver.answer("/broken", (404, b"no such hook"))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with MetadataStore(f"sqlite:///{data_dir / 'metadata.db'}") as meta:
        project_id = meta.ensure_project("default").id
        configure(meta, project_id, "ops", {"kind": "webhook", "url": broken})
    monkeypatch.setenv("CLI_HOOK_SECRET", SECRET)
    cli = CliRunner()

    given = cli.invoke(
        cli_app,
        [
            "alerts",
            "test",
            "--webhook-url",
            hook,
            "--secret-env",
            "CLI_HOOK_SECRET",
            "--allow-network",
            "127.0.0.1/32",
        ],
    )
    assert given.exit_code == 0, given.output
    assert "cli-webhook: delivered" in given.output
    (request,) = receiver.at("/hook")
    body = json.loads(request.body)
    assert body["rule_name"] == "Test alert: p95 agent latency" and body["state"] == "firing"
    assert documented_verify()(SECRET, request.headers["x-convoscope-signature"], request.body)

    configured = cli.invoke(
        cli_app,
        ["alerts", "test", "--data-dir", str(data_dir), "--allow-network", "127.0.0.1/32", "--resolved"],
    )
    assert configured.exit_code == 1
    assert "ops: failed: webhook: " in configured.output and "answered 404: no such hook" in configured.output
    assert json.loads(receiver.at("/broken")[0].body)["state"] == "resolved"

    refused = cli.invoke(cli_app, ["alerts", "test", "--webhook-url", hook])
    assert refused.exit_code == 1 and "loopback address" in refused.output

    unknown = cli.invoke(cli_app, ["alerts", "test", "--data-dir", str(data_dir), "--notifier", "nope"])
    assert unknown.exit_code == 1 and "notifier 'nope' not configured" in unknown.output

    bad = cli.invoke(cli_app, ["alerts", "test", "--webhook-url", "ftp://x"])
    assert bad.exit_code == 2 and "--webhook-url: must be an http(s) URL" in bad.output
