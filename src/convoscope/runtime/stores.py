"""The stores of a data directory, opened together and nothing else.

This is the one place that names the concrete store classes. The server builds its services on these;
a CLI command that only reads or writes calls opens them alone, without the job handlers, evaluators and
ingest worker the server needs, so it starts in a fraction of the server's time. Such a command may also
leave the metadata store closed until it needs more than its project's id (:meth:`Stores.project`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import StoreError
from ..store.base import CallStore
from ..store.blobs import BlobStore, FileBlobStore
from ..store.clickhouse import open_clickhouse_store, url_database
from ..store.project_peek import ProjectInfo, peek_project

if TYPE_CHECKING:
    from ..store.metadata import MetadataStore

__all__ = ["Stores", "open_blob_store", "open_call_store", "open_stores"]


class Stores:
    """The call store, the metadata store and the blob store of one data directory.

    The metadata store opens on first use (at once when :func:`open_stores` is asked to open eagerly, as
    the server does, so a wrong metadata URL stops its start-up). Opening it ensures the default project
    and seeds the headless key, as a first start must.
    """

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        blobs: BlobStore,
        open_meta: Callable[[], MetadataStore],
        *,
        opened: tuple[MetadataStore, ProjectInfo] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self._open_meta = open_meta
        self._opened_meta = opened
        self._lock = threading.Lock()

    @property
    def meta(self) -> MetadataStore:
        """The metadata store, opened (and seeded) now if this is its first use."""
        return self._opened()[0]

    @property
    def meta_opened(self) -> bool:
        """Whether the metadata store has been opened yet (a CLI read may never need it)."""
        return self._opened_meta is not None

    @property
    def default_project(self) -> ProjectInfo:
        """The project the settings name as the default, created on the metadata store's first open."""
        return self._opened()[1]

    def _opened(self) -> tuple[MetadataStore, ProjectInfo]:
        with self._lock:
            if self._opened_meta is None:
                meta = self._open_meta()
                try:
                    self._opened_meta = (meta, _seed(meta, self.settings))
                except BaseException:
                    meta.close()
                    raise
            return self._opened_meta

    def project(self, name: str) -> ProjectInfo:
        """The project called ``name``, created if it does not exist.

        While the metadata store is still closed and is the embedded SQLite file, an existing project is
        read from that file directly (:func:`~convoscope.store.project_peek.peek_project`); anything else
        opens the store."""
        if self._opened_meta is None and self.settings.metadata_url is None:
            found = peek_project(self.settings.data_dir / "metadata.db", name)
            if found is not None:
                return found
        return self.meta.ensure_project(name)

    def close(self) -> None:
        """Close the stores (chDB allows one open data directory per process)."""
        self.store.close()
        with self._lock:
            if self._opened_meta is not None:
                self._opened_meta[0].close()
        self.blobs.close()


def open_blob_store(settings: Settings) -> BlobStore:
    """The bucket ``blob_url`` names, checked now so a wrong one stops start-up; else the data directory.

    A failure names the setting to fix: ``CONVOSCOPE_S3_ENDPOINT_URL`` when a configured endpoint does
    not answer at all, ``CONVOSCOPE_BLOB_URL`` for everything else (no such bucket, no rights, no boto3).
    """
    if not settings.blob_url:
        return FileBlobStore(settings.data_dir / "blobs")
    from ..store.s3blobs import S3BlobStore, S3Unreachable

    parts = urlsplit(settings.blob_url)
    try:
        return S3BlobStore(
            parts.netloc,
            parts.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            addressing_style=settings.s3_addressing_style,
            spool_dir=settings.data_dir / "spool",
        )
    except S3Unreachable as exc:
        setting = "CONVOSCOPE_S3_ENDPOINT_URL" if settings.s3_endpoint_url else "CONVOSCOPE_BLOB_URL"
        raise StoreError(f"{setting}: {exc}") from None
    except StoreError as exc:
        raise StoreError(f"CONVOSCOPE_BLOB_URL: {exc}") from None


def open_call_store(settings: Settings, *, database: str = "convoscope") -> CallStore:
    """The ClickHouse store the settings name: a server URL, else chDB in the data directory.

    A database in the URL's path (``http://host:8123/db``) is the store's. A server that cannot be used
    stops start-up with an error that names the setting to fix.
    """
    if settings.clickhouse_url:
        try:
            return open_clickhouse_store(
                url=settings.clickhouse_url,
                database=url_database(settings.clickhouse_url) or database,
                query_max_threads=settings.query_max_threads,
                system_log_ttl_days=settings.system_log_ttl_days,
                cluster=settings.clickhouse_cluster,
            )
        except StoreError as exc:
            raise StoreError(f"CONVOSCOPE_CLICKHOUSE_URL: {exc}") from exc
    return open_clickhouse_store(
        path=settings.data_dir / "chdb",
        database=database,
        query_max_threads=settings.query_max_threads,
        system_log_ttl_days=settings.system_log_ttl_days,
        merge_threads=settings.merge_threads,
        max_memory_bytes=settings.max_memory_bytes,
    )


def _seed(meta: MetadataStore, settings: Settings) -> ProjectInfo:
    """What a first start must find: the default project, and the headless key when one is configured."""
    project = meta.ensure_project(settings.default_project)
    if settings.init_api_key:
        meta.seed_api_key(project.id, settings.init_api_key, name="init")
    return project


def open_stores(settings: Settings, *, store: CallStore | None = None, lazy_meta: bool = False) -> Stores:
    """Open the blob, metadata and call stores; seed the default project and the headless key.

    The blob store opens first: a bucket that is wrong stops start-up before anything else is opened.
    With ``lazy_meta`` the metadata store (and its seeding) waits for its first use."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = open_blob_store(settings)

    def open_meta() -> MetadataStore:
        from ..store.metadata import MetadataStore  # SQLAlchemy: imported only when it is opened

        return MetadataStore(settings.resolved_metadata_url, claim_lease_s=settings.claim_lease_s)

    try:
        if lazy_meta:
            return Stores(
                settings, store if store is not None else open_call_store(settings), blobs, open_meta
            )
        meta = open_meta()
    except BaseException:
        blobs.close()
        raise
    try:
        project = _seed(meta, settings)
        call_store = store if store is not None else open_call_store(settings)
    except BaseException:
        meta.close()
        blobs.close()
        raise
    return Stores(settings, call_store, blobs, open_meta, opened=(meta, project))
