"""``convoscope traces list|show|sessions``: the traces an LLM, RAG or voice app exported, found by what
they did rather than by id (time, service, model, errors, an attribute, text), and one as a tree.

Through the running server when one holds the data directory, else on the store itself under the
directory lock; the same filters and the same answers either way (the API's own conversion is used).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ._shared import DataDir, Project, ServerClient, api_or_store, command_group, fail, run_reporting_errors

if TYPE_CHECKING:
    from ..runtime.stores import Stores
    from ..store.trace_queries import TraceFilter

__all__ = ["app"]

app = command_group("Traces and sessions of traced apps: list, search, show.")
console = Console()


class _Local:
    """The store of the data directory, for one project (no server runs)."""

    def __init__(self, stores: Stores, project: str) -> None:
        self._store = stores.store
        self._settings = stores.settings
        self._project_id = stores.project(project).id

    def traces(self, query: TraceFilter) -> list[dict[str, Any]]:
        from ..server.api.trace_search import trace_summary
        from ..store.trace_queries import TraceQueriesMixin

        assert isinstance(self._store, TraceQueriesMixin)
        rows = self._store.search_traces(self._project_id, query)
        return [trace_summary(row).model_dump(mode="json") for row in rows]

    def sessions(self, query: TraceFilter) -> list[dict[str, Any]]:
        from ..server.api.trace_search import session_summary
        from ..store.trace_queries import TraceQueriesMixin

        assert isinstance(self._store, TraceQueriesMixin)
        rows = self._store.search_sessions(self._project_id, query)
        return [session_summary(row).model_dump(mode="json") for row in rows]

    def tree(self, trace_id: str) -> dict[str, Any]:
        from ..errors import NotFound
        from ..server.api.traces import build_tree
        from ..traces.otlp import price_table

        spans = self._store.list_spans(self._project_id, trace_id=trace_id)
        if not spans:
            raise NotFound(f"trace {trace_id} not found")
        return build_tree(spans, prices=price_table(self._settings)).model_dump(mode="json")


class _Remote(ServerClient):
    """The running server's trace API."""

    def _params(self, query: TraceFilter) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": query.limit}
        for name, value in (
            ("since", query.since.isoformat() if query.since else None),
            ("until", query.until.isoformat() if query.until else None),
            ("service", query.service),
            ("model", query.model),
            ("status", "error" if query.errors_only else None),
            ("attribute", "=".join(query.attribute) if query.attribute else None),
            ("text", query.text),
            ("conversation", query.conversation_id),
        ):
            if value is not None:
                params[name] = value
        return params

    def traces(self, query: TraceFilter) -> list[dict[str, Any]]:
        return list(self._check(self._client.get("/api/v1/traces", params=self._params(query)))["items"])

    def sessions(self, query: TraceFilter) -> list[dict[str, Any]]:
        params = self._params(query)
        params.pop("conversation", None)
        return list(self._check(self._client.get("/api/v1/sessions", params=params))["items"])

    def tree(self, trace_id: str) -> dict[str, Any]:
        return dict(self._check(self._client.get(f"/api/v1/traces/{trace_id}")))


def _target(data_dir: DataDir, project: str) -> AbstractContextManager[_Local | _Remote]:
    return api_or_store(data_dir, project, remote=_Remote, local=_Local, reads_only=True)


Since = Annotated[str | None, typer.Option(help="Only from this moment (RFC 3339, with its offset).")]
Service = Annotated[str | None, typer.Option(help="Only this service.name.")]
Model = Annotated[str | None, typer.Option(help="Only traces that called this model.")]
Errors = Annotated[bool, typer.Option("--errors", help="Only traces with a failed span.")]
Attribute = Annotated[str | None, typer.Option(help="Only traces with a span whose attribute is KEY=VALUE.")]
Text = Annotated[str | None, typer.Option(help="Only traces with this text in a span (any case).")]
Limit = Annotated[int, typer.Option(min=1, max=200, help="Most to show, newest first.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _filter(
    since: str | None,
    service: str | None,
    model: str | None,
    errors: bool,
    attribute: str | None,
    text: str | None,
    limit: int,
    conversation: str | None = None,
) -> TraceFilter:
    """The options as a query; a bad one is a usage error (exit 2) naming the option."""
    from ..store.trace_queries import TraceFilter

    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            fail(f"--since {since!r} is not an RFC 3339 date-time")
        if moment.tzinfo is None:
            fail(f"--since {since!r} needs its UTC offset (e.g. Z)")
    pair = None
    if attribute is not None:
        key, sep, value = attribute.partition("=")
        if not sep or not key:
            fail(f"--attribute {attribute!r} is not KEY=VALUE")
        pair = (key, value)
    return TraceFilter(
        since=moment,
        service=service,
        model=model,
        errors_only=errors,
        attribute=pair,
        text=text,
        conversation_id=conversation,
        limit=limit,
    )


@app.command("list")
def traces_list(
    data_dir: DataDir = None,
    project: Project = "default",
    since: Since = None,
    service: Service = None,
    model: Model = None,
    errors: Errors = False,
    attribute: Attribute = None,
    text: Text = None,
    conversation: Annotated[str | None, typer.Option(help="Only this conversation key.")] = None,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List and search traces, newest first."""
    query = _filter(since, service, model, errors, attribute, text, limit, conversation)

    def work() -> None:
        with _target(data_dir, project) as target:
            items = target.traces(query)
        if as_json:
            print(json.dumps(items, indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{len(items)} traces")
        for column in ("trace", "started", "root", "service", "models", "spans", "errors", "call"):
            table.add_column(column, overflow="fold")
        for item in items:
            table.add_row(
                item["trace_id"],
                item["started"][:19],
                item["root_name"],
                item["service"] or "",
                ", ".join(item["models"]),
                str(item["span_count"]),
                str(item["error_count"]),
                item["call_id"] or "",
            )
        console.print(table)

    run_reporting_errors(work)


@app.command("sessions")
def traces_sessions(
    data_dir: DataDir = None,
    project: Project = "default",
    since: Since = None,
    service: Service = None,
    model: Model = None,
    errors: Errors = False,
    attribute: Attribute = None,
    text: Text = None,
    limit: Limit = 20,
    as_json: AsJson = False,
) -> None:
    """List the conversations (sessions) of traced apps, latest activity first."""
    query = _filter(since, service, model, errors, attribute, text, limit)

    def work() -> None:
        with _target(data_dir, project) as target:
            items = target.sessions(query)
        if as_json:
            print(json.dumps(items, indent=2))
            return
        for item in items:
            console.print(
                f"{item['conversation_id']}  {item['trace_count']} traces, {item['span_count']} spans, "
                f"{item['error_count']} errors, last {item['ended'][:19]}  {item['call_id'] or ''}",
                highlight=False,
                soft_wrap=True,
            )

    run_reporting_errors(work)


@app.command("show")
def traces_show(
    trace_id: Annotated[str, typer.Argument(help="The trace id (32 hex digits).")],
    data_dir: DataDir = None,
    project: Project = "default",
    as_json: AsJson = False,
) -> None:
    """Show one trace as a tree: each span's name, offset, duration and status."""

    def work() -> None:
        with _target(data_dir, project) as target:
            tree = target.tree(trace_id)
        if as_json:
            print(json.dumps(tree, indent=2))
            return
        for root in tree["roots"]:
            _print_node(root, 0)

    run_reporting_errors(work)


def _print_node(node: dict[str, Any], depth: int) -> None:
    duration = "" if node["duration_ms"] is None else f" {node['duration_ms']:.0f} ms"
    status = " [red]error[/red]" if node["status_code"] == "error" else ""
    console.print(
        f"{'  ' * depth}{node['name']}  +{node['offset_ms']:.0f} ms{duration}{status}", highlight=False
    )
    for child in node["children"]:
        _print_node(child, depth + 1)
