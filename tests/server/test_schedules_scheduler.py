"""The scheduler in a running server: real APScheduler, real stores, the real reference agent.

A schedule with a ``second`` field fires within a second or two, so nothing here waits for a minute.
The app runs with its background tasks (``run_worker=True``): the ingest worker, the job runner that
evaluates the stored calls, the alert engine and the scheduler, as in ``convoscope serve``. Missed runs
after downtime are tested by writing a schedule whose last run is long ago and starting a scheduler
with a fixed clock, so the fire times it finds missed do not depend on when the test runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.server.app import create_app
from convoscope.server.scheduler import Scheduler
from convoscope.server.services import Services
from convoscope.store.schedules_meta import ScheduleRow

BASE = "/api/v1/schedules"
SUITE = """\
kind: scenario
id: human
goal: Speak to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
script:
  lines: ["Can I speak to a real person, please?"]
---
kind: suite
id: smoke
scenarios: [human]
metrics: [tool_call_success]
"""


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


@pytest.fixture
def serving(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, run_worker=True)) as client:
        yield client


def _until(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


def _every_second(action: dict[str, Any]) -> dict[str, Any]:
    return {"name": "tick", "cron": "* * * * *", "second": "*", "action": action}


def test_a_schedule_fires_a_run_whose_calls_are_evaluated_and_a_failing_one_goes_on(
    serving: TestClient, auth: dict[str, str], agent_url: str
) -> None:
    imported = serving.post(
        "/api/v1/simulation/definitions:import",
        content=SUITE,
        headers={**auth, "content-type": "application/yaml"},
    )
    assert imported.status_code == 200, imported.text
    agent = {
        "version": "1.0",
        "connector": {"kind": "openai", "base_url": f"{agent_url}/v1", "model": "reference-agent"},
        "tools_url": f"{agent_url}/tools",
    }
    assert serving.put("/api/v1/simulation/agents/clinic", json=agent, headers=auth).status_code == 201

    simulate = {"kind": "simulate", "suite": "smoke", "agent": "clinic", "concurrency": 1}
    assert serving.put(f"{BASE}/tick", json=_every_second(simulate), headers=auth).status_code == 201
    broken = {"kind": "simulate", "suite": "gone", "agent": "clinic"}
    assert serving.put(f"{BASE}/broken", json=_every_second(broken), headers=auth).status_code == 201

    def result(schedule_id: str) -> dict[str, Any]:
        return dict(serving.get(f"{BASE}/{schedule_id}", headers=auth).json())

    fired = _until(lambda: (result("tick")["last_result"] or {}).get("run_id") and result("tick"))
    # Stop it after its first run (the change reaches the running scheduler at once).
    body = {**_every_second(simulate), "enabled": False}
    assert serving.put(f"{BASE}/tick", json=body, headers=auth).json()["next_run_at"] is None
    assert fired["last_result"]["trigger"] == "schedule" and fired["last_result"]["planned"] == 1
    run_id = fired["last_result"]["run_id"]

    # The failing schedule records its error and keeps firing.
    first = _until(lambda: result("broken")["last_result"])
    assert first["error"] == "NotFound: suite 'gone' not found in this project"
    later = _until(lambda: (r := result("broken")["last_result"])["at"] != first["at"] and r)
    assert later["at"] > first["at"] and later["error"] == first["error"]

    # The run is a run like any other: kept, its calls stored and scored by the job runner.
    runs = "/api/v1/simulation/runs"
    done = _until(
        lambda: (r := serving.get(f"{runs}/{run_id}", headers=auth).json())["status"] == "done" and r
    )
    assert done["totals"] == {"passed": 1}
    call_id = done["conversations"][0]["call_id"]

    def scored() -> dict[str, Any]:
        scores = serving.get(f"/api/v1/calls/{call_id}", headers=auth).json()["scores"]
        return {score["metric"]: score["passed"] for score in scores}

    assert _until(lambda: scored().get("scenario_checks"))
    after = result("tick")
    assert after["last_result"]["run_id"] == run_id  # disabled: it did not fire again


def _write_old(services: Services, body: dict[str, Any], last_run: datetime) -> str:
    """A schedule as a server that went down long ago left it: last run and last edit at ``last_run``."""
    project = services.default_project.id
    meta = services.meta
    meta.put_schedule(project, "old", body, True)
    meta.record_schedule_run(project, "old", last_run, {"trigger": "schedule", "queued": 7})
    with meta.engine.begin() as connection:
        connection.execute(
            update(ScheduleRow)
            .where(ScheduleRow.project_id == project, ScheduleRow.id == "old")
            .values(created_at=last_run, updated_at=last_run, last_fire_at=last_run)
        )
    return project


async def _start_and_stop(services: Services, now: datetime) -> None:
    """Start a scheduler with a fixed clock, let it load and catch up, then stop it."""
    scheduler = Scheduler(services, clock=lambda: now)
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(scheduler.loaded.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


NOW = datetime(2026, 6, 15, 12, 0, 30, tzinfo=UTC)
REEVALUATE = {"kind": "reevaluate", "since_days": 1}


@pytest.mark.parametrize(
    ("cron", "misfire", "runs"),
    [
        ("0 * * * *", "once", True),  # 12:00 was missed 30 s ago: within the hour's grace
        ("0 * * * *", "skip", False),  # the default: wait for 13:00
        ("0 0 1 1 *", "once", False),  # 1 January was missed, but long before the grace
    ],
)
def test_missed_runs_after_downtime_follow_the_misfire_policy(
    services: Services, cron: str, misfire: str, runs: bool
) -> None:
    body = {"name": "old", "cron": cron, "action": REEVALUATE, "misfire": misfire, "misfire_grace_s": 3600}
    last_run = NOW - timedelta(days=400)
    project = _write_old(services, body, last_run)

    asyncio.run(_start_and_stop(services, NOW))
    stored = services.meta.get_schedule(project, "old")
    assert stored is not None
    if runs:
        assert stored.last_result == {"trigger": "catch-up", "at": NOW.isoformat(), "queued": 0}
        assert stored.last_fire_at == datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
        # A second server starting beside this one finds the missed time claimed and runs nothing.
        asyncio.run(_start_and_stop(services, NOW + timedelta(seconds=5)))
        again = services.meta.get_schedule(project, "old")
        assert again is not None and again.last_result == stored.last_result
    else:
        assert stored.last_run_at == last_run and stored.last_result == {"trigger": "schedule", "queued": 7}


def test_schedules_written_by_another_process_reach_a_running_scheduler(services: Services) -> None:
    """API servers and workers are separate processes: a schedule one writes, edits or deletes reaches
    the schedulers of the others at their next resync."""
    project = services.default_project.id
    body = {"name": "nightly", "cron": "0 3 * * *", "action": REEVALUATE}

    async def scenario() -> list[list[str]]:
        scheduler = Scheduler(services, resync_s=0.1)
        task = asyncio.create_task(scheduler.run())
        await asyncio.wait_for(scheduler.loaded.wait(), 20)
        seen = [scheduler.job_ids]
        await asyncio.to_thread(services.meta.put_schedule, project, "nightly", body, True)
        await asyncio.sleep(0.5)
        seen.append(scheduler.job_ids)
        await asyncio.to_thread(services.meta.put_schedule, project, "nightly", body, False)
        await asyncio.sleep(0.5)
        seen.append(scheduler.job_ids)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    assert asyncio.run(scenario()) == [[], [f"{project}/nightly"], []]
