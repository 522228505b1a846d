"""Who owns a data directory.

chDB lets one process open a data directory. The owner (``convoscope serve``, or a CLI command working
directly on the store) holds an exclusive ``flock`` on ``owner.lock``; a server also writes ``server.json``
with its URL, so other commands know to talk to it over HTTP instead. The kernel drops the lock when the
process dies, even by ``kill -9``, so a stale ``server.json`` is recognised by the free lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

from ..errors import StoreError

__all__ = ["DataDirLock", "running_server_url"]

_LOCK = "owner.lock"
_SERVER = "server.json"


class DataDirLock:
    """An exclusive, non-blocking claim on a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False when another process owns the directory."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.data_dir / _LOCK, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def acquire(self) -> None:
        """Take the lock or explain who holds it."""
        if not self.try_acquire():
            url = running_server_url(self.data_dir)
            where = f"a convoscope server at {url}" if url else "another convoscope process"
            raise StoreError(f"data directory {self.data_dir} is in use by {where}")

    def publish_server(self, url: str) -> None:
        """Record the URL of the server that holds the lock."""
        path = self.data_dir / _SERVER
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        os.replace(tmp, path)

    def release(self) -> None:
        """Drop the lock and the server record."""
        if self._handle is None:
            return
        (self.data_dir / _SERVER).unlink(missing_ok=True)
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_server_url(data_dir: Path) -> str | None:
    """The URL of the server owning ``data_dir``, or None when no live server holds it."""
    path = data_dir / _SERVER
    if not path.exists():
        return None
    probe = DataDirLock(data_dir)
    if probe.try_acquire():  # nobody holds it: the record is stale
        probe.release()
        return None
    try:
        return str(json.loads(path.read_text())["url"])
    except (OSError, ValueError, KeyError):
        return None
