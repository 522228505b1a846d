"""The stores of a data directory, opened together and nothing else.

This is the one place that names the concrete store classes. The server builds its services on these;
a CLI command that only reads or writes calls opens them alone, without the job handlers, evaluators and
ingest worker the server needs, so it starts in a fraction of the server's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import StoreError
from ..store.base import CallStore
from ..store.blobs import BlobStore, FileBlobStore
from ..store.clickhouse import open_clickhouse_store, url_database
from ..store.metadata import MetadataStore, ProjectInfo

__all__ = ["Stores", "open_blob_store", "open_call_store", "open_stores"]


@dataclass
class Stores:
    """The call store, the metadata store and the blob store of one data directory."""

    settings: Settings
    store: CallStore
    meta: MetadataStore
    blobs: BlobStore
    default_project: ProjectInfo

    def close(self) -> None:
        """Close the stores (chDB allows one open data directory per process)."""
        self.store.close()
        self.meta.close()
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


def open_stores(settings: Settings, *, store: CallStore | None = None) -> Stores:
    """Open the blob, metadata and call stores; seed the default project and the headless key.

    The blob store opens first: a bucket that is wrong stops start-up before anything else is opened."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = open_blob_store(settings)
    try:
        meta = MetadataStore(settings.resolved_metadata_url, claim_lease_s=settings.claim_lease_s)
    except BaseException:
        blobs.close()
        raise
    try:
        project = meta.ensure_project(settings.default_project)
        if settings.init_api_key:
            meta.seed_api_key(project.id, settings.init_api_key, name="init")
        call_store = store if store is not None else open_call_store(settings)
    except BaseException:
        meta.close()
        blobs.close()
        raise
    return Stores(settings=settings, store=call_store, meta=meta, blobs=blobs, default_project=project)
