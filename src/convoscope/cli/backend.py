"""Where CLI commands act: a running server over HTTP, or the store directly when no server holds it.

chDB lets one process open a data directory, so while ``convoscope serve`` runs, every command goes
through its HTTP API; otherwise the command takes the directory lock and opens the stores itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ..errors import AuthError, ConvoscopeError, NotFound, PayloadError, StoreError
from ._shared import server_error_message, server_or_store

if TYPE_CHECKING:
    import httpx

    from ..config import Settings
    from ..model import Call, MetricResult
    from ..redaction import Redactor
    from ..runtime.stores import Stores
    from ..store.base import CallFilter, CallPage, StoredCall

__all__ = ["Backend", "DirectBackend", "HttpBackend", "open_backend", "project_key", "server_key"]


class Backend(Protocol):
    """What the CLI needs, whichever way it reaches the store."""

    where: str

    def ingest(self, calls: Sequence[Call]) -> int:
        """Store calls (durably acknowledged); returns how many were accepted."""
        ...

    def ingest_calls(self, calls: Sequence[Call]) -> list[str]:
        """Store calls (durably acknowledged); returns their ids, in order."""
        ...

    def store_scores(self, scores: Sequence[MetricResult]) -> bool:
        """Keep scores computed by the command; False where the server computes its own instead."""
        ...

    def save_run(self, report: dict[str, Any]) -> None:
        """Keep a simulation run's result (``RunReport.to_json()``)."""
        ...

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A kept run's result; NotFound if absent."""
        ...

    def list_runs(self, *, suite: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]:
        """Kept runs, newest first, as the API lists them."""
        ...

    def list_calls(self, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        """A page of calls."""
        ...

    def get_call(self, call_id: str) -> StoredCall:
        """One call in full; NotFound if absent."""
        ...


def project_key(settings: Settings, project: str) -> str:
    """A key for ``project``: the configured one, else a local CLI key kept in the data directory.

    The credentials file is readable only by its owner; anyone who can read the data directory can read
    the data itself, so it adds no exposure.
    """
    from ..store.metadata import MetadataStore

    if settings.api_key:
        return settings.api_key
    path = settings.data_dir / "credentials" / f"{project}.key"
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        if path.exists():
            key = path.read_text().strip()
            if meta.resolve_api_key(key) is not None:
                return key
        info = meta.ensure_project(project)
        key = meta.create_api_key(info.id, name="cli")
    finally:
        meta.close()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def server_key(settings: Settings, project: str, url: str) -> str:
    """A key for ``project`` on the running server at ``url``.

    The saved CLI key is tried on the server first (one small request): checking it in the metadata
    database would import SQLAlchemy and Alembic, most of a short command's time. Only a key the server
    refuses sends the command to :func:`project_key` for a new one.
    """
    import httpx

    if settings.api_key:
        return settings.api_key
    path = settings.data_dir / "credentials" / f"{project}.key"
    saved = path.read_text().strip() if path.exists() else ""
    if saved:
        try:
            answer = httpx.get(
                f"{url}/api/v1/calls",
                params={"limit": 1},
                headers={"Authorization": f"Bearer {saved}"},
                timeout=_KEY_CHECK_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise StoreError(f"server at {url} did not answer: {exc}") from None
        if answer.status_code != 401:
            return saved
    return project_key(settings, project)


_KEY_CHECK_TIMEOUT_S = 30.0


class HttpBackend:
    """Talks to a running server."""

    def __init__(self, url: str, key: str, *, timeout_s: float = 60.0) -> None:
        import httpx

        self.where = url
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s
        )

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            return response.json()
        message = server_error_message(response)
        if response.status_code == 404:
            raise NotFound(message)
        if response.status_code == 401:
            raise AuthError(message)
        if response.status_code in (400, 413, 422):
            raise PayloadError(message)
        raise StoreError(f"server answered {response.status_code}: {message}")

    def ingest(self, calls: Sequence[Call]) -> int:
        return len(self.ingest_calls(calls))

    def ingest_calls(self, calls: Sequence[Call]) -> list[str]:
        body = orjson.dumps([c.model_dump(mode="json", exclude_none=True) for c in calls])
        result = self._check(
            self._client.post("/api/v1/calls", content=body, headers={"content-type": "application/json"})
        )
        return [str(call_id) for call_id in result["ids"]]

    def store_scores(self, scores: Sequence[MetricResult]) -> bool:
        """The server evaluates every call it stores with the same evaluators: nothing to send."""
        return False

    def save_run(self, report: dict[str, Any]) -> None:
        self._check(self._client.post("/api/v1/simulation/runs", json=report))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(self._check(self._client.get(f"/api/v1/simulation/runs/{run_id}")))

    def list_runs(self, *, suite: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"suite": suite, "agent": agent, "limit": limit}.items() if v is not None}
        return list(self._check(self._client.get("/api/v1/simulation/runs", params=params))["items"])

    def list_calls(self, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        params: dict[str, Any] = {
            "agent": filters.agent_id,
            "source": filters.source,
            "since": filters.since.isoformat() if filters.since else None,
            "until": filters.until.isoformat() if filters.until else None,
            "tag": filters.tag,
            "end_reason": filters.end_reason,
            "has_recording": filters.has_recording,
            "limit": limit,
            "cursor": cursor,
        }
        from ..store.base import CallPage

        clean = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items() if v is not None}
        return CallPage.model_validate(self._check(self._client.get("/api/v1/calls", params=clean)))

    def get_call(self, call_id: str) -> StoredCall:
        from ..store.base import StoredCall

        return StoredCall.model_validate(self._check(self._client.get(f"/api/v1/calls/{call_id}")))

    def close(self) -> None:
        self._client.close()


class DirectBackend:
    """Owns the data directory for the duration of a command."""

    def __init__(self, stores: Stores, project: str) -> None:
        self.where = str(stores.settings.data_dir)
        self._stores = stores
        self._project_id = stores.project(project).id
        self._redactor: Redactor | None = None

    def ingest(self, calls: Sequence[Call]) -> int:
        return len(self.ingest_calls(calls))

    def ingest_calls(self, calls: Sequence[Call]) -> list[str]:
        """Store calls as the server's worker would: identity assigned, then the project's redaction."""
        from ..redaction import Redactor
        from ..server.worker import assign_identity

        if self._redactor is None:  # once per command: it caches the project's setting and its detectors
            self._redactor = Redactor(self._stores.meta, self._stores.blobs)
        version = int(time.time() * 1_000_000)
        stored = [assign_identity(self._project_id, call) for call in calls]
        masked = self._redactor.calls(self._project_id, stored)
        return self._stores.store.insert_calls(self._project_id, masked, version=version)

    def store_scores(self, scores: Sequence[MetricResult]) -> bool:
        self._stores.store.insert_scores(self._project_id, list(scores))
        return True

    def save_run(self, report: dict[str, Any]) -> None:
        from ..simulate.results import RunResult

        self._stores.meta.save_run(self._project_id, RunResult.model_validate(report).model_dump(mode="json"))

    def get_run(self, run_id: str) -> dict[str, Any]:
        found = self._stores.meta.get_run(self._project_id, run_id)
        if found is None:
            raise NotFound(f"run {run_id} not found")
        return found

    def list_runs(self, *, suite: str | None, agent: str | None, limit: int) -> list[dict[str, Any]]:
        from dataclasses import asdict

        runs = self._stores.meta.list_runs(self._project_id, suite_id=suite, agent_id=agent, limit=limit)
        return [asdict(run) | {"started_at": run.started_at.isoformat()} for run in runs]

    def list_calls(self, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        return self._stores.store.list_calls(self._project_id, filters, limit=limit, cursor=cursor)

    def get_call(self, call_id: str) -> StoredCall:
        stored = self._stores.store.get_call(self._project_id, call_id)
        if stored is None:
            raise NotFound(f"call {call_id} not found")
        return stored


def open_backend(settings: Settings, *, project: str) -> AbstractContextManager[Backend]:
    """The running server if there is one, else the store itself under the directory lock."""
    return server_or_store(settings, project, remote=_http_backend, local=DirectBackend)


def _http_backend(url: str, key: str) -> AbstractContextManager[Backend]:
    return closing(HttpBackend(url, key))


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def read_documents(path: Path) -> list[Any]:
    """The call documents in a JSON or JSON-lines file; errors name the file and line."""
    from ..ingest.canonical import iter_jsonl

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConvoscopeError(f"{path}: cannot read: {exc.strerror}") from None
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or (stripped and stripped[0] == "{" and "\n{" in text.strip()):
        return list(iter_jsonl(text, name=str(path)))
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"{path}: malformed JSON: {exc}") from None
    if isinstance(document, dict) and "calls" in document and "source" not in document:
        document = document["calls"]
    return document if isinstance(document, list) else [document]
