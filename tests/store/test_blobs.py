"""The file blob store on a real directory: content addressing, atomic writes, ranges, bad ids."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from convoscope.errors import InputError, NotFound
from convoscope.store.blobs import BlobStore, FileBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_returns_sha256_and_stores_under_fanout_path(blobs: FileBlobStore) -> None:
    data = b"RIFF....WAVEfmt " + bytes(range(256)) * 40
    sha = blobs.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert blobs.path(sha) == blobs.root / sha[:2] / sha[2:4] / sha
    assert blobs.path(sha).read_bytes() == data
    assert blobs.read(sha) == data
    assert blobs.exists(sha)
    assert blobs.size(sha) == len(data)
    with blobs.open(sha) as handle:
        assert handle.read() == data


def test_put_is_idempotent_for_identical_content(blobs: FileBlobStore) -> None:
    sha = blobs.put(b"same bytes")
    first = blobs.path(sha).stat()
    assert blobs.put(b"same bytes") == sha
    again = blobs.path(sha).stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert [p.name for p in blobs.root.rglob("*") if p.is_file()] == [sha]


def test_no_temporary_files_are_left_behind(blobs: FileBlobStore) -> None:
    blobs.put(b"one")
    blobs.put_stream([b"two", b" parts"])
    assert list((blobs.root / ".tmp").iterdir()) == []


def test_put_stream_matches_put(blobs: FileBlobStore) -> None:
    chunks = [os.urandom(100_000) for _ in range(5)]
    sha = blobs.put_stream(iter(chunks))
    assert sha == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert blobs.read(sha) == b"".join(chunks)
    assert blobs.put(b"".join(chunks)) == sha
    assert blobs.put_stream(chunks) == sha


def test_empty_content_is_a_blob_too(blobs: FileBlobStore) -> None:
    sha = blobs.put(b"")
    assert sha == hashlib.sha256(b"").hexdigest()
    assert blobs.read(sha) == b""
    assert blobs.size(sha) == 0


def test_read_range_is_end_exclusive_and_clamped(blobs: FileBlobStore) -> None:
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


def test_missing_blob_is_not_found(blobs: FileBlobStore) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not blobs.exists(sha)
    for read in (blobs.read, blobs.size, blobs.open):
        with pytest.raises(NotFound):
            read(sha)
    with pytest.raises(NotFound):
        blobs.read_range(sha, 0, 1)
    assert blobs.delete(sha) is False


def test_delete_removes_the_content(blobs: FileBlobStore) -> None:
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
def test_malformed_sha_is_rejected_before_touching_the_disk(blobs: FileBlobStore, bad: str) -> None:
    for call in (blobs.read, blobs.exists, blobs.size, blobs.delete, blobs.path, blobs.open):
        with pytest.raises(InputError):
            call(bad)
    with pytest.raises(InputError):
        blobs.read_range(bad, 0, 1)


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


def test_file_blob_store_satisfies_the_protocol(blobs: FileBlobStore) -> None:
    store: BlobStore = blobs
    assert store.read(store.put(b"x")) == b"x"
