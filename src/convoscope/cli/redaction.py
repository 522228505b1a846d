"""``convoscope redaction``: show and change what a project masks before storage.

The setting lives in the project's settings document in the metadata database, which every server
process re-reads within a few seconds, so a change made here applies whether or not a server runs and
without a restart. ``set`` changes only the options it is given; the result is validated as a whole, so
a mistake is refused naming the field and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from ..errors import InputError
from ._shared import DataDir, Project, command_group, metadata_only, run_reporting_errors

if TYPE_CHECKING:
    from ..store.metadata import MetadataStore

__all__ = ["app", "change", "current"]

app = command_group("Show or change what a project masks before storage.")
console = Console()

T = TypeVar("T")


def current(meta: MetadataStore, project: str) -> dict[str, Any]:
    """The setting in force in ``project`` and whether it is the project's own."""
    from ..redaction import RedactionSettings
    from ..redaction.settings import settings_of

    info = meta.get_project(project)
    document = meta.project_settings(info.id) if info is not None else {}
    setting = settings_of(document, RedactionSettings())
    return {"project": project, "own": "redaction" in document, "setting": setting.model_dump(mode="json")}


def change(
    meta: MetadataStore, project: str, updates: dict[str, Any], *, clear: bool = False
) -> dict[str, Any]:
    """Apply ``updates`` to the project's setting (or remove it with ``clear``); returns the new one."""
    from ..redaction import SETTINGS_PATH, parse_settings

    if clear and updates:
        raise InputError("--clear removes the setting; give it alone")
    if not clear and not updates:
        raise InputError(
            "nothing to change: give --enable/--disable, --kinds, --replacement, --recordings, --engine "
            "or --mute-padding (or --clear)"
        )
    from ..store.audit_meta import local_entry

    project_id = meta.ensure_project(project).id
    value = None
    if not clear:
        stored = meta.project_settings(project_id).get(SETTINGS_PATH[0]) or {}
        value = parse_settings({**stored, **updates}).model_dump(mode="json")
    meta.update_project_settings(project_id, SETTINGS_PATH, value)
    meta.append_audit(
        [local_entry(project_id, "settings.redaction", "settings:redaction", {"setting": value})]
    )
    return current(meta, project)


def _with_meta(data_dir: Path | None, work: Callable[[MetadataStore], T], *, reads_only: bool) -> T:
    def body() -> T:
        with metadata_only(data_dir, reads_only=reads_only) as (meta, _):
            return work(meta)

    return run_reporting_errors(body)


@app.command("show")
def show_command(project: Project = "default", data_dir: DataDir = None) -> None:
    """The project's redaction setting as JSON (``own`` is false when the default applies)."""
    console.print_json(json.dumps(_with_meta(data_dir, lambda meta: current(meta, project), reads_only=True)))


@app.command("set")
def set_command(
    project: Project = "default",
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Mask before storage, or stop masking.")
    ] = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            "--kinds",
            help="Comma-separated: email, phone, card, bank_account, national_id, date_of_birth, postcode.",
        ),
    ] = None,
    replacement: Annotated[
        str | None, typer.Option("--replacement", help="What a masked value becomes; {kind} is its kind.")
    ] = None,
    recordings: Annotated[
        str | None,
        typer.Option(
            "--recordings", help="mute (over masked words), drop (keep none) or keep (as received)."
        ),
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="rules, presidio (pii extra) or both.")
    ] = None,
    mute_padding: Annotated[
        float | None, typer.Option("--mute-padding", help="Seconds muted on each side of a masked word.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the project's setting.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Change the options given, keep the others; prints the setting now in force."""
    updates: dict[str, Any] = {}
    if enable is not None:
        updates["enabled"] = enable
    if kinds is not None:
        updates["kinds"] = [kind.strip() for kind in kinds.split(",") if kind.strip()]
    for name, value in (
        ("replacement", replacement),
        ("recordings", recordings),
        ("engine", engine),
        ("mute_padding_s", mute_padding),
    ):
        if value is not None:
            updates[name] = value
    result = _with_meta(data_dir, lambda meta: change(meta, project, updates, clear=clear), reads_only=False)
    console.print_json(json.dumps(result))
