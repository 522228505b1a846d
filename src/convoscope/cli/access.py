"""``convoscope keys``, ``convoscope users`` and ``convoscope audit``: who may do what, and what was done.

These work on the metadata database of the data directory, whether or not a server runs (SQLite takes
both; a running server sees a revocation or a new role at its next request). The command line is the
operator at the machine, so it acts as admin; every change it makes is recorded in the audit log as
``cli:<operating-system user>``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ..errors import InputError
from ._shared import (
    DataDir,
    Project,
    command_group,
    fail,
    metadata_only,
    parse_since,
    run_reporting_errors,
)

if TYPE_CHECKING:
    from ..store.metadata import MetadataStore
    from ..store.users_meta import Role

__all__ = ["audit_app", "keys_app", "users_app"]

keys_app = command_group("Manage project API keys: create (with a role and an expiry), list, revoke.")
users_app = command_group("Give people a role in a project: admin, member or viewer.")
audit_app = command_group("Read or export the audit log.")

T = TypeVar("T")

RoleOption = Annotated[str, typer.Option("--role", help="admin, member or viewer.")]


def _in_project(
    data_dir: Path | None, project: str, work: Callable[[MetadataStore, str], T], *, create: bool
) -> T:
    """Run ``work(meta, project_id)``, reporting our errors as one line; an unknown project fails unless
    ``create``."""

    def body() -> T:
        with metadata_only(data_dir, reads_only=not create) as (meta, _):
            info = meta.ensure_project(project) if create else meta.get_project(project)
            if info is None:
                fail(f"no project named {project!r}")
            return work(meta, info.id)

    return run_reporting_errors(body)


def _role(value: str) -> Role:
    from ..errors import InputError
    from ..store.users_meta import parse_role

    try:
        return parse_role(value, field="--role")
    except InputError as exc:
        fail(str(exc))


def _audit(meta: MetadataStore, project_id: str, action: str, target: str, **detail: object) -> None:
    from ..store.audit_meta import local_entry

    meta.append_audit([local_entry(project_id, action, target, dict(detail))])


def _expiry(expires_in_days: float | None) -> datetime | None:
    return None if expires_in_days is None else datetime.now(UTC) + timedelta(days=expires_in_days)


@keys_app.command("create")
def keys_create(
    project: Annotated[str, typer.Option("--project", help="Project the key opens (created if new).")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    role: RoleOption = "admin",
    user: Annotated[str | None, typer.Option(help="The user the key belongs to (a member).")] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", min=0.001, help="The key stops working after this.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create an API key and print it (shown once; only its hash is stored)."""
    chosen = _role(role) if role else None

    def work(meta: MetadataStore, project_id: str) -> None:
        assert chosen is not None
        plaintext, info = meta.issue_api_key(
            project_id, name=name, role=chosen, expires_at=_expiry(expires_in_days), user=user
        )
        _audit(meta, project_id, "key.create", f"key:{info.id}", role=chosen.value, user=user, name=name)
        print(plaintext)

    _in_project(data_dir, project, work, create=True)


@keys_app.command("list")
def keys_list(
    project: Project, as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None
) -> None:
    """The project's keys: id, name, role, user, prefix, last use, expiry and revocation."""

    def work(meta: MetadataStore, project_id: str) -> None:
        keys = [key.as_json() for key in meta.list_api_keys(project_id)]
        if as_json:
            print(json.dumps(keys, indent=2))
            return
        for key in keys:
            state = (
                "revoked"
                if key["revoked_at"]
                else f"expires {key['expires_at']}"
                if key["expires_at"]
                else ""
            )
            owner = key["user"] or "-"
            line = f"{key['id']}  {key['prefix']}…  {key['role']:<6}  {owner:<16}  {key['name']}  {state}"
            print(line.rstrip())

    _in_project(data_dir, project, work, create=False)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list).")],
    project: Project,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key for good; a running server refuses it at its next request."""

    def work(meta: MetadataStore, project_id: str) -> None:
        meta.revoke_api_key(key_id, project_id=project_id)
        _audit(meta, project_id, "key.revoke", f"key:{key_id}")
        print(f"revoked {key_id}")

    _in_project(data_dir, project, work, create=False)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user's name (e.g. an e-mail address).")],
    project: Project,
    role: RoleOption = "member",
    data_dir: DataDir = None,
) -> None:
    """Give a user a role in the project (a user already there gets the new role)."""
    chosen = _role(role)

    def work(meta: MetadataStore, project_id: str) -> None:
        meta.add_user(project_id, name, chosen)
        _audit(meta, project_id, "user.role", f"user:{name}", role=chosen.value)
        print(f"{name} is {chosen.value} in {project}")

    _in_project(data_dir, project, work, create=True)


@users_app.command("list")
def users_list(project: Project, data_dir: DataDir = None) -> None:
    """The project's users and their roles."""

    def work(meta: MetadataStore, project_id: str) -> None:
        for user in meta.list_users(project_id):
            print(f"{user.name}  {user.role.value}")

    _in_project(data_dir, project, work, create=False)


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument()], project: Project, data_dir: DataDir = None) -> None:
    """Take a user out of the project; their keys for it stop working at once."""

    def work(meta: MetadataStore, project_id: str) -> None:
        meta.remove_user(project_id, name)
        _audit(meta, project_id, "user.remove", f"user:{name}")
        print(f"{name} removed from {project}")

    _in_project(data_dir, project, work, create=False)


def _when(value: str | None, option: str) -> datetime | None:
    try:
        return parse_since(value, option)
    except InputError as exc:
        fail(str(exc))


Since = Annotated[str | None, typer.Option(help="Entries at or after this time (ISO 8601).")]
Until = Annotated[str | None, typer.Option(help="Entries before this time (ISO 8601).")]
Actor = Annotated[str | None, typer.Option(help="A user's name, key:NAME or cli:NAME.")]
Action = Annotated[str | None, typer.Option(help="An action, or a prefix ending in * (read.*).")]


@audit_app.command("list")
def audit_list(
    project: Project,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    data_dir: DataDir = None,
) -> None:
    """The log's entries, oldest first: time, actor, action, target, status, source."""
    from ..store.audit_meta import AuditQuery

    start, end = _when(since, "--since"), _when(until, "--until")

    def work(meta: MetadataStore, project_id: str) -> None:
        for entry in meta.list_audit(AuditQuery(project_id, start, end, actor, action, 0, limit)):
            status = "" if entry.status is None else f" {entry.status}"
            when = entry.as_json()["at"]
            print(f"{when}  {entry.actor}  {entry.action}  {entry.target}{status}  {entry.source}")

    _in_project(data_dir, project, work, create=False)


@audit_app.command("export")
def audit_export(
    project: Project,
    output: Annotated[
        Path | None, typer.Option(help="Write to this file (default: standard output).")
    ] = None,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    data_dir: DataDir = None,
) -> None:
    """Every matching entry as JSON lines."""
    from ..store.audit_meta import AuditQuery

    start, end = _when(since, "--since"), _when(until, "--until")

    def work(meta: MetadataStore, project_id: str) -> None:
        query = AuditQuery(project_id, start, end, actor, action)
        out = output.open("w") if output else sys.stdout
        try:
            for entry in meta.iter_audit(query):
                out.write(json.dumps(entry.as_json()) + "\n")
        finally:
            if output:
                out.close()

    _in_project(data_dir, project, work, create=False)
