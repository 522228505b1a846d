"""``convoscope pull <vendor>``: fetch past calls through the vendor's REST API into the project.

Each pulled call becomes the event its vendor would have sent by webhook and takes the webhook's path:
to the running server's ``POST /api/v1/ingest/{source}`` with the project's API key, or, when no server
holds the data directory, validated and committed to the same outbox under the directory lock, then
drained into the store. A replayed event changes nothing, so pulling a call the webhook already
delivered (or pulling twice) is harmless.

A pull is resumable. After every page whose events are committed, the vendor's cursor is saved in
``<data dir>/pull-state.json`` (per project and vendor); a pull that stops half-way (network, a vendor
outage, Ctrl-C) continues from the first page not committed. A finished pull saves the newest call start
it saw, and the next pull without ``--since`` asks only for calls from then on.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import orjson
import typer
from rich.console import Console

from ..errors import AuthError, ConvoscopeError, InputError, StoreError
from ._shared import DataDir, Project, server_error_message, server_or_store
from .names import PULL_VENDORS

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..config import Settings
    from ..ingest.pull import Page, Puller
    from ..runtime.stores import Stores

__all__ = ["PullState", "pull", "run_pull"]

console = Console()
err_console = Console(stderr=True)

STATE_FILE = "pull-state.json"
API_KEY_ENV = "CONVOSCOPE_PULL_API_KEY"
VENDOR_TIMEOUT_S = 60.0
SERVER_TIMEOUT_S = 60.0
SHOWN_REFUSALS = 10
"""How many refused events are listed by id at the end of a pull (all are counted)."""
REFUSAL_TEXT_CHARS = 300
"""How much of a server's non-JSON refusal is kept as the reason an event was refused."""


@dataclass
class PullState:
    """Where each vendor's pull stands, per project: a small JSON file next to the data."""

    path: Path
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PullState:
        """The saved state; an unreadable file is an error (rather than silently pulling everything)."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: cannot read the pull state ({exc}); fix or delete the file") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path}: the pull state is not a JSON object; fix or delete the file")
        return cls(path, data)

    def entry(self, project: str, source: str) -> dict[str, Any]:
        """The mutable record of one vendor's pull into one project."""
        return self.data.setdefault(project, {}).setdefault(source, {})

    def save(self) -> None:
        """Write atomically, so an interrupted write never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(partial, self.path)


class EventSink(Protocol):
    """Where pulled events go; both implementations take the webhook path."""

    where: str

    def send(self, source: str, event: Any) -> str | None:
        """Commit one event durably; the refusal message when the event is not acceptable, else None."""
        ...

    def flush(self) -> None:
        """Make committed events visible (the direct path drains its outbox)."""
        ...


class HttpSink:
    """Posts events to a running server's webhook endpoint with the project's API key."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self.where = url
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=SERVER_TIMEOUT_S
        )

    def send(self, source: str, event: Any) -> str | None:
        import httpx

        # Marks the event as fetched with the vendor key: it carries no vendor signature to check.
        from ..server.api.webhooks import PULLED_HEADER

        try:
            response = self._client.post(
                f"/api/v1/ingest/{source}",
                content=orjson.dumps(event),
                headers={"content-type": "application/json", PULLED_HEADER: "1"},
            )
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.where}: {type(exc).__name__}: {exc}") from None
        if response.status_code < 400:
            return None
        message = server_error_message(response, limit=REFUSAL_TEXT_CHARS)
        if response.status_code == 401:
            raise AuthError(f"the server refused the project's API key: {message}")
        if response.status_code in (400, 413, 422):
            return message
        raise StoreError(f"{self.where} answered {response.status_code}: {message}")

    def flush(self) -> None:
        """Nothing to do: the server's worker stores what it accepted."""

    def close(self) -> None:
        self._client.close()


class DirectSink:
    """Validates and commits events to the outbox itself, then drains it, under the directory lock."""

    def __init__(self, stores: Stores, project: str) -> None:
        from ..server.services import compose_services

        self.where = str(stores.settings.data_dir)
        self._services = compose_services(stores)
        self._project_id = self._services.meta.ensure_project(project).id  # the services opened it

    def send(self, source: str, event: Any) -> str | None:
        from ..ingest.sources import get_source
        from ..server.api.webhooks import accept_event

        body = orjson.dumps(event)
        try:
            # The endpoint's own checks, bar the signature: the event comes from the vendor's API,
            # fetched with the user's vendor key, not from an unauthenticated sender.
            accept_event(
                self._services,
                self._project_id,
                get_source(source),
                {},
                body,
                now=datetime.now(UTC),
                verify_signature=False,
            )
        except InputError as exc:
            return str(exc)
        return None

    def flush(self) -> None:
        while self._services.worker.drain_once():
            pass


def open_sink(settings: Settings, project: str) -> AbstractContextManager[EventSink]:
    """The running server if there is one, else the store itself under the directory lock."""
    return server_or_store(settings, project, remote=_http_sink, local=DirectSink)


def _http_sink(url: str, key: str) -> AbstractContextManager[EventSink]:
    return closing(HttpSink(url, key))


@dataclass
class PullResult:
    """What one pull did."""

    sent: int = 0
    skipped: int = 0
    pages: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    resumed: bool = False


def _external_id(source: str, event: Any) -> str:
    from ..ingest.sources import get_source

    try:
        return get_source(source).identify(event).external_id
    except ConvoscopeError:
        return "(no id)"


def _start(
    entry: dict[str, Any], since: datetime | None, base_url: str
) -> tuple[datetime | None, str | None]:
    """Where this pull begins: an interrupted run of the same query resumes at its cursor."""
    from ..ingest.pull import parse_since

    if entry.get("base_url") not in (None, base_url):
        entry.clear()  # another API root: its cursor and watermark mean nothing here
    entry["base_url"] = base_url
    cursor = entry.get("cursor")
    run_since = entry.get("run_since")
    if since is None:
        if cursor:
            return (parse_since(run_since) if run_since else None), cursor
        saved = entry.get("since")
        since = parse_since(saved) if saved else None
    elif cursor and run_since == since.isoformat():
        return since, cursor
    entry.update(cursor=None, run_since=since.isoformat() if since else None, run_newest=None)
    return since, None


def _later(saved: str | None, seen: datetime | None) -> str | None:
    """The later of a saved ISO time and a newly seen one, as ISO."""
    from ..ingest.pull import parse_since

    if seen is None:
        return saved
    return max(parse_since(saved), seen).isoformat() if saved else seen.isoformat()


def run_pull(
    puller: Puller,
    sink: EventSink,
    state: PullState,
    *,
    project: str,
    base_url: str,
    since: datetime | None,
    progress: Progress | None = None,
) -> PullResult:
    """Page through the vendor, committing each page before its cursor is saved."""
    from ..ingest.pull import parse_since

    source = puller.source
    entry = state.entry(project, source)
    since, cursor = _start(entry, since, base_url)
    result = PullResult(resumed=cursor is not None)
    state.save()
    task = progress.add_task(f"pull {source} → {sink.where}", total=None) if progress else None
    while True:
        page: Page = puller.page(since=since, cursor=cursor)
        for event in page.events:
            refusal = sink.send(source, event)
            if refusal is None:
                result.sent += 1
            else:
                result.refused.append((_external_id(source, event), refusal))
        sink.flush()
        result.pages += 1
        result.skipped += page.skipped
        if progress is not None and task is not None:
            progress.update(task, advance=len(page.events) + page.skipped, total=page.total)
        entry["run_newest"] = _later(entry.get("run_newest"), page.newest)
        cursor = page.cursor
        if cursor is None:
            newest = entry["run_newest"]
            entry["since"] = _later(entry.get("since"), parse_since(newest) if newest else None)
            entry.update(
                cursor=None, run_since=None, run_newest=None, finished_at=datetime.now(UTC).isoformat()
            )
            state.save()
            return result
        entry["cursor"] = cursor
        state.save()


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),  # a pulse while the vendor gives no total
        TextColumn("{task.completed} calls"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not sys.stderr.isatty(),
    )


def pull(
    vendor: Annotated[str, typer.Argument(help=f"The platform to pull from: {', '.join(PULL_VENDORS)}.")],
    since: Annotated[
        str | None,
        typer.Option(
            help="Only calls started on or after this ISO date/time (UTC); default: since the last pull."
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The vendor API root (default: its public API).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar=API_KEY_ENV, help=f"The vendor API key (or ${API_KEY_ENV})."),
    ] = None,
    page_size: Annotated[int | None, typer.Option(min=1, help="Calls per vendor API page.")] = None,
    audio: Annotated[
        bool, typer.Option(help="Also fetch audio the vendor serves apart from the call (ElevenLabs).")
    ] = True,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Fetch past calls from a vendor's API (paginated, resumable) into the project."""
    import httpx

    from ..ingest.pull import get_puller, parse_since
    from .locate import command_settings

    state: PullState | None = None
    try:
        spec = get_puller(vendor)
        if not api_key:
            raise AuthError(f"no {vendor} API key: pass --api-key or set {API_KEY_ENV}")
        lower = parse_since(since) if since else None
        settings = command_settings(data_dir, reads_only=False)
        root = (base_url or spec.base_url).rstrip("/")
        state = PullState.load(settings.data_dir / STATE_FILE)
        options: dict[str, Any] = {"page_size": page_size} if page_size else {}
        if spec.audio:
            options["with_audio"] = audio
        with (
            httpx.Client(base_url=root, headers=spec.auth_headers(api_key), timeout=VENDOR_TIMEOUT_S) as http,
            open_sink(settings, project) as sink,
            _progress() as progress,
        ):
            result = run_pull(
                spec.factory(http, **options),
                sink,
                state,
                project=project,
                base_url=root,
                since=lower,
                progress=progress,
            )
    except (ConvoscopeError, KeyboardInterrupt) as exc:
        err_console.print(f"[red]error:[/red] {exc or 'interrupted'}", highlight=False, soft_wrap=True)
        if state is not None and state.entry(project, vendor).get("cursor"):
            err_console.print(
                "the pull stopped part-way; run the same command again to resume", highlight=False
            )
        raise typer.Exit(code=1) from None
    resumed = " (resumed)" if result.resumed else ""
    console.print(
        f"pulled {result.sent} {vendor} calls into project {project}{resumed}: "
        f"{result.pages} pages, {result.skipped} older calls skipped, {len(result.refused)} refused",
        highlight=False,
    )
    for external_id, message in result.refused[:SHOWN_REFUSALS]:
        err_console.print(f"  refused {external_id}: {message}", highlight=False, soft_wrap=True)
    if result.refused:
        raise typer.Exit(code=1)
