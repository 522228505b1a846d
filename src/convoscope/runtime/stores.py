"""The stores of a data directory, opened together and nothing else.

This is the one place that names the concrete store classes. The server builds its services on these;
a CLI command that only reads or writes calls opens them alone, without the job handlers, evaluators and
ingest worker the server needs, so it starts in a fraction of the server's time.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..store.base import CallStore
from ..store.blobs import FileBlobStore
from ..store.clickhouse import open_clickhouse_store
from ..store.metadata import MetadataStore, ProjectInfo

__all__ = ["Stores", "open_call_store", "open_stores"]


@dataclass
class Stores:
    """The call store, the metadata store and the blob store of one data directory."""

    settings: Settings
    store: CallStore
    meta: MetadataStore
    blobs: FileBlobStore
    default_project: ProjectInfo

    def close(self) -> None:
        """Close the stores (chDB allows one open data directory per process)."""
        self.store.close()
        self.meta.close()


def open_call_store(settings: Settings, *, database: str = "convoscope") -> CallStore:
    """The ClickHouse store the settings name: a server URL, else chDB in the data directory."""
    if settings.clickhouse_url:
        return open_clickhouse_store(
            url=settings.clickhouse_url,
            database=database,
            query_max_threads=settings.query_max_threads,
            system_log_ttl_days=settings.system_log_ttl_days,
        )
    return open_clickhouse_store(
        path=settings.data_dir / "chdb",
        database=database,
        query_max_threads=settings.query_max_threads,
        system_log_ttl_days=settings.system_log_ttl_days,
        merge_threads=settings.merge_threads,
        max_memory_bytes=settings.max_memory_bytes,
    )


def open_stores(settings: Settings, *, store: CallStore | None = None) -> Stores:
    """Open the metadata, blob and call stores; seed the default project and the headless key."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    meta = MetadataStore(settings.resolved_metadata_url)
    try:
        project = meta.ensure_project(settings.default_project)
        if settings.init_api_key:
            meta.seed_api_key(project.id, settings.init_api_key, name="init")
        call_store = store if store is not None else open_call_store(settings)
    except BaseException:
        meta.close()
        raise
    blobs = FileBlobStore(settings.data_dir / "blobs")
    return Stores(settings=settings, store=call_store, meta=meta, blobs=blobs, default_project=project)
