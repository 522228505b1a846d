"""The narrow interface a capability's jobs are given instead of the whole server.

A handler that could reach every part of the server would tie each capability to all the others (a circle
of modules that had to be imported together). A job needs far less: the call store, the metadata store,
the blob store, the settings, and two ways to hand work on -- storing calls (which plans every
capability's follow-up jobs) and queueing jobs (which wakes the job runner). ``JobContext`` is that list;
the server's services satisfy it, and a test can satisfy it with real stores and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ..config import Settings
from ..model import Call
from ..store.base import CallStore
from ..store.blobs import BlobStore
from ..store.metadata import JobSpec, MetadataStore

__all__ = ["JobContext", "Planner"]

Planner = Callable[[str, Call], Iterable[JobSpec]]
"""(project id, a call as just stored, with its id) -> the jobs it needs."""


class JobContext(Protocol):
    """What a job may use."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> CallStore: ...

    @property
    def meta(self) -> MetadataStore: ...

    @property
    def blobs(self) -> BlobStore: ...

    def store_calls(self, project_id: str, calls: Sequence[Call], *, version: int | None = None) -> list[str]:
        """Store calls (identity assigned, newest version wins) and queue every capability's follow-ups."""
        ...

    def enqueue_jobs(self, project_id: str, jobs: Sequence[JobSpec]) -> None:
        """Queue jobs and wake the job runner."""
        ...

    def wake_ingest(self) -> None:
        """Wake the outbox worker (a new row was committed)."""
        ...
