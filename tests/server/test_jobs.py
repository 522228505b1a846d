"""Post-ingest jobs: planned when a call is stored, run by the runner, their outcome shown on the call."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from convoscope.errors import ConvoscopeError, InputError, NotFound
from convoscope.model import Call
from convoscope.runtime.jobs import Batched, JobRetry, JobRunner
from convoscope.server.services import Services
from convoscope.store.metadata import Job, JobSpec, MetadataStore
from convoscope.testing import call_payload, make_call


def _plan_probe(project_id: str, call: Call) -> Iterable[JobSpec]:
    yield JobSpec("probe", call.id or "", {"external_id": call.external_id})


def test_stored_calls_get_their_follow_up_jobs_run_and_reported(
    services: Services, client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    services.planners = [_plan_probe]
    seen: list[tuple[str, str]] = []

    def probe(job: Job) -> None:
        if job.params["external_id"] == "bad":
            raise InputError("recording is not audio")
        seen.append((job.call_id, job.params["external_id"]))

    services.jobs.register("probe", probe)
    batch = [call_payload(external_id="good"), call_payload(external_id="bad")]
    assert client.post("/api/v1/calls", json=batch, headers=auth).status_code == 202
    drain()
    assert services.jobs.run_until_idle() == 2

    page = client.get("/api/v1/calls", headers=auth).json()
    ids = {item["external_id"]: item["id"] for item in page["items"]}
    assert seen == [(ids["good"], "good")]
    good = client.get(f"/api/v1/calls/{ids['good']}", headers=auth).json()
    bad = client.get(f"/api/v1/calls/{ids['bad']}", headers=auth).json()
    assert [(job["kind"], job["status"], job["error"]) for job in good["jobs"]] == [("probe", "done", None)]
    assert [(job["kind"], job["status"], job["error"]) for job in bad["jobs"]] == [
        ("probe", "failed", "recording is not audio")
    ]


def test_a_transient_failure_is_retried_then_given_up(services: Services) -> None:
    attempts: list[int] = []

    def flaky(job: Job) -> None:
        attempts.append(job.attempts)
        raise JobRetry("vendor returned 503", after_s=0)

    services.jobs.register("flaky", flaky)
    project = services.default_project.id
    services.meta.enqueue_jobs(project, [JobSpec("flaky", "c1")])
    services.jobs.run_until_idle()
    assert attempts == [1, 2, 3, 4, 5]
    (status,) = services.meta.jobs_for_call(project, "c1")
    assert status.status == "failed" and "gave up after 5 attempts" in (status.error or "")


def test_a_crashing_handler_fails_its_job_and_not_the_others(services: Services) -> None:
    done: list[str] = []

    def crashy(job: Job) -> None:
        if job.call_id == "c1":
            raise KeyError("missing")
        done.append(job.call_id)

    services.jobs.register("crashy", crashy)
    project = services.default_project.id
    services.meta.enqueue_jobs(project, [JobSpec("crashy", "c1"), JobSpec("crashy", "c2")])
    services.jobs.run_until_idle()
    assert done == ["c2"]
    (status,) = services.meta.jobs_for_call(project, "c1")
    assert status.status == "failed" and (status.error or "").startswith("internal error: KeyError")


def test_store_calls_assigns_identity_and_plans(services: Services) -> None:
    services.planners = [_plan_probe]
    project = services.default_project.id
    started = datetime(2026, 11, 1, tzinfo=UTC)
    (call_id,) = services.store_calls(project, [make_call(external_id="x-1", started_at=started)])
    stored = services.store.get_call(project, call_id)
    assert stored is not None and stored.call.project_id == project
    claimed = services.meta.claim_jobs({"probe"}, 10, now=started + timedelta(days=400))
    assert [(job.call_id, job.params) for job in claimed] == [(call_id, {"external_id": "x-1"})]


def test_jobs_give_way_to_a_busy_ingest_but_are_not_starved(services: Services) -> None:
    project = services.default_project.id
    ran_at: list[float] = []
    busy_until = time.monotonic() + 0.6  # ingest keeps finding work for 0.6 s

    def ingest_busy_at() -> float:
        now = time.monotonic()
        return now if now < busy_until else busy_until

    ran = threading.Event()

    def record(job: Job) -> None:
        ran_at.append(time.monotonic())
        ran.set()

    async def scenario(runner: JobRunner, deadline_s: float) -> None:
        ran.clear()
        task = asyncio.create_task(runner.run())
        await asyncio.to_thread(ran.wait, deadline_s - time.monotonic())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # Ingest busy for 0.6 s: the job waits for it to go quiet (plus the 0.2 s grace).
    runner = JobRunner(
        services.meta,
        {"probe": record},
        poll_s=0.05,
        ingest_busy_at=ingest_busy_at,
        yield_to_ingest_s=0.2,
        max_deferral_s=30.0,
    )
    services.meta.enqueue_jobs(project, [JobSpec("probe", "c1")])
    started = time.monotonic()
    asyncio.run(scenario(runner, started + 20))
    assert ran_at and ran_at[0] - started >= 0.6

    # Ingest busy for ever: the job still runs once the deferral bound has passed.
    ran_at.clear()
    starving = JobRunner(
        services.meta,
        {"probe": record},
        poll_s=0.05,
        ingest_busy_at=time.monotonic,
        yield_to_ingest_s=0.2,
        max_deferral_s=0.4,
    )
    services.meta.enqueue_jobs(project, [JobSpec("probe", "c2")])
    started = time.monotonic()
    asyncio.run(scenario(starving, started + 20))
    assert ran_at and ran_at[0] - started >= 0.4


def _commits(services: Services) -> list[int]:
    """Counts metadata commits from now on (a commit is an fsync on SQLite)."""
    seen: list[int] = []
    event.listen(services.meta.engine, "commit", lambda connection: seen.append(1))
    return seen


def test_a_batch_handler_gets_several_jobs_and_settles_them_in_one_commit(services: Services) -> None:
    project = services.default_project.id
    batches: list[list[str]] = []

    def evaluate(jobs: Sequence[Job]) -> Mapping[int, ConvoscopeError]:
        batches.append([job.call_id for job in jobs])
        errors: dict[int, ConvoscopeError] = {}
        for job in jobs:
            if job.call_id == "c2":
                errors[job.id] = JobRetry("judge returned 429", after_s=0)
            elif job.call_id == "c3":
                errors[job.id] = NotFound("call c3 not found")
        return errors

    runner = JobRunner(services.meta, {"batch": Batched(evaluate, size=3)}, claim_jobs=2, max_attempts=2)
    services.meta.enqueue_jobs(project, [JobSpec("batch", f"c{n}") for n in range(1, 6)])
    commits = _commits(services)
    assert runner.run_once() == 3, "a claim holds a whole batch even when claim_jobs is smaller"
    assert batches == [["c1", "c2", "c3"]]
    assert len(commits) == 2, "one commit claims the batch, one settles it"
    runner.run_until_idle()
    assert batches[1:] == [["c4", "c5", "c2"]], "the retried job comes back once, then gives up"
    assert services.meta.jobs_for_calls(project, []) == {}
    found = services.meta.jobs_for_calls(project, [f"c{n}" for n in range(1, 6)])
    outcome = {call: [(s.status, s.error) for s in jobs] for call, jobs in found.items()}
    assert outcome == {
        "c1": [("done", None)],
        "c2": [("failed", "judge returned 429 (gave up after 2 attempts)")],
        "c3": [("failed", "call c3 not found")],
        "c4": [("done", None)],
        "c5": [("done", None)],
    }
    assert (runner.done_jobs, runner.failed_jobs) == (3, 2)


def test_a_raising_batch_handler_fails_or_retries_its_whole_batch(services: Services) -> None:
    project = services.default_project.id
    raised: list[Exception] = [JobRetry("store busy", after_s=0), InputError("bad params"), KeyError("x")]
    seen: list[list[str]] = []

    def broken(jobs: Sequence[Job]) -> Mapping[int, ConvoscopeError]:
        seen.append([job.call_id for job in jobs])
        raise raised.pop(0)

    runner = JobRunner(services.meta, {"batch": Batched(broken, size=10)}, max_attempts=5)
    services.meta.enqueue_jobs(project, [JobSpec("batch", "a"), JobSpec("batch", "b")])
    runner.run_once()  # JobRetry: both pending again
    assert services.meta.job_counts() == {"pending": 2, "running": 0, "failed": 0}
    runner.run_once()  # InputError: both failed with its message
    found = services.meta.jobs_for_calls(project, ["a", "b"])
    assert {call: jobs[0].error for call, jobs in found.items()} == {"a": "bad params", "b": "bad params"}
    services.meta.enqueue_jobs(project, [JobSpec("batch", "a"), JobSpec("batch", "b")])
    runner.run_once()  # a bug: both failed as internal errors, the runner keeps going
    found = services.meta.jobs_for_calls(project, ["a", "b"])
    assert all((jobs[0].error or "").startswith("internal error: KeyError") for jobs in found.values())
    assert seen == [["a", "b"]] * 3 and raised == []


def test_batched_and_plain_kinds_run_in_the_order_their_jobs_were_due(services: Services) -> None:
    project = services.default_project.id
    order: list[str] = []

    def plain(job: Job) -> None:
        order.append(f"plain {job.call_id}")

    def batch(jobs: Sequence[Job]) -> Mapping[int, ConvoscopeError]:
        order.append("batch " + ",".join(job.call_id for job in jobs))
        return {}

    runner = JobRunner(services.meta, {"first": plain, "second": Batched(batch, size=2)})
    specs = [JobSpec(kind, f"c{n}") for n in range(3) for kind in ("first", "second")]
    services.meta.enqueue_jobs(project, specs)
    assert runner.run_until_idle() == 6
    assert order == ["plain c0", "plain c1", "plain c2", "batch c0,c1", "batch c2"]


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batched(lambda jobs: {}, size=0)


def test_jobs_wait_while_an_ingest_request_is_received_even_with_the_outbox_empty(
    services: Services, client: TestClient, auth: dict[str, str]
) -> None:
    """Between two large POSTs the outbox is empty while the next body is parsed: that is ingest too."""
    project = services.default_project.id
    before = time.monotonic()
    assert client.post("/api/v1/calls", json=[call_payload()], headers=auth).status_code == 202
    assert services.worker.busy_at() >= before, "a received request marks ingest busy"

    ran_at: list[float] = []
    ran = threading.Event()

    def record(job: Job) -> None:
        ran_at.append(time.monotonic())
        ran.set()

    runner = JobRunner(
        services.meta,
        {"probe": record},
        poll_s=0.05,
        ingest_busy_at=services.worker.busy_at,
        yield_to_ingest_s=0.2,
        max_deferral_s=30.0,
    )
    services.meta.enqueue_jobs(project, [JobSpec("probe", "c1")])

    async def scenario() -> float:
        with services.worker.busy():  # a request being read and validated for 0.6 s
            task = asyncio.create_task(runner.run())
            await asyncio.sleep(0.6)
            assert not ran.is_set(), "no job runs while a request is being received"
            assert services.worker.busy_at() >= time.monotonic() - 0.01
        received = time.monotonic()
        await asyncio.to_thread(ran.wait, 20)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return received

    received = asyncio.run(scenario())
    assert ran_at and ran_at[0] - received >= 0.2, "the job waits out the grace after the request"


def test_ingest_stays_busy_for_the_whole_drain_of_a_backlog(
    services: Services, client: TestClient, auth: dict[str, str], drain: Callable[[], int]
) -> None:
    lags: list[float] = []

    def after_store(project_id: str, calls: Sequence[Call]) -> None:
        time.sleep(0.3)  # a slow batch: the drain is still busy after it
        lags.append(time.monotonic() - services.worker.busy_at())

    services.worker.set_after_store(after_store)
    for n in range(2):
        assert (
            client.post("/api/v1/calls", json=[call_payload(external_id=f"b{n}")], headers=auth).status_code
            == 202
        )
    drain()
    assert len(lags) == 1 and lags[0] < 0.01, "busy until the drain ends, not since it started"
    time.sleep(0.05)
    assert time.monotonic() - services.worker.busy_at() >= 0.05, "quiet once the drain has ended"


def test_under_sustained_ingest_a_slow_claim_waits_in_proportion_to_its_length(services: Services) -> None:
    project = services.default_project.id
    claims: list[tuple[float, float]] = []
    both = threading.Event()

    def slow(jobs: Sequence[Job]) -> Mapping[int, ConvoscopeError]:
        started = time.monotonic()
        time.sleep(0.2)  # a batch of evaluations
        claims.append((started, time.monotonic()))
        if len(claims) == 2:
            both.set()
        return {}

    runner = JobRunner(
        services.meta,
        {"batch": Batched(slow, size=1)},
        poll_s=0.05,
        claim_jobs=1,  # one job a claim
        ingest_busy_at=time.monotonic,  # ingest busy for ever
        yield_to_ingest_s=0.1,
        max_deferral_s=0.1,
        busy_share=0.25,
    )
    services.meta.enqueue_jobs(project, [JobSpec("batch", "c1"), JobSpec("batch", "c2")])

    async def scenario() -> None:
        task = asyncio.create_task(runner.run())
        await asyncio.to_thread(both.wait, 20)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(claims) == 2, "jobs still run while ingest never goes quiet"
    (_, first_end), (second_start, _) = claims
    # A 0.2 s claim at a 25% share: 0.6 s of waiting before the next, not max_deferral_s (0.1 s).
    assert second_start - first_end >= 0.55
    with pytest.raises(ValueError, match="busy_share"):
        JobRunner(services.meta, {}, busy_share=0.0)


def test_a_long_job_keeps_its_lease_while_it_runs(tmp_path: Path) -> None:
    """The runner renews the leases of the jobs it runs, so a job longer than the lease is never taken
    over by another worker while its own is alive."""
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    meta, other = MetadataStore(url, claim_lease_s=0.4), MetadataStore(url, claim_lease_s=0.4)
    try:
        project = meta.ensure_project("default")
        meta.enqueue_jobs(project.id, [JobSpec("slow", "c1")])
        running = threading.Event()
        taken: list[int] = []

        finished = threading.Event()

        def slow(job: Job) -> None:
            running.set()
            time.sleep(1.2)  # three leases long
            finished.set()

        runner = JobRunner(meta, {"slow": slow}, poll_s=0.05, renew_every_s=0.1)

        async def scenario() -> None:
            task = asyncio.create_task(runner.run())
            await asyncio.to_thread(running.wait, 5)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                taken.extend(job.id for job in await asyncio.to_thread(other.claim_jobs, {"slow"}, 10))
                await asyncio.sleep(0.1)
            await asyncio.to_thread(finished.wait, 10)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(scenario(), timeout=20))
        assert taken == []
        deadline = time.monotonic() + 5  # the runner settles right after the handler returns
        while meta.jobs_for_call(project.id, "c1")[0].status == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        (status,) = meta.jobs_for_call(project.id, "c1")
        assert (status.status, status.attempts) == ("done", 1)
    finally:
        meta.close()
        other.close()
