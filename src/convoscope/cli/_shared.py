"""What several commands share: the error line and exit codes, the progress bar, ``--since``, and the
two ways of reaching a data directory (its running server, or the stores under the directory lock).

One place for these keeps every command's error line, exit code and lock message the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from ..errors import ConvoscopeError, InputError, StoreError

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress

    from ..config import Settings
    from ..runtime.stores import Stores
    from ..server.services import Services
    from ..store.metadata import MetadataStore

__all__ = [
    "BAD_INPUT_EXIT",
    "command_group",
    "DataDir",
    "Project",
    "count_progress",
    "err_console",
    "fail",
    "locked_services",
    "locked_stores",
    "metadata_only",
    "parse_since",
    "report_failures",
    "run_reporting_errors",
    "server_error_message",
    "api_or_store",
    "server_or_store",
    "ServerClient",
]

T = TypeVar("T")

err_console = Console(stderr=True)

BAD_INPUT_EXIT = 2
"""Exit code for input the command cannot use (as for a usage error); 1 is left for failures."""

ERROR_TEXT_CHARS = 500
"""How much of a server's answer an error line quotes when the answer is not our JSON error."""


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ~/.convoscope).")]
Project = Annotated[str, typer.Option("--project", help="Project name.")]


def command_group(help: str) -> typer.Typer:
    """A command group with click's plain help and usage errors.

    Typer's rich help imports rich's markdown and traceback renderers, which took most of the time of
    ``convoscope --help``; the plain format says the same and never truncates a line.
    """
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


def fail(message: str, code: int = BAD_INPUT_EXIT) -> NoReturn:
    """One red line on stderr, then exit with ``code``."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def run_reporting_errors(action: Callable[[], T]) -> T:
    """Run a command body, turning our errors into one red line (with the first field errors) and exit 1."""
    try:
        return action()
    except ConvoscopeError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        details = getattr(exc, "errors", None)
        for detail in (details or [])[:20]:
            err_console.print(f"  {detail.get('loc')}: {detail.get('msg')}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


def report_failures(console: Console, summary: str, failed: list[tuple[str, str]]) -> None:
    """The summary line and each failed call with its error; exit 1 if any failed."""
    console.print(summary + (f"; {len(failed)} failed:" if failed else ""), highlight=False)
    for call_id, error in failed:
        console.print(f"  {call_id}: {error}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(code=1)


def count_progress(console: Console = err_console) -> Progress:
    """An N-of-M bar on stderr, silent when stderr is not a terminal (scripts, CI logs)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not sys.stderr.isatty(),
    )


def parse_since(text: str | None, option: str = "--since") -> datetime | None:
    """An ISO date or date-time; a date means its midnight UTC, a naive time is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not an ISO date or date-time (e.g. 2026-01-31)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def server_error_message(response: httpx.Response, *, limit: int = ERROR_TEXT_CHARS) -> str:
    """The message of the server's JSON error, else the start of whatever it answered."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:limit]


@contextmanager
def metadata_only(data_dir: Path | None, *, reads_only: bool) -> Iterator[tuple[MetadataStore, Settings]]:
    """The metadata database of a data directory (keys, users, settings, sources) and its settings.

    Such commands touch neither the call store nor the directory lock, so they work beside a running
    server, whose metadata database takes concurrent writers.
    """
    from ..store.metadata import MetadataStore
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=reads_only)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        yield meta, settings
    finally:
        meta.close()


@contextmanager
def locked_stores(settings: Settings) -> Iterator[Stores]:
    """The stores of ``settings.data_dir`` and nothing more, opened under its lock; refused while another
    process holds it. A command that reads or writes calls needs no job handlers, evaluators or worker,
    and not importing them keeps its start close to the interpreter's."""
    from ..runtime.stores import open_stores
    from ..store.lock import DataDirLock

    lock = DataDirLock(settings.data_dir)
    if not lock.try_acquire():
        raise StoreError(
            f"data directory {settings.data_dir} is held by another process that is not a server"
        )
    try:
        stores = open_stores(settings, lazy_meta=True)
        try:
            yield stores
        finally:
            stores.close()
    finally:
        lock.release()


@contextmanager
def locked_services(settings: Settings) -> Iterator[Services]:
    """The server's services over the stores of ``settings.data_dir``, for commands that run jobs."""
    from ..server.services import compose_services

    with locked_stores(settings) as stores:
        yield compose_services(stores)


@contextmanager
def server_or_store(
    settings: Settings,
    project: str,
    *,
    remote: Callable[[str, str], AbstractContextManager[T]],
    local: Callable[[Stores, str], T],
) -> Iterator[T]:
    """Through the running server if there is one (``remote(url, api_key)``), else on the stores
    themselves under the directory lock (``local(stores, project)``)."""
    from ..store.lock import running_server_url
    from .backend import server_key

    url = running_server_url(settings.data_dir)
    if url is not None:
        with remote(url, server_key(settings, project, url)) as target:
            yield target
        return
    with locked_stores(settings) as stores:
        yield local(stores, project)


R = TypeVar("R", bound="ServerClient")
L = TypeVar("L")


@contextmanager
def api_or_store(
    data_dir: Path | None,
    project: str,
    *,
    remote: Callable[[str, str], R],
    local: Callable[[Stores, str], L],
    reads_only: bool,
) -> Iterator[R | L]:
    """A command group's target: its client of the running server's API (closed after), else its view of
    the data directory's stores under the lock (:func:`server_or_store`)."""
    from .locate import command_settings

    @contextmanager
    def opened(url: str, key: str) -> Iterator[R]:
        client = remote(url, key)
        try:
            yield client
        finally:
            client.close()

    settings = command_settings(data_dir, reads_only=reads_only)
    remote_target: Callable[[str, str], AbstractContextManager[R | L]] = opened
    local_target: Callable[[Stores, str], R | L] = local
    with server_or_store(settings, project, remote=remote_target, local=local_target) as target:
        yield target


class ServerClient:
    """A running server's API for a command group: the project's key on every request, and our JSON
    errors as the command's errors (a 400/404/422 is the user's input, anything else the server's)."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0)

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            return response.json() if response.content else None
        message = server_error_message(response)
        if response.status_code in (400, 404, 422):
            raise InputError(message)
        raise StoreError(f"server answered {response.status_code}: {message}")

    def close(self) -> None:
        self._client.close()
