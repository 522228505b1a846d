"""``convoscope schedules list|add|run|delete``: the project's cron schedules.

Through the running server when one holds the data directory (the same API a script would use, and the
server's scheduler picks a change up at once), else on the metadata store itself under the directory
lock (the server reads the schedules when it next starts). ``run`` needs the server: the action (a
simulation run, queued evaluations) is executed by it. Schedules are YAML documents of ``kind:
schedule``, in the same files as suites and alert rules (each command skips the kinds it does not read).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._shared import DataDir, Project, ServerClient, api_or_store, command_group, run_reporting_errors

if TYPE_CHECKING:
    from ..runtime.stores import Stores

__all__ = ["app"]

app = command_group("Cron schedules that run a simulation suite or a re-evaluation on the server.")


class _Local:
    """The metadata store of the data directory, for one project (no server runs)."""

    def __init__(self, stores: Stores, project: str) -> None:
        self._meta = stores.meta
        self._project_id = stores.project(project).id

    def schedules(self) -> list[dict[str, Any]]:
        from ..server.schedule_spec import next_fire, parse_schedule

        out = []
        for stored in self._meta.list_schedules(self._project_id):
            spec = parse_schedule(stored.id, stored.body)
            upcoming = next_fire(spec, _now()) if stored.enabled else None
            out.append(
                {
                    "id": stored.id,
                    "schedule": stored.body,
                    "next_run_at": _iso(upcoming),
                    "last_run_at": _iso(stored.last_run_at),
                    "last_result": stored.last_result,
                }
            )
        return out

    def put(self, schedule_id: str, body: dict[str, Any], enabled: bool) -> bool:
        return self._meta.put_schedule(self._project_id, schedule_id, body, enabled).created

    def run(self, schedule_id: str) -> dict[str, Any]:
        from ..errors import InputError

        raise InputError(
            "running a schedule needs the server (it executes the action): start convoscope serve"
        )

    def delete(self, schedule_id: str) -> bool:
        return self._meta.delete_schedule(self._project_id, schedule_id)


class _Remote(ServerClient):
    """The running server's schedules API."""

    def schedules(self) -> list[dict[str, Any]]:
        return list(self._check(self._client.get("/api/v1/schedules"))["items"])

    def put(self, schedule_id: str, body: dict[str, Any], enabled: bool) -> bool:
        response = self._client.put(f"/api/v1/schedules/{schedule_id}", json=body)
        self._check(response)
        return bool(response.status_code == 201)

    def run(self, schedule_id: str) -> dict[str, Any]:
        return dict(self._check(self._client.post(f"/api/v1/schedules/{schedule_id}:run"))["result"])

    def delete(self, schedule_id: str) -> bool:
        response = self._client.delete(f"/api/v1/schedules/{schedule_id}")
        if response.status_code == 404:
            return False
        self._check(response)
        return True


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _target(data_dir: DataDir, project: str, *, reads_only: bool) -> AbstractContextManager[_Local | _Remote]:
    return api_or_store(data_dir, project, remote=_Remote, local=_Local, reads_only=reads_only)


def _outcome(result: dict[str, Any] | None) -> str:
    if not result:
        return "never ran"
    if result.get("error"):
        return f"FAILED {result['error']}"
    if "run_id" in result:
        return f"run {result['run_id']}"
    return f"{result.get('queued', 0)} calls queued"


@app.command("list")
def list_schedules(
    json_out: Annotated[bool, typer.Option("--json", help="Print the schedules as JSON.")] = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """The project's schedules: when each runs next and what its last run did."""

    def work() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            items = target.schedules()
        if json_out:
            print(json.dumps(items, indent=2, default=str))
            return
        for item in items:
            spec = item["schedule"]
            action = spec["action"]
            what = f"{action['kind']} {action.get('suite', '')}".rstrip()
            when = f"{spec['cron']} {spec.get('timezone', 'UTC')}"
            upcoming = item["next_run_at"] or "disabled"
            print(f"{item['id']}  {when}  {what}  next: {upcoming}  last: {_outcome(item['last_result'])}")

    run_reporting_errors(work)


@app.command("add")
def add_schedules(
    files: Annotated[list[Path], typer.Argument(help="YAML files or folders; documents of kind schedule.")],
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Create or replace the schedules of YAML files (other kinds in them, e.g. suites, are skipped)."""

    def work() -> None:
        from ..server.schedule_spec import load_schedule_files

        schedules = load_schedule_files(files)
        with _target(data_dir, project, reads_only=False) as target:
            for ident, spec in schedules:
                created = target.put(ident, spec.model_dump(mode="json"), spec.enabled)
                print(f"{'created' if created else 'replaced'} {ident} ({spec.cron} {spec.timezone})")
        if not schedules:
            print("no schedule documents found")

    run_reporting_errors(work)


@app.command("run")
def run_schedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="The schedule to run now.")],
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Run a schedule's action now on the server (a disabled one too); exits 1 when the action failed."""

    def work() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            result = target.run(schedule_id)
        print(f"{schedule_id}: {_outcome(result)}")
        if result.get("error"):
            raise typer.Exit(1)

    run_reporting_errors(work)


@app.command("delete")
def delete_schedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="The schedule to delete.")],
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Delete a schedule (runs it started stay)."""

    def work() -> None:
        from ..errors import NotFound

        with _target(data_dir, project, reads_only=False) as target:
            if not target.delete(schedule_id):
                raise NotFound(f"schedule {schedule_id!r} not found")
        print(f"deleted {schedule_id}")

    run_reporting_errors(work)
