"""``convoscope sources``: a project's per-vendor webhook settings (secret, channel map) and webhook URLs.

The settings live in the project's settings document in the metadata database, which the server reads on
every webhook, so a change applies to the next event without a restart. The metadata database (SQLite in
WAL mode, or PostgreSQL) takes writers from several processes, so this works whether or not a server runs.
Secrets are written, never printed: ``show`` says only whether one is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from ..errors import InputError
from ._shared import DataDir, Project, command_group, metadata_only, run_reporting_errors
from .names import WEBHOOK_SOURCES as SOURCE_NAMES

if TYPE_CHECKING:
    from ..config import Settings
    from ..store.metadata import MetadataStore

__all__ = ["app", "configure", "describe"]

app = command_group("Configure vendor webhook sources of a project.")
console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

SIGNATURE_HEADERS = {
    "retell": "x-retell-signature (signed with your Retell API key)",
    "vapi": "x-vapi-secret, or an HMAC credential's x-signature + x-timestamp",
    "elevenlabs": "ElevenLabs-Signature (the webhook's HMAC secret)",
    "bland": "X-Webhook-Signature (the signing secret)",
    "generic": "x-convoscope-signature: t=<epoch s>,v1=<HMAC-SHA256 of 't.body'>",
    "webex": "(pull only)",
}


def _source(name: str) -> str:
    if name not in SOURCE_NAMES:
        raise InputError(f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}")
    return name


def configure(
    meta: MetadataStore,
    project: str,
    source: str,
    *,
    secret: str | None = None,
    clear_secret: bool = False,
    channel_map: str | None = None,
) -> list[str]:
    """Write the given settings of ``source`` in ``project``; returns what changed, secrets masked."""
    _source(source)
    if secret is not None and clear_secret:
        raise InputError("--secret and --clear-secret contradict each other")
    project_id = meta.ensure_project(project).id
    changed: list[str] = []
    if secret is not None:
        if not secret.strip():
            raise InputError("the secret is empty")
        meta.update_project_settings(project_id, ("sources", source, "secret"), secret.strip())
        changed.append("secret set")
    if clear_secret:
        meta.update_project_settings(project_id, ("sources", source, "secret"), None)
        changed.append("secret cleared")
    if channel_map is not None:
        if channel_map.strip().lower() in ("", "unknown", "none"):
            meta.update_project_settings(project_id, ("sources", source, "channel_map"), None)
            changed.append("channel map cleared (unknown)")
        else:
            from ..server.vendor_ingest import parse_channel_map

            roles = parse_channel_map(channel_map, "--channel-map")
            value = [roles[channel].value for channel in sorted(roles)]
            meta.update_project_settings(project_id, ("sources", source, "channel_map"), value)
            changed.append(f"channel map {','.join(value)}")
    if not changed:
        raise InputError("nothing to change: give --secret, --secret-env, --clear-secret or --channel-map")
    from ..store.audit_meta import local_entry

    entry = local_entry(project_id, "settings.source", f"settings:sources.{source}", {"changed": changed})
    meta.append_audit([entry])
    return changed


def describe(meta: MetadataStore, project: str) -> list[dict[str, Any]]:
    """Each source's settings in ``project``, the secret reduced to whether it is set."""
    from ..server.vendor_ingest import channel_map_setting

    info = meta.get_project(project)
    settings = meta.project_settings(info.id) if info is not None else {}
    rows = []
    for name in SOURCE_NAMES:
        block = (settings.get("sources") or {}).get(name) or {}
        roles = channel_map_setting(settings, name)
        rows.append(
            {
                "source": name,
                "secret": bool(block.get("secret")),
                "channel_map": ",".join(roles[c].value for c in sorted(roles)) if roles else None,
            }
        )
    return rows


def _webhook_url(settings: Settings, source: str) -> str:
    return f"http://{settings.host}:{settings.port}/api/v1/ingest/{source}?key=<api key>"


def _with_meta(data_dir: Path | None, work: Callable[[MetadataStore, Settings], T], *, reads_only: bool) -> T:
    def body() -> T:
        with metadata_only(data_dir, reads_only=reads_only) as (meta, settings):
            return work(meta, settings)

    return run_reporting_errors(body)


@app.command("configure")
def configure_command(
    source: Annotated[str, typer.Argument(help=f"One of: {', '.join(SOURCE_NAMES)}.")],
    project: Project = "default",
    secret: Annotated[
        str | None, typer.Option("--secret", help="Webhook signing secret (ends up in shell history).")
    ] = None,
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Read the secret from this environment variable.")
    ] = None,
    clear_secret: Annotated[
        bool, typer.Option("--clear-secret", help="Accept unsigned events again.")
    ] = False,
    channel_map: Annotated[
        str | None,
        typer.Option(
            "--channel-map",
            help="Roles of a stereo recording's channels, left first (e.g. user,agent); 'unknown' clears it.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Set a source's webhook secret and the channel map of its recordings when the vendor documents none."""
    if secret_env is not None:
        secret = os.environ.get(secret_env)
        if secret is None:
            err_console.print(f"[red]error:[/red] environment variable {secret_env} is not set")
            raise typer.Exit(code=1)

    def work(meta: MetadataStore, settings: Settings) -> None:
        changed = configure(
            meta, project, source, secret=secret, clear_secret=clear_secret, channel_map=channel_map
        )
        console.print(f"{source} in project {project}: {'; '.join(changed)}", highlight=False)
        console.print(f"webhook URL: {_webhook_url(settings, source)}", highlight=False)

    _with_meta(data_dir, work, reads_only=False)


@app.command("show")
def show_command(project: Project = "default", data_dir: DataDir = None) -> None:
    """Each source's settings in a project (whether a secret is set, never the secret)."""

    def work(meta: MetadataStore, settings: Settings) -> None:
        from rich.table import Table

        table = Table("source", "secret", "channel map", "signature header", "webhook URL")
        for row in describe(meta, project):
            table.add_row(
                row["source"],
                "set" if row["secret"] else "-",
                row["channel_map"] or "unknown",
                SIGNATURE_HEADERS.get(row["source"], ""),
                _webhook_url(settings, row["source"]),
            )
        console.print(table)

    _with_meta(data_dir, work, reads_only=True)
