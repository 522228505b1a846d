"""``convoscope ingest failed`` and ``convoscope ingest retry ID``: the ingest dead letters.

A request that was acknowledged but could not be stored after its retries is kept with its reason
(status ``failed``). These commands list them and put one back in the queue once its cause is fixed,
through the running server's API when one holds the data directory, else on the stores themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from ..errors import NotFound, StoreError
from ._shared import DataDir, Project, run_reporting_errors, server_error_message, server_or_store

if TYPE_CHECKING:
    import httpx

    from ..runtime.stores import Stores

__all__ = ["failed_command", "retry_command"]

_PAGE = 1000
"""Rows per request while listing (the API's largest page)."""


class _DeadLetters(Protocol):
    def failed(self, limit: int) -> list[dict[str, Any]]: ...

    def retry(self, ingest_id: int) -> dict[str, Any]: ...


class _Remote:
    """Through the server's ``/api/v1/ingest`` routes."""

    def __init__(self, url: str, key: str) -> None:
        import httpx

        self._client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0)

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code == 404:
            raise NotFound(server_error_message(response))
        if response.status_code >= 400:
            raise StoreError(f"server answered {response.status_code}: {server_error_message(response)}")
        return response.json()

    def failed(self, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        before: int | None = None
        while len(items) < limit:
            params: dict[str, Any] = {"status": "failed", "limit": min(_PAGE, limit - len(items))}
            if before is not None:
                params["before"] = before
            page = self._json(self._client.get("/api/v1/ingest", params=params))
            items.extend(page["items"])
            before = page["next_before"]
            if before is None:
                break
        return items

    def retry(self, ingest_id: int) -> dict[str, Any]:
        return dict(self._json(self._client.post(f"/api/v1/ingest/{ingest_id}/retry")))

    def close(self) -> None:
        self._client.close()


class _Local:
    """On the metadata store itself, while no server runs (the next server start stores retried rows)."""

    def __init__(self, stores: Stores, project: str) -> None:
        self._meta = stores.meta
        self._project_id = stores.project(project).id

    def failed(self, limit: int) -> list[dict[str, Any]]:
        rows = self._meta.list_outbox(self._project_id, status="failed", limit=limit)
        return [_as_dict(row) for row in rows]

    def retry(self, ingest_id: int) -> dict[str, Any]:
        return _as_dict(self._meta.retry_failed(self._project_id, ingest_id))


def _as_dict(row: Any) -> dict[str, Any]:
    """The row as the API answers it, so both paths print the same fields."""
    from ..server.api.ingest import ingest_status_of

    return ingest_status_of(row).model_dump(mode="json")


def _remote(url: str, key: str) -> AbstractContextManager[_DeadLetters]:
    return closing(_Remote(url, key))


def _open(data_dir: Path | None, project: str, *, reads_only: bool) -> AbstractContextManager[_DeadLetters]:
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=reads_only)
    return server_or_store(settings, project, remote=_remote, local=_Local)


def _lines(items: list[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield (
            f"{item['ingest_id']}\t{item['kind']}\treceived {item['received_at']}\t"
            f"{item['attempts']} attempts\t{item['error']}"
        )


def failed_command(
    data_dir: DataDir = None,
    project: Project = "default",
    limit: Annotated[int, typer.Option(min=1, help="Most dead letters to list, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List ingest requests that were acknowledged but could not be stored, with the reason."""

    def work() -> None:
        with _open(data_dir, project, reads_only=True) as target:
            items = target.failed(limit)
        if as_json:
            import json

            print(json.dumps(items, indent=2))
            return
        if not items:
            print(f"no failed ingest requests in project {project}")
            return
        for line in _lines(items):
            print(line)
        print(f"{len(items)} failed; `convoscope ingest retry ID` queues one again")

    run_reporting_errors(work)


def retry_command(
    ingest_id: Annotated[int, typer.Argument(help="The ingest id (from `convoscope ingest failed`).")],
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Queue a failed ingest request again (after its cause was fixed)."""

    def work() -> None:
        with _open(data_dir, project, reads_only=True) as target:
            item = target.retry(ingest_id)
        print(f"ingest {item['ingest_id']} is {item['status']}")

    run_reporting_errors(work)
