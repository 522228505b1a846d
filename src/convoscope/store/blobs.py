"""Recordings and other large bytes, stored once by content.

Vendor recording URLs expire, so recordings are copied here at ingest and referenced from calls as
``blob:<sha256>``. Addressing by SHA-256 makes a repeated upload free (same bytes, same name), makes a
reference self-verifying, and leaves no name a caller can choose, so no path traversal. The interface is a
Protocol so an object store can stand in for the filesystem (``store/s3blobs.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from ..errors import InputError, NotFound, StoreError

__all__ = [
    "BlobStore",
    "BlobWriter",
    "FileBlobStore",
    "FileBlobWriter",
    "SpoolingWriter",
    "check_sha256",
    "commit_chunks",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that died; younger ones may be in use
_CHUNK = 1 << 20


def check_sha256(sha: str) -> str:
    """``sha`` if it is 64 lowercase hex digits; InputError otherwise (it becomes a path, so be strict)."""
    if not isinstance(sha, str) or _SHA256.fullmatch(sha) is None:
        raise InputError(
            f"not a sha256 blob id: {sha[:80]!r}" if isinstance(sha, str) else "not a sha256 blob id"
        )
    return sha


class BlobWriter(Protocol):
    """Content written in pieces, hashed as it is written, that becomes a blob only when committed.

    Bytes too large to hold in memory (a webhook's decoded audio, a downloaded recording) are written here
    as they arrive; the caller can read the finished file (``path``) to check it before ``commit`` makes it
    a blob, and ``discard`` leaves nothing behind.
    """

    @property
    def path(self) -> Path:
        """The temporary file holding what was written so far."""
        ...

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: bytes) -> None:
        """Append ``data``."""
        ...

    def flush(self) -> None:
        """Push buffered bytes to ``path``, so it can be read in full."""
        ...

    def sha256(self) -> str:
        """The SHA-256 hex of what was written so far (the name ``commit`` will give it)."""
        ...

    def commit(self) -> str:
        """Make the content a durable blob and return its SHA-256; the writer is closed."""
        ...

    def discard(self) -> None:
        """Drop the content (a no-op after ``commit`` or a previous ``discard``)."""
        ...

    def __enter__(self) -> BlobWriter: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class BlobStore(Protocol):
    """Content-addressed bytes: the SHA-256 of the content is its only name."""

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 hex; storing the same bytes again is a no-op."""
        ...

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Like ``put`` for content too large to hold in memory at once."""
        ...

    def writer(self) -> BlobWriter:
        """A writer for content that arrives in pieces and may still be refused before it is stored."""
        ...

    def read(self, sha: str) -> bytes:
        """The whole content; NotFound if absent."""
        ...

    def read_range(self, sha: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` (end exclusive, clamped to the size), for HTTP range requests."""
        ...

    def open(self, sha: str) -> BinaryIO:
        """A binary file object to stream the content; the caller closes it."""
        ...

    def exists(self, sha: str) -> bool:
        """Whether the content is stored."""
        ...

    def size(self, sha: str) -> int:
        """The content's length in bytes; NotFound if absent."""
        ...

    def delete(self, sha: str) -> bool:
        """Remove the content; False when it was not there."""
        ...

    def ping(self) -> dict[str, object]:
        """A real round trip for ``/healthz``: where the blobs live; StoreError when they are out of reach."""
        ...

    def close(self) -> None:
        """Release connections (the store is not used afterwards)."""
        ...


def commit_chunks(writer: BlobWriter, chunks: Iterable[bytes]) -> str:
    """Write ``chunks`` through ``writer`` and commit them (``put_stream`` of every store)."""
    with writer:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit()


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class FileBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>``, written atomically and fsync'd.

    A blob is written to a temporary file under ``root/.tmp`` (the same filesystem), fsync'd, renamed into
    place with ``os.replace`` and the directory fsync'd, so after ``put`` returns the content survives a
    crash and a reader never sees a partial file. Temporary files left by a writer that died are removed
    when a store is opened, once they are an hour old (a younger one may belong to another process).
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)
        self._tmp = self._root / ".tmp"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the blob directory {self._root}: {exc.strerror}") from exc
        self._remove_stale_temps()

    @property
    def root(self) -> Path:
        """The directory holding the blobs."""
        return self._root

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        check_sha256(sha)
        return self._root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256. The same bytes stored twice are written once."""
        sha = hashlib.sha256(data).hexdigest()
        if self._present(sha, len(data)):
            return sha
        return self._write(sha, (data,))

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Store content arriving in chunks, hashing while writing; returns its SHA-256."""
        return commit_chunks(self.writer(), chunks)

    def writer(self) -> FileBlobWriter:
        """A temp file under ``root/.tmp`` that ``commit`` renames into place (see :class:`BlobWriter`)."""
        return FileBlobWriter(self)

    def read(self, sha: str) -> bytes:
        """The whole content of ``sha``."""
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {sha} not found") from None
        except OSError as exc:
            raise StoreError(f"cannot read blob {sha}: {exc.strerror}") from exc

    def read_range(self, sha: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``sha``; ``end`` past the size is clamped, ``start`` past it is empty."""
        if start < 0 or end < start:
            raise InputError(f"bad byte range [{start}, {end})")
        try:
            with self.path(sha).open("rb") as handle:
                handle.seek(start)
                return handle.read(end - start)
        except FileNotFoundError:
            raise NotFound(f"blob {sha} not found") from None
        except OSError as exc:
            raise StoreError(f"cannot read blob {sha}: {exc.strerror}") from exc

    def open(self, sha: str) -> BinaryIO:
        """A binary file object over the content, for streaming; the caller closes it."""
        try:
            return self.path(sha).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha} not found") from None
        except OSError as exc:
            raise StoreError(f"cannot open blob {sha}: {exc.strerror}") from exc

    def exists(self, sha: str) -> bool:
        """Whether ``sha`` is stored."""
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        """The length of ``sha`` in bytes."""
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {sha} not found") from None
        except OSError as exc:
            raise StoreError(f"cannot stat blob {sha}: {exc.strerror}") from exc

    def delete(self, sha: str) -> bool:
        """Remove ``sha``; False when it was not stored. Empty fan-out directories are left in place."""
        target = self.path(sha)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete blob {sha}: {exc.strerror}") from exc
        _fsync_dir(target.parent)
        return True

    def ping(self) -> dict[str, object]:
        """Create and remove a file in ``.tmp``: a full disk or read-only mount shows here, not at ingest."""
        try:
            fd, name = self._temp_file("ping-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise StoreError(f"cannot write under the blob directory {self._root}: {exc.strerror}") from exc
        return {"root": str(self._root)}

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own file."""

    def _present(self, sha: str, size: int) -> bool:
        """Already stored with the right length: content addressing makes a rewrite pointless."""
        try:
            return self.path(sha).stat().st_size == size
        except FileNotFoundError:
            return False

    def _adopt(self, tmp: Path, sha: str, size: int) -> None:
        """Make a written, fsync'd temp file the blob ``sha`` (dropped when that blob is stored already)."""
        if self._present(sha, size):
            tmp.unlink()
        else:
            self._move_into_place(tmp, sha)

    def _temp_file(self, prefix: str) -> tuple[int, Path]:
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix=prefix, suffix=".tmp")
        return fd, Path(name)

    def _write(self, sha: str, chunks: Iterable[bytes]) -> str:
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=f"{sha[:16]}-", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            self._move_into_place(tmp, sha)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write blob {sha}: {exc.strerror}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return sha

    def _move_into_place(self, tmp: Path, sha: str) -> None:
        """Rename a fsync'd temp file to its final name and make the new directory entries durable."""
        target = self.path(sha)
        self._make_dirs(target.parent)
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    def _make_dirs(self, leaf: Path) -> None:
        """Create ``ab/cd`` and fsync each parent that gained an entry, so the rename's parent survives."""
        for directory in (leaf.parent, leaf):
            if not directory.is_dir():
                directory.mkdir(exist_ok=True)
                _fsync_dir(directory.parent)

    def _remove_stale_temps(self) -> None:
        cutoff = time.time() - _STALE_TEMP_S
        try:
            entries = list(self._tmp.iterdir())
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:
                continue


class SpoolingWriter(ABC):
    """What every :class:`BlobWriter` shares: a local file written and hashed as the content arrives,
    removed unless ``commit`` makes it a blob. A store subclasses it with its own ``commit``."""

    def __init__(self, fd: int, path: Path, where: str) -> None:
        self._path = path
        self._where = where
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._size = 0

    @property
    def path(self) -> Path:
        """The local file (flushed by :meth:`flush`, complete after the last write)."""
        return self._path

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, data: bytes) -> None:
        """Append ``data`` and hash it."""
        handle = self._open_file()
        try:
            handle.write(data)
        except OSError as exc:
            self.discard()
            raise StoreError(f"cannot write a blob under {self._where}: {exc.strerror}") from exc
        self._digest.update(data)
        self._size += len(data)

    def flush(self) -> None:
        """Push buffered bytes to the file, so ``path`` can be read in full."""
        self._open_file().flush()

    def sha256(self) -> str:
        """The SHA-256 hex of what was written so far."""
        return self._digest.hexdigest()

    @abstractmethod
    def commit(self) -> str:
        """Make the content a blob; each store says how."""

    def discard(self) -> None:
        """Close and remove the file; nothing of it remains."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path.unlink(missing_ok=True)

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise StoreError("the blob writer is closed (committed or discarded)")
        return self._file

    def _closed_file(self) -> None:
        """Close the file for good before it is handed over (renamed or uploaded)."""
        self._open_file().close()
        self._file = None

    def __enter__(self) -> SpoolingWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Whatever was not committed is discarded, on success and on error alike."""
        self.discard()


class FileBlobWriter(SpoolingWriter):
    """A :class:`BlobWriter` over a temporary file in a :class:`FileBlobStore`'s ``.tmp`` directory.

    The temp file is on the blobs' filesystem, so ``commit`` is a rename, not a copy; it is fsync'd first,
    so a committed blob survives a crash as ``put``'s do.
    """

    def __init__(self, store: FileBlobStore) -> None:
        self._store = store
        try:
            fd, path = store._temp_file("write-")
        except OSError as exc:
            raise StoreError(f"cannot write a blob under {store.root}: {exc.strerror}") from exc
        super().__init__(fd, path, str(store.root))

    def commit(self) -> str:
        """Fsync, close and rename into place; returns the blob's SHA-256."""
        handle = self._open_file()
        sha = self.sha256()
        try:
            handle.flush()
            os.fsync(handle.fileno())
            self._closed_file()
            self._store._adopt(self._path, sha, self._size)
        except OSError as exc:
            self.discard()
            raise StoreError(f"cannot write blob {sha}: {exc.strerror}") from exc
        return sha
