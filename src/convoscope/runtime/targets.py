"""Which stored calls a bulk job request names, and which of them failed: shared by the jobs that can be
queued again over many calls (``audio.analyze``, ``evals.run``), so both select and report alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from ..errors import NotFound
from ..store.base import CallFilter, CallStore
from ..store.metadata import MetadataStore

__all__ = ["PAGE_CALLS", "CallSelection", "failed_jobs", "selected_calls"]

PAGE_CALLS = 500
"""Calls read per page while a filter's selection is listed."""


class CallSelection(Protocol):
    """Calls named by id, or else those matching the filters."""

    @property
    def since(self) -> datetime | None: ...

    @property
    def agent_id(self) -> str | None: ...

    @property
    def call_ids(self) -> list[str]: ...


def selected_calls(
    store: CallStore, project_id: str, request: CallSelection, *, has_recording: bool | None = None
) -> list[str]:
    """The ids of the calls a request selects, each once; a named call that does not exist is ``NotFound``."""
    if request.call_ids:
        for call_id in request.call_ids:
            if store.get_call(project_id, call_id) is None:
                raise NotFound(f"call {call_id} not found")
        return list(dict.fromkeys(request.call_ids))
    filters = CallFilter(agent_id=request.agent_id, since=request.since, has_recording=has_recording)
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = store.list_calls(project_id, filters, limit=PAGE_CALLS, cursor=cursor)
        ids.extend(item.id for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return ids


def failed_jobs(
    meta: MetadataStore, project_id: str, call_ids: Iterable[str], kind: str
) -> list[tuple[str, str]]:
    """The calls whose ``kind`` job failed, with the error, in the order given."""
    failed: list[tuple[str, str]] = []
    for call_id in call_ids:
        for status in meta.jobs_for_call(project_id, call_id):
            if status.kind == kind and status.status == "failed":
                failed.append((call_id, status.error or "failed"))
    return failed
