"""Blob writers on a real directory and on a real S3 API server: content written in pieces becomes a blob
only when committed, can be read and checked before that, and leaves nothing behind when discarded or
when the writer fails."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from convoscope.errors import StoreError
from convoscope.store.blobs import BlobStore, FileBlobStore
from s3server import S3Server


@dataclass
class Backend:
    blobs: BlobStore
    everything: Callable[[], list[str]]
    """Every name the store holds or spools, blobs and temporary files alike."""
    stored_as: Callable[[str], str]
    """The name blob ``sha`` is stored under."""


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "file":
        files = FileBlobStore(tmp_path / "blobs")
        yield Backend(
            files,
            lambda: sorted(str(p) for p in files.root.rglob("*") if p.is_file()),
            lambda sha: str(files.path(sha)),
        )
        return
    server: S3Server = request.getfixturevalue("s3_server")
    s3 = server.store(tmp_path / "spool")

    def everything() -> list[str]:
        spooled = sorted(str(p) for p in s3.spool_dir.rglob("*") if p.is_file())
        return spooled + [f"s3:{key}" for key in server.keys(s3.bucket)]

    try:
        yield Backend(s3, everything, lambda sha: f"s3:{s3.key(sha)}")
    finally:
        s3.close()


def test_pieces_become_one_blob_named_by_their_hash(backend: Backend) -> None:
    blobs = backend.blobs
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
    assert backend.everything() == [backend.stored_as(sha)], "nothing but the blob remains"


def test_committing_content_already_stored_keeps_one_copy(backend: Backend) -> None:
    sha = backend.blobs.put(b"same bytes")
    with backend.blobs.writer() as writer:
        writer.write(b"same ")
        writer.write(b"bytes")
        assert writer.commit() == sha
    assert backend.everything() == [backend.stored_as(sha)]


def test_discarded_or_failed_writers_leave_nothing(backend: Backend) -> None:
    with backend.blobs.writer() as writer:
        writer.write(b"refused after a check")
        writer.discard()
        with pytest.raises(StoreError, match="closed"):
            writer.write(b"more")
    with pytest.raises(RuntimeError), backend.blobs.writer() as failing:
        failing.write(b"half of it")
        raise RuntimeError("the sender went away")
    assert backend.everything() == []


def test_large_content_is_uploaded_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    """Past the multipart threshold the client's managed transfer uploads parts; the blob is whole."""
    blobs = s3_server.store(tmp_path / "spool", multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    sent: list[str] = []
    blobs.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: sent.append(model.name), unique_id="record-ops"
    )
    data = os.urandom(11 << 20)
    try:
        with blobs.writer() as writer:
            for start in range(0, len(data), 1 << 20):
                writer.write(data[start : start + (1 << 20)])
            sha = writer.commit()
        assert sent.count("UploadPart") == 3 and "CompleteMultipartUpload" in sent
        assert sha == hashlib.sha256(data).hexdigest()
        assert blobs.size(sha) == len(data)
        assert blobs.read_range(sha, (5 << 20) - 3, (5 << 20) + 3) == data[(5 << 20) - 3 : (5 << 20) + 3]
        assert s3_server.keys(blobs.bucket) == [blobs.key(sha)]
        assert list(blobs.spool_dir.iterdir()) == []
    finally:
        blobs.close()


def test_stale_spool_files_are_cleaned_on_open(s3_server: S3Server, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    stale, fresh = spool / "s3-write-dead.tmp", spool / "s3-write-live.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    s3_server.store(spool).close()
    assert not stale.exists() and fresh.exists()
