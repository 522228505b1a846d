"""``convoscope alerts list|add|events``: the project's alert rules (list, add from YAML) and their events.

Through the running server when one holds the data directory (the same API a script would use), else
on the metadata store itself under the directory lock. The commands join the ``convoscope alerts``
group of :mod:`.alerts_test` (``alerts test``), and ``app`` here is that group with all of them.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._shared import DataDir, Project, ServerClient, api_or_store, parse_since, run_reporting_errors
from .alerts_test import app

if TYPE_CHECKING:
    from ..runtime.stores import Stores

__all__ = ["app"]


class _Local:
    """The metadata store of the data directory, for one project."""

    def __init__(self, stores: Stores, project: str) -> None:
        self._meta = stores.meta
        self._project_id = stores.project(project).id

    def rules(self) -> list[dict[str, Any]]:
        return [
            {"id": r.id, "rule": r.body, "state": {"firing": r.state.firing, "since": _iso(r.state.since)}}
            for r in self._meta.list_alert_rules(self._project_id)
        ]

    def put(self, rule_id: str, body: dict[str, Any], enabled: bool) -> bool:
        (stored,) = self._meta.put_alert_rules(self._project_id, [(rule_id, body, enabled)])
        return stored.created

    def events(self, rule: str | None, since: str | None, limit: int) -> list[dict[str, Any]]:
        from dataclasses import asdict

        found = self._meta.list_alert_events(
            self._project_id, rule_id=rule, since=parse_since(since), limit=limit
        )
        return [asdict(event) | {"at": event.at.isoformat()} for event in found]


class _Remote(ServerClient):
    """The running server's alerts API."""

    def rules(self) -> list[dict[str, Any]]:
        return list(self._check(self._client.get("/api/v1/alerts/rules"))["items"])

    def put(self, rule_id: str, body: dict[str, Any], enabled: bool) -> bool:
        response = self._client.put(f"/api/v1/alerts/rules/{rule_id}", json=body)
        self._check(response)
        return bool(response.status_code == 201)

    def events(self, rule: str | None, since: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if rule is not None:
            params["rule"] = rule
        moment = parse_since(since)
        if moment is not None:
            params["since"] = moment.isoformat()
        return list(self._check(self._client.get("/api/v1/alerts/events", params=params))["items"])


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _target(data_dir: DataDir, project: str, *, reads_only: bool) -> AbstractContextManager[_Local | _Remote]:
    return api_or_store(data_dir, project, remote=_Remote, local=_Local, reads_only=reads_only)


@app.command("list")
def list_rules(
    json_out: Annotated[bool, typer.Option("--json", help="Print the rules as JSON.")] = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """The project's alert rules, with whether each is firing."""

    def work() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            rules = target.rules()
        if json_out:
            print(json.dumps(rules, indent=2))
            return
        for item in rules:
            rule, state = item["rule"], item["state"]
            what = (
                rule.get("target")
                or (rule.get("immediate") or rule.get("new_failure") or {}).get("metric")
                or ""
            )
            status = f"FIRING since {state['since']}" if state["firing"] else "ok"
            print(f"{item['id']}  {rule['kind']}  {what}  {status}  {rule['name']}")

    run_reporting_errors(work)


@app.command("add")
def add_rules(
    files: Annotated[list[Path], typer.Argument(help="YAML files or folders; documents of kind alert_rule.")],
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Create or replace the alert rules of YAML files (other kinds in them, e.g. suites, are skipped)."""
    from ..alerts.loader import load_rule_files

    def work() -> None:
        rules = load_rule_files(files)
        with _target(data_dir, project, reads_only=False) as target:
            for rule in rules:
                body = rule.spec.model_dump(mode="json")
                created = target.put(rule.id, body, rule.spec.enabled)
                print(f"{'created' if created else 'replaced'} {rule.id} ({rule.kind})")
        if not rules:
            print("no alert_rule documents found")

    run_reporting_errors(work)


@app.command("events")
def list_events(
    rule: Annotated[str | None, typer.Option("--rule", help="Only events of this rule.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO date or date-time (UTC if naive).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the events as JSON (with call ids).")
    ] = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Alert events, newest first."""

    def work() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            events = target.events(rule, since, limit)
        if json_out:
            print(json.dumps(events, indent=2, default=str))
            return
        for event in events:
            at = str(event["at"])[:19].replace("T", " ")
            calls = f"  calls: {', '.join(event['call_ids'][:5])}" if event["call_ids"] else ""
            print(f"{at}  {event['state'].upper():8}  {event['severity']:8}  {event['summary']}{calls}")

    run_reporting_errors(work)
