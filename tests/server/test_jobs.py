"""Post-ingest jobs: planned when a call is stored, run by the runner, their outcome shown on the call."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from convoscope.errors import InputError
from convoscope.model import Call
from convoscope.server.jobs import JobRetry, JobRunner
from convoscope.server.services import Services
from convoscope.store.metadata import Job, JobSpec
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
