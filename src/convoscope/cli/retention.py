"""``convoscope delete`` and ``convoscope retention``: delete calls for good, and keep data no longer
than a project's limits.

Both go through the running server's API when one owns the data directory (chDB lets one process open
it), else open the stores themselves under the directory lock. A deletion is recorded in the audit log
either way: by the server for its API, as ``cli:<operating-system user>`` here.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._shared import DataDir, ServerClient, api_or_store, command_group, fail, run_reporting_errors

if TYPE_CHECKING:
    from ..runtime.stores import Stores

__all__ = ["app", "delete_command"]

app = command_group("Show, change or apply how long a project keeps calls, recordings and raw payloads.")

ProjectOption = Annotated[str, typer.Option("--project", help="Project name.")]


class _Local:
    """The stores of the data directory (no server runs); every deletion is audited as the CLI user."""

    def __init__(self, stores: Stores, project: str) -> None:
        from ..store.retention import Eraser

        info = stores.meta.get_project(project)
        if info is None:
            fail(f"no project named {project!r}")
        self._meta = stores.meta
        self._project_id = info.id
        self._eraser = Eraser(stores.store, stores.meta, stores.blobs)

    def _audit(self, action: str, target: str, detail: dict[str, Any]) -> None:
        from ..store.audit_meta import local_entry

        self._meta.append_audit([local_entry(self._project_id, action, target, detail)])

    def delete_call(self, call_id: str) -> int:
        result = self._eraser.delete_call(self._project_id, call_id)
        self._audit("call.delete", f"call:{call_id}", {"call_id": call_id, "deleted": result.deleted})
        return result.deleted

    def delete_before(self, before: str) -> int:
        from ..store.retention import parse_before

        moment = parse_before(before, field_name="--before")
        result = self._eraser.delete_before(self._project_id, moment)
        self._audit(
            "call.delete", f"calls:before:{moment.isoformat()}", {"before": before, "deleted": result.deleted}
        )
        return result.deleted

    def show(self) -> dict[str, Any]:
        from ..store.retention import SETTINGS_PATH, retention_of

        own = bool(self._meta.project_settings(self._project_id).get(SETTINGS_PATH[0]))
        return {"setting": retention_of(self._meta, self._project_id).model_dump(mode="json"), "own": own}

    def put(self, setting: dict[str, Any]) -> dict[str, Any]:
        from ..store.retention import SETTINGS_PATH, parse_retention

        value = parse_retention(setting).model_dump(mode="json")
        self._meta.update_project_settings(self._project_id, SETTINGS_PATH, value)
        self._audit("settings.retention", "settings:retention", {"retention": value})
        return self.show()

    def apply(self) -> dict[str, Any]:
        answer = self._eraser.apply(self._project_id).as_json()
        self._audit(
            "retention.apply", "settings:retention", {k: v for k, v in answer.items() if k != "project_id"}
        )
        return answer


class _Remote(ServerClient):
    """The running server's API (which audits what it does)."""

    def delete_call(self, call_id: str) -> int:
        self._check(self._client.delete(f"/api/v1/calls/{call_id}"))
        return 1

    def delete_before(self, before: str) -> int:
        from ..store.retention import parse_before

        moment = parse_before(before, field_name="--before")
        answer = self._check(self._client.post("/api/v1/deletions", json={"before": moment.isoformat()}))
        return int(answer["deleted"])

    def show(self) -> dict[str, Any]:
        return dict(self._check(self._client.get("/api/v1/settings/retention")))

    def put(self, setting: dict[str, Any]) -> dict[str, Any]:
        return dict(self._check(self._client.put("/api/v1/settings/retention", json=setting)))

    def apply(self) -> dict[str, Any]:
        return dict(self._check(self._client.post("/api/v1/settings/retention/apply")))


def _target(data_dir: DataDir, project: str, *, reads_only: bool) -> AbstractContextManager[_Local | _Remote]:
    return api_or_store(data_dir, project, remote=_Remote, local=_Local, reads_only=reads_only)


def delete_command(
    project: ProjectOption,
    call: Annotated[str | None, typer.Option("--call", help="The id of the call to delete.")] = None,
    before: Annotated[
        str | None, typer.Option("--before", help="Delete every call that started before this ISO date.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Delete a call, or every call started before a date, from every store, for good."""
    if (call is None) == (before is None):
        fail("give exactly one of --call ID or --before DATE")
    if before is not None:
        from ..errors import InputError
        from ..store.retention import parse_before

        try:
            parse_before(before, field_name="--before")
        except InputError as exc:
            fail(str(exc))

    def body() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            deleted = target.delete_call(call) if call is not None else target.delete_before(str(before))
        what = f"call {call}" if call is not None else f"calls started before {before}"
        print(f"deleted {deleted} {'call' if deleted == 1 else 'calls'} ({what})")

    run_reporting_errors(body)


@app.command("show")
def show_command(project: ProjectOption = "default", data_dir: DataDir = None) -> None:
    """The project's retention setting as JSON (``null``: kept forever)."""

    def body() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            print(json.dumps(target.show(), indent=2))

    run_reporting_errors(body)


@app.command("set")
def set_command(
    project: ProjectOption = "default",
    calls_days: Annotated[
        int | None, typer.Option("--calls-days", min=0, help="Days; 0 keeps forever.")
    ] = None,
    recordings_days: Annotated[
        int | None, typer.Option("--recordings-days", min=0, help="Days; 0 keeps forever.")
    ] = None,
    raw_payloads_days: Annotated[
        int | None, typer.Option("--raw-payloads-days", min=0, help="Days; 0 keeps forever.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Change the limits given and keep the others; prints the setting now in force."""
    updates = {
        name: (None if value == 0 else value)
        for name, value in (
            ("calls_days", calls_days),
            ("recordings_days", recordings_days),
            ("raw_payloads_days", raw_payloads_days),
        )
        if value is not None
    }
    if not updates:
        fail("nothing to change: give --calls-days, --recordings-days or --raw-payloads-days")

    def body() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            current = dict(target.show()["setting"])
            print(json.dumps(target.put({**current, **updates}), indent=2))

    run_reporting_errors(body)


@app.command("apply")
def apply_command(project: ProjectOption = "default", data_dir: DataDir = None) -> None:
    """Remove now what is past the project's limits; prints what went."""

    def body() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            print(json.dumps(target.apply(), indent=2))

    run_reporting_errors(body)
