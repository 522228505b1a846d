"""Blob writers on a real directory: content written in pieces becomes a blob only when committed, can be
read and checked before that, and leaves nothing behind when discarded or when the writer fails."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from convoscope.errors import StoreError
from convoscope.store.blobs import FileBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def _files(blobs: FileBlobStore) -> list[Path]:
    return sorted(path for path in blobs.root.rglob("*") if path.is_file())


def test_pieces_become_one_blob_named_by_their_hash(blobs: FileBlobStore) -> None:
    pieces = [bytes([n]) * (1000 + n) for n in range(50)]
    whole = b"".join(pieces)
    with blobs.writer() as writer:
        for piece in pieces:
            writer.write(piece)
        writer.flush()
        assert writer.path.read_bytes() == whole, "the temp file can be checked before it is a blob"
        assert writer.size == len(whole) and writer.sha256() == hashlib.sha256(whole).hexdigest()
        assert not blobs.exists(writer.sha256())
        sha = writer.commit()
    assert sha == hashlib.sha256(whole).hexdigest() and blobs.read(sha) == whole
    assert _files(blobs) == [blobs.path(sha)], "the temp file was renamed, not copied"


def test_committing_content_already_stored_keeps_one_copy(blobs: FileBlobStore) -> None:
    sha = blobs.put(b"same bytes")
    with blobs.writer() as writer:
        writer.write(b"same ")
        writer.write(b"bytes")
        assert writer.commit() == sha
    assert _files(blobs) == [blobs.path(sha)]


def test_discarded_or_failed_writers_leave_nothing(blobs: FileBlobStore) -> None:
    with blobs.writer() as writer:
        writer.write(b"refused after a check")
        writer.discard()
        with pytest.raises(StoreError, match="closed"):
            writer.write(b"more")
    with pytest.raises(RuntimeError), blobs.writer() as failing:
        failing.write(b"half of it")
        raise RuntimeError("the sender went away")
    assert _files(blobs) == []
