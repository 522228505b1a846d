"""Blob stores: content addressing, ranges, streaming reads and bad ids, on a real directory and on a real
S3 API server (every test taking ``blobs`` runs on both), then what is particular to each layout."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from convoscope.errors import InputError, NotFound
from convoscope.store.blobs import BlobStore, FileBlobStore
from s3server import S3Server


@pytest.fixture(params=["file", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """The same tests over the filesystem and over S3 (a bucket of the test's own)."""
    store: BlobStore
    if request.param == "file":
        store = FileBlobStore(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        store = server.store(tmp_path / "spool")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def file_blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_returns_sha256_and_reads_back(blobs: BlobStore) -> None:
    data = b"RIFF....WAVEfmt " + bytes(range(256)) * 40
    sha = blobs.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert blobs.read(sha) == data
    assert blobs.exists(sha)
    assert blobs.size(sha) == len(data)
    with blobs.open(sha) as handle:
        assert handle.read() == data


def test_put_is_idempotent_for_identical_content(blobs: BlobStore) -> None:
    sha = blobs.put(b"same bytes")
    assert blobs.put(b"same bytes") == sha
    assert blobs.put_stream([b"same ", b"bytes"]) == sha
    assert blobs.read(sha) == b"same bytes"


def test_put_stream_matches_put(blobs: BlobStore) -> None:
    chunks = [os.urandom(100_000) for _ in range(5)]
    sha = blobs.put_stream(iter(chunks))
    assert sha == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert blobs.read(sha) == b"".join(chunks)
    assert blobs.put(b"".join(chunks)) == sha
    assert blobs.put_stream(chunks) == sha


def test_empty_content_is_a_blob_too(blobs: BlobStore) -> None:
    sha = blobs.put(b"")
    assert sha == hashlib.sha256(b"").hexdigest()
    assert blobs.read(sha) == b""
    assert blobs.size(sha) == 0
    assert blobs.read_range(sha, 0, 10) == b""
    with blobs.open(sha) as handle:
        assert handle.read() == b""


def test_read_range_is_end_exclusive_and_clamped(blobs: BlobStore) -> None:
    data = bytes(range(100))
    sha = blobs.put(data)
    assert blobs.read_range(sha, 0, 10) == data[:10]
    assert blobs.read_range(sha, 90, 100) == data[90:]
    assert blobs.read_range(sha, 95, 1000) == data[95:]
    assert blobs.read_range(sha, 0, len(data)) == data
    assert blobs.read_range(sha, 10, 10) == b""
    assert blobs.read_range(sha, 200, 300) == b""
    with pytest.raises(InputError):
        blobs.read_range(sha, -1, 5)
    with pytest.raises(InputError):
        blobs.read_range(sha, 6, 5)


def test_open_seeks_like_a_file(blobs: BlobStore) -> None:
    """Players seek and decoders read a header first, so the reader must seek and read in any order."""
    data = os.urandom(3 << 20)
    sha = blobs.put(data)
    with blobs.open(sha) as handle:
        assert handle.seekable()
        assert handle.read(44) == data[:44]
        handle.seek(2_500_000)
        assert handle.read(100) == data[2_500_000:2_500_100]
        assert handle.tell() == 2_500_100
        handle.seek(-10, os.SEEK_END)
        assert handle.read() == data[-10:]
        handle.seek(1000)
        assert handle.read(1 << 21) == data[1000 : 1000 + (1 << 21)]
        handle.seek(len(data) + 5)
        assert handle.read(10) == b""


def test_missing_blob_is_not_found(blobs: BlobStore) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not blobs.exists(sha)
    for read in (blobs.read, blobs.size, blobs.open):
        with pytest.raises(NotFound):
            read(sha)
    with pytest.raises(NotFound):
        blobs.read_range(sha, 0, 1)
    with pytest.raises(NotFound):
        blobs.read_range(sha, 0, 0)
    assert blobs.delete(sha) is False


def test_delete_removes_the_content(blobs: BlobStore) -> None:
    sha = blobs.put(b"to be deleted")
    assert blobs.delete(sha) is True
    assert not blobs.exists(sha)
    assert blobs.delete(sha) is False
    assert blobs.put(b"to be deleted") == sha
    assert blobs.read(sha) == b"to be deleted"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../../etc/passwd",
        "ab/../../../../etc/passwd",
        "/" + "a" * 63,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "a" * 62 + "/.",
        "a" * 63 + "\n",
        "a" * 63 + "\x00",
    ],
)
def test_malformed_sha_is_rejected_before_touching_the_store(blobs: BlobStore, bad: str) -> None:
    for call in (blobs.read, blobs.exists, blobs.size, blobs.delete, blobs.open):
        with pytest.raises(InputError):
            call(bad)
    with pytest.raises(InputError):
        blobs.read_range(bad, 0, 1)


def test_ping_says_where_the_blobs_are(blobs: BlobStore) -> None:
    assert blobs.ping()


def test_file_blobs_live_under_a_fanout_path(file_blobs: FileBlobStore) -> None:
    data = b"RIFF....WAVEfmt " + bytes(range(256)) * 40
    sha = file_blobs.put(data)
    assert file_blobs.path(sha) == file_blobs.root / sha[:2] / sha[2:4] / sha
    assert file_blobs.path(sha).read_bytes() == data
    with pytest.raises(InputError):
        file_blobs.path("../../etc/passwd")


def test_file_put_of_stored_content_writes_nothing(file_blobs: FileBlobStore) -> None:
    sha = file_blobs.put(b"same bytes")
    first = file_blobs.path(sha).stat()
    assert file_blobs.put(b"same bytes") == sha
    again = file_blobs.path(sha).stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert [p.name for p in file_blobs.root.rglob("*") if p.is_file()] == [sha]


def test_no_temporary_files_are_left_behind(file_blobs: FileBlobStore) -> None:
    file_blobs.put(b"one")
    file_blobs.put_stream([b"two", b" parts"])
    file_blobs.ping()
    assert list((file_blobs.root / ".tmp").iterdir()) == []


def test_stale_temporary_files_are_cleaned_on_open(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    FileBlobStore(root)
    stale = root / ".tmp" / "dead-writer.tmp"
    fresh = root / ".tmp" / "live-writer.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    FileBlobStore(root)
    assert not stale.exists()
    assert fresh.exists()


def test_blobs_survive_reopening(tmp_path: Path) -> None:
    sha = FileBlobStore(tmp_path / "b").put(b"persistent")
    assert FileBlobStore(tmp_path / "b").read(sha) == b"persistent"
