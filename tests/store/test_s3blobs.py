"""The S3 blob store against a real S3 API server on loopback: where objects go, how requests are
addressed (path-style and virtual-hosted), and what start-up says when the bucket or endpoint is wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from convoscope.config import Settings
from convoscope.errors import StoreError
from convoscope.runtime.stores import open_blob_store, open_stores
from convoscope.store.s3blobs import S3BlobStore
from s3server import S3Server, free_port


def _record(store: S3BlobStore) -> list[tuple[str, str]]:
    """(method, URL) of every request the store's client sends from now on, from the client's own hooks."""
    sent: list[tuple[str, str]] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append((request.method, request.url))

    store.client.meta.events.register("before-send.s3", before_send, unique_id="test-record")
    return sent


def test_objects_are_named_like_the_files_under_the_prefix(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_server.store(tmp_path / "spool", prefix="/tenant-a/recordings/")
    try:
        sha = store.put(b"a recording")
        assert store.key(sha) == f"tenant-a/recordings/{sha[:2]}/{sha[2:4]}/{sha}"
        assert s3_server.keys(store.bucket) == [store.key(sha)]
        assert s3_server.object(store.bucket, store.key(sha)) == b"a recording"
        assert store.ping() == {
            "bucket": store.bucket,
            "prefix": "tenant-a/recordings",
            "endpoint": s3_server.url,
        }
    finally:
        store.close()


def test_storing_stored_content_again_uploads_nothing(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_server.store(tmp_path / "spool")
    try:
        sha = store.put(b"same bytes")
        sent = _record(store)
        assert store.put(b"same bytes") == sha
        assert store.put_stream([b"same", b" bytes"]) == sha
        assert [method for method, _ in sent] == ["HEAD", "HEAD"]
    finally:
        store.close()


def test_path_style_puts_the_bucket_in_the_path(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_server.store(tmp_path / "spool", addressing_style="path")
    try:
        sent = _record(store)
        sha = store.put(b"path style")
        assert store.read_range(sha, 5, 100) == b"style"
        assert sent and all(url.startswith(f"{s3_server.url}/{store.bucket}/recordings/") for _, url in sent)
    finally:
        store.close()


def test_virtual_hosted_style_puts_the_bucket_in_the_host(s3_server: S3Server, tmp_path: Path) -> None:
    """``bucket.localhost`` does not resolve here, so the requests go through the server as an HTTP proxy
    (the client's own proxy support): the request line still carries the virtual-hosted URL, and the
    server finds the bucket in the host name alone."""
    store = s3_server.store(
        tmp_path / "spool", addressing_style="virtual", proxies={"http": s3_server.address}
    )
    try:
        sent = _record(store)
        sha = store.put(b"virtual hosted")
        assert store.read(sha) == b"virtual hosted"
        with store.open(sha) as handle:
            handle.seek(8)
            assert handle.read() == b"hosted"
        assert store.delete(sha) and not store.exists(sha)
        host = f"http://{store.bucket}.localhost:{s3_server.port}/"
        assert sent and all(url.startswith(f"{host}recordings/") for _, url in sent), sent
    finally:
        store.close()


def _settings(tmp_path: Path, **given: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **given)


def test_a_missing_bucket_stops_start_up_naming_the_setting(s3_server: S3Server, tmp_path: Path) -> None:
    settings = _settings(tmp_path, blob_url="s3://no-such-bucket/rec", s3_endpoint_url=s3_server.url)
    with pytest.raises(StoreError) as caught:
        open_stores(settings)
    assert str(caught.value) == (
        f"CONVOSCOPE_BLOB_URL: bucket 'no-such-bucket' does not exist at {s3_server.url}"
    )
    assert not (tmp_path / "data" / "metadata.db").exists(), "nothing else was opened"


def test_an_unreachable_endpoint_stops_start_up_naming_the_setting(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """(``s3_server`` for the credentials it puts in the environment: without them the client stops
    before it connects.)"""
    closed = f"http://127.0.0.1:{free_port()}"
    settings = _settings(tmp_path, blob_url="s3://recordings", s3_endpoint_url=closed)
    with pytest.raises(StoreError, match=rf"^CONVOSCOPE_S3_ENDPOINT_URL: cannot reach {closed} "):
        open_blob_store(settings)


def test_the_settings_choose_the_store(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.bucket()
    settings = _settings(
        tmp_path,
        blob_url=f"s3://{bucket}/calls/audio",
        s3_endpoint_url=s3_server.url,
        s3_region="eu-west-1",
        s3_addressing_style="path",
    )
    store = open_blob_store(settings)
    try:
        assert isinstance(store, S3BlobStore)
        sha = store.put(b"chosen")
        assert s3_server.keys(bucket) == [f"calls/audio/{sha[:2]}/{sha[2:4]}/{sha}"]
        assert store.client.meta.region_name == "eu-west-1"
        assert store.client.meta.config.s3 == {"addressing_style": "path"}
        assert sha == hashlib.sha256(b"chosen").hexdigest()
        assert store.spool_dir == tmp_path / "data" / "spool"
    finally:
        store.close()
    assert not (tmp_path / "data" / "blobs").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [("blob_url", "gs://bucket"), ("blob_url", "s3://"), ("s3_endpoint_url", "localhost:9000")],
)
def test_malformed_settings_are_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        _settings(tmp_path, **{name: value})


def test_unknown_addressing_style_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="s3_addressing_style"):
        _settings(tmp_path, s3_addressing_style="dns")
