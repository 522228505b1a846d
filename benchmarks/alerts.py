"""Alert rules: what a round of 100 rules costs on a large store, and how soon a failing call is an alert.

* **evaluation cost** -- one scheduled round (``AlertEngine.evaluate_project``) over 100 enabled rules of
  every kind (threshold on ``e2e_s`` p95 and on a metric's average, trend, spike, new failure,
  immediate) on a store of ``--calls`` calls with two scores each, spread over the last day. Reported
  per rule (each is evaluated once a minute, so ms per rule is ms of a core per rule per minute) and as
  a ratio to a reference measured in the same run: the dashboard's own ``series`` query (hourly p95 of
  ``e2e_s`` over the day), so a noisy shared box still gives a comparable figure.
* **alert latency** -- the app with its worker, job runner and alert schedule running (TestClient with
  its lifespan), an immediate rule on ``pii_leakage`` with a notifier: from the 202 of ``POST
  /api/v1/calls`` carrying a leaking call to the ``alerts.deliver`` job being queued, and to the request
  of the rule's webhook notifier arriving at a receiver on loopback. Reference: from the same 202 to the
  call being stored (``GET /api/v1/ingest/{id}`` says done).

Run: ``uv run python benchmarks/alerts.py [--calls N]`` (about 2-4 minutes at 200,000 calls). Do not run
it beside other benchmarks; it prints the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from convoscope.alerts.events import AlertEvent
from convoscope.alerts.rules import parse_rule
from convoscope.config import Settings
from convoscope.model import Call, MetricResult, MetricSource
from convoscope.server.services import Services, open_services
from convoscope.server.worker import assign_identity
from convoscope.store.base import Aggregate, Bucket, SeriesQuery
from convoscope.testing import call_payload

KEY = "cvs_bench_alerts_key_000000000001"
LEAK = "Sure, it's 4111 1111 1111 1111. I've booked you for Tuesday."
AGENTS = [f"agent-{i}" for i in range(10)]


def _turns(e2e: float, text: str = "Booked for Tuesday.") -> list[dict[str, Any]]:
    return [
        {"role": "user", "text": "Can you help me with my booking?", "start_s": 0.0, "end_s": 2.0},
        {"role": "agent", "text": text, "start_s": 2.0 + e2e, "end_s": 5.0 + e2e, "e2e_s": e2e},
    ]


def fill(services: Services, calls: int, now: datetime) -> float:
    """``calls`` calls over the last day (two scores each); returns the seconds it took."""
    started = time.perf_counter()
    project = services.default_project.id
    template = Call.model_validate(call_payload(turns=_turns(0.8)))
    batch = 5000
    for start in range(0, calls, batch):
        rows: list[Call] = []
        scores: list[MetricResult] = []
        for i in range(start, min(calls, start + batch)):
            at = now - timedelta(seconds=86_400 * (i + 1) / calls)
            e2e = 0.6 + (i * 37 % 100) / 100
            turns = template.turns
            call = template.model_copy(
                update={
                    "external_id": f"bench-{i}",
                    "started_at": at,
                    "agent_id": AGENTS[i % len(AGENTS)],
                    "turns": [turns[0], turns[1].model_copy(update={"e2e_s": e2e})],
                }
            )
            call = assign_identity(project, call)
            rows.append(call)
            assert call.id is not None
            evaluated = at + timedelta(seconds=30)
            scores.append(
                MetricResult(
                    call_id=call.id,
                    metric="csat",
                    value=3.0 + (i % 5) / 2,
                    source=MetricSource.JUDGE,
                    evaluated_at=evaluated,
                )
            )
            failed = i % 100 == 0
            scores.append(
                MetricResult(
                    call_id=call.id,
                    metric="pii_leakage",
                    value=float(failed),
                    passed=not failed,
                    evidence={"reason": f"kind {i % 7}"} if failed else {},
                    source=MetricSource.TRANSCRIPT,
                    evaluated_at=evaluated,
                )
            )
        services.store.insert_calls(project, rows, version=1)
        services.store.insert_scores(project, scores)
    return time.perf_counter() - started


def rules() -> list[tuple[str, dict[str, Any]]]:
    """100 rules of every kind."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(30):
        out.append(
            (
                f"gap-{i}",
                {
                    "kind": "threshold",
                    "name": f"p95 gap {i}",
                    "target": "e2e_s",
                    "scope": {"agent_id": AGENTS[i % 10]} if i % 2 else {},
                    "window_s": 900 * (1 + i % 4),
                    "threshold": {"aggregate": "p95", "op": ">", "value": 1.2 + i / 100},
                },
            )
        )
    for i in range(20):
        out.append(
            (
                f"csat-{i}",
                {
                    "kind": "threshold",
                    "name": f"csat {i}",
                    "target": "metric:csat",
                    "scope": {"agent_id": AGENTS[i % 10]} if i % 2 else {},
                    "threshold": {"aggregate": "avg", "op": "<", "value": 3.5},
                },
            )
        )
    for i in range(20):
        out.append(
            (
                f"trend-{i}",
                {
                    "kind": "trend",
                    "name": f"csat trend {i}",
                    "target": "metric:csat" if i % 2 else "e2e_s",
                    "trend": {"baseline_buckets": 12 + i},
                },
            )
        )
    for i in range(10):
        out.append(
            (
                f"spike-{i}",
                {
                    "kind": "spike",
                    "name": f"calls spike {i}",
                    "target": "calls",
                    "scope": {"agent_id": AGENTS[i]},
                    "spike": {"factor": 3},
                },
            )
        )
    for i in range(10):
        what = "reason" if i % 2 else "metric"
        out.append(
            (f"new-{i}", {"kind": "new_failure", "name": f"new {what} {i}", "new_failure": {"what": what}})
        )
    for i in range(10):
        out.append(
            (
                f"now-{i}",
                {
                    "kind": "immediate",
                    "name": f"pii {i}",
                    "notifiers": ["bench"],
                    "immediate": {"metric": "pii_leakage" if i == 0 else f"never-{i}"},
                },
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--latency-runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            init_api_key=KEY,
            alerts_interval_s=3600,
            alerts_allowed_networks=["127.0.0.0/8"],
        )
        services = open_services(settings)
        now = datetime.now(UTC)
        filled = fill(services, args.calls, now)
        print(
            f"store: {args.calls:,} calls and {2 * args.calls:,} scores over the last day "
            f"({filled:.0f} s to write)"
        )
        project = services.default_project.id
        services.meta.put_alert_rules(
            project,
            [(r.id, r.spec.model_dump(mode="json"), True) for r in (parse_rule(i, b) for i, b in rules())],
        )
        query = SeriesQuery(
            field="e2e_s",
            aggregate=Aggregate.P95,
            bucket=Bucket.HOUR,
            since=now - timedelta(days=1),
            until=now,
        )
        services.store.series(project, query)  # warm
        reference = []
        for _ in range(3):
            start = time.perf_counter()
            services.store.series(project, query)
            reference.append(time.perf_counter() - start)
        services.alerts.deliver = lambda event, names: None  # the round's events are not the point here
        rounds = []
        for _ in range(3):
            start = time.perf_counter()
            services.alerts.evaluate_project(project)
            rounds.append(time.perf_counter() - start)
        ref = statistics.median(reference)
        per_rule = statistics.median(rounds) / 100
        print(f"reference series query (hourly p95 e2e_s over the day): {ref * 1000:.0f} ms")
        print(
            f"round of 100 rules: {statistics.median(rounds):.2f} s -> {per_rule * 1000:.1f} ms per rule "
            f"({per_rule / ref:.2f}x the reference), {per_rule / 60 * 100:.3f}% of a core per rule "
            "evaluated every minute"
        )
        latency(services, args.latency_runs)
        services.close()
    print(f"load average after: {os.getloadavg()}")


def latency(services: Services, runs: int) -> None:
    """POST a leaking call and wait for its delivery job; the app's worker and job runner run."""
    from fastapi.testclient import TestClient

    from convoscope.server.app import create_app

    enqueued: list[float] = []
    real = services.alerts.enqueue_delivery
    inbox = _Inbox()
    services.meta.update_project_settings(
        services.default_project.id, ("alerts", "notifiers", "bench"), {"kind": "webhook", "url": inbox.url}
    )

    def deliver(event: AlertEvent, names: list[str]) -> None:
        real(event, names)
        enqueued.append(time.perf_counter())

    services.alerts.deliver = deliver
    auth = {"Authorization": f"Bearer {KEY}"}
    to_alert: list[float] = []
    to_stored: list[float] = []
    to_request: list[float] = []
    with TestClient(create_app(services)) as client:
        for run in range(runs):
            # After a resolve the cooldown holds a new firing back: reset the rule's state for each run.
            services.meta.put_alert_rules(
                services.default_project.id,
                [
                    (
                        "now-0",
                        parse_rule("now-0", rules()[-10][1] | {"cooldown_s": 0}).spec.model_dump(mode="json"),
                        True,
                    )
                ],
            )
            _reset(services)
            received = len(inbox.arrivals)
            body = [call_payload(external_id=f"leak-{run}-{time.time_ns()}", turns=_turns(0.7, LEAK))]
            before = len(enqueued)
            start = time.perf_counter()
            answer = client.post("/api/v1/calls", json=body, headers=auth)
            acked = time.perf_counter()
            assert answer.status_code == 202, answer.text
            ingest_id = answer.json()["ingest_id"] if "ingest_id" in answer.json() else None
            stored_at = None
            while len(enqueued) == before and time.perf_counter() - acked < 60:
                if stored_at is None and ingest_id is not None:
                    status = client.get(f"/api/v1/ingest/{ingest_id}", headers=auth).json().get("status")
                    if status == "done":
                        stored_at = time.perf_counter()
                time.sleep(0.005)
            if len(enqueued) == before:
                print(f"run {run}: no delivery job within 60 s")
                continue
            to_alert.append(enqueued[-1] - acked)
            if stored_at is not None:
                to_stored.append(stored_at - acked)
            while len(inbox.arrivals) == received and time.perf_counter() - acked < 60:
                time.sleep(0.005)
            if len(inbox.arrivals) > received:
                to_request.append(inbox.arrivals[-1] - acked)
            # The handler notes the delivery just after the receiver answers; the next run's reset must
            # come after that note, or the note (state firing) holds the next firing back as a repeat.
            _await_mark(services, 10.0)
            del start
    inbox.close()
    if to_alert:
        print(
            "failing call acknowledged -> delivery job queued: "
            f"median {statistics.median(to_alert) * 1000:.0f} ms "
            f"(runs: {', '.join(f'{t * 1000:.0f}' for t in to_alert)} ms)"
        )
    if to_request:
        ordered = sorted(to_request)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            "failing call acknowledged -> the webhook receiver's request: "
            f"median {statistics.median(to_request) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms over {len(ordered)} runs"
        )
    if to_stored:
        print(f"reference, acknowledged -> stored: median {statistics.median(to_stored) * 1000:.0f} ms")


def _await_mark(services: Services, timeout_s: float) -> None:
    """Wait until the delivery handler has noted its delivery of rule ``now-0`` to ``bench``."""
    from convoscope.alerts.notifiers.deliver import MARKS_PATH
    from convoscope.store.jobqueue import setting_at

    deadline = time.perf_counter() + timeout_s
    path = (*MARKS_PATH, "bench", "now-0")
    while time.perf_counter() < deadline:
        if isinstance(setting_at(services.meta.project_settings(services.default_project.id), path), dict):
            return
        time.sleep(0.005)


def _reset(services: Services) -> None:
    """A fresh rule state, and no record of a delivery (each run's firing is then delivered, not deduped)."""
    from convoscope.store.alerts_meta import StoredRuleState

    services.meta.save_alert_state(services.default_project.id, "now-0", StoredRuleState())
    services.meta.update_project_settings(services.default_project.id, ("alerts", "delivered"), {})


class _Inbox:
    """A webhook receiver on loopback noting when each request arrives."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        arrivals = self.arrivals = list[float]()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrivals.append(time.perf_counter())
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    main()
