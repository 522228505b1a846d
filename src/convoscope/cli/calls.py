"""``convoscope calls list|show``: read stored calls, through the running server or the store itself.

``list`` pages through the calls (the API serves at most ``PAGE_SIZE`` per request, the store the same),
so ``--limit`` means the same on both paths. Its table never cuts an id: ids are what ``calls show``
takes, so the id column keeps its full width and the other columns give way (ellipsized, and the least
useful ones left out on a narrow terminal; ``--json`` has every field).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..model.enums import CallSource, EndReason
from ._shared import DataDir, Project, command_group, run_reporting_errors

if TYPE_CHECKING:
    from rich.table import Table

    from ..store.base import CallFilter, CallPage, CallSummary
    from .backend import Backend

__all__ = ["PAGE_SIZE", "app", "call_table", "collect_calls"]

app = command_group("Read stored calls.")
console = Console()

PAGE_SIZE = 500
"""Calls asked for per request: the largest page ``GET /api/v1/calls`` and the store serve."""

COLUMN_GAP = 2
"""Spaces between two columns of the list."""


@dataclass(frozen=True)
class _Column:
    header: str
    value: Callable[[CallSummary], str]
    shortest: int
    """Narrower than this, the column is left out rather than shown as a stub."""
    priority: int
    """Lower keeps its place first when the terminal is narrow."""
    right: bool = False


_COLUMNS = (
    _Column("started (UTC)", lambda c: c.started_at.strftime("%Y-%m-%d %H:%M:%S"), 19, 0),
    _Column("agent", lambda c: c.agent_id or "", 8, 1),
    _Column("source", lambda c: c.source.value, 6, 4),
    _Column("dur s", lambda c: f"{c.duration_s:.1f}", 5, 3, right=True),
    _Column("turns", lambda c: str(c.turn_count), 5, 2, right=True),
    _Column("tool err", lambda c: str(c.tool_error_count), 8, 5, right=True),
    _Column("end reason", lambda c: c.end_reason.value, 10, 6),
)


def _widths(columns: tuple[_Column, ...], natural: list[int], room: int) -> dict[int, int]:
    """Column index → width, for the columns that fit in ``room`` (most useful first)."""
    chosen: dict[int, int] = {}
    for index in sorted(range(len(columns)), key=lambda i: columns[i].priority):
        need = min(natural[index], columns[index].shortest) + COLUMN_GAP
        if need <= room:
            chosen[index] = need - COLUMN_GAP
            room -= need
    for index in sorted(chosen, key=lambda i: columns[i].priority):  # then grow toward natural widths
        extra = min(natural[index] - chosen[index], room)
        chosen[index] += extra
        room -= extra
    return chosen


def call_table(calls: list[CallSummary], width: int) -> Table:
    """The calls as a table at most ``width`` wide whose id column is never narrowed."""
    from rich import box
    from rich.table import Table

    id_width = max([len("id"), *(len(c.id) for c in calls)])
    cells = [[column.value(c) for c in calls] for column in _COLUMNS]
    natural = [
        max([len(column.header), *map(len, values)]) for column, values in zip(_COLUMNS, cells, strict=True)
    ]
    widths = _widths(_COLUMNS, natural, max(width - id_width, 0))
    # One space of padding and the box's blank divider make the gap between two columns.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, COLUMN_GAP - 1, 0, 0))
    table.add_column("id", no_wrap=True, min_width=id_width, max_width=id_width)
    shown = sorted(widths)
    for index in shown:
        column = _COLUMNS[index]
        table.add_column(
            column.header,
            no_wrap=True,
            overflow="ellipsis",
            min_width=widths[index],
            max_width=widths[index],
            justify="right" if column.right else "left",
        )
    for row, call in enumerate(calls):
        table.add_row(call.id, *(cells[index][row] for index in shown))
    return table


def collect_calls(backend: Backend, filters: CallFilter, limit: int) -> CallPage:
    """Up to ``limit`` calls, newest first, following the cursor page by page."""
    from ..store.base import CallPage

    items: list[CallSummary] = []
    cursor: str | None = None
    while True:
        page = backend.list_calls(filters, limit=min(limit - len(items), PAGE_SIZE), cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None or len(items) >= limit:
            return CallPage(items=items, next_cursor=cursor)


@app.command("list")
def calls_list(
    data_dir: DataDir = None,
    project: Project = "default",
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    source: Annotated[CallSource | None, typer.Option(help="Only this source.")] = None,
    end_reason: Annotated[EndReason | None, typer.Option(help="Only this end reason.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only calls with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most calls to show, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the newest calls."""
    from ..store.base import CallFilter
    from .backend import open_backend
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=True)
    filters = CallFilter(agent_id=agent, source=source, end_reason=end_reason, tag=tag)

    def work() -> None:
        with open_backend(settings, project=project) as backend:
            page = collect_calls(backend, filters, limit)
        if as_json:
            print(page.model_dump_json(indent=2))
            return
        console.print(call_table(page.items, console.width))

    run_reporting_errors(work)


@app.command("show")
def calls_show(
    call_id: Annotated[str, typer.Argument(help="The call's id.")],
    data_dir: DataDir = None,
    project: Project = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored call as JSON.")] = False,
) -> None:
    """Show one call with its transcript."""
    from rich.table import Table

    from .backend import open_backend
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=True)

    def work() -> None:
        with open_backend(settings, project=project) as backend:
            stored = backend.get_call(call_id)
        if as_json:
            print(stored.model_dump_json(indent=2))
            return
        call = stored.call
        console.print(
            f"[bold]{call.agent_id or 'call'}[/bold] {call.source.value}:{call.external_id} "
            f"started {call.started_at:%Y-%m-%d %H:%M:%S} UTC, {call.effective_duration_s:.1f} s, "
            f"ended {call.end_reason.value}",
            highlight=False,
        )
        table = Table("#", "role", "start", "end", "text", "e2e s")
        for turn in call.turns:
            e2e = f"{turn.e2e_s:.2f}" if turn.e2e_s is not None else ""
            table.add_row(
                str(turn.index), turn.role.value, f"{turn.start_s:.2f}", f"{turn.end_s:.2f}", turn.text, e2e
            )
        console.print(table)
        for tool in call.tool_calls:
            status = "ok" if tool.success else ("FAILED" if tool.success is False else "?")
            console.print(f"tool {tool.name}({json.dumps(tool.arguments)}) → {status}", highlight=False)
        for score in stored.scores:
            console.print(f"score {score.metric}@{score.version} = {score.value} passed={score.passed}")

    run_reporting_errors(work)
