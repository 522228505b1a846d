"""One holder at a time across processes: a PostgreSQL advisory lock on a connection of its own.

Work that must not run twice at once (evaluating alert rules, which notify; sweeping retention) runs in
one of the worker processes sharing a database. A session-level advisory lock is held for as long as its
connection lives, so a holder that is killed loses it as soon as the database notices the connection
gone, and another worker takes over without any lease to expire. On SQLite there is one process, which
always holds it.
"""

from __future__ import annotations

import zlib

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from .metadata import MetadataStore

__all__ = ["ExclusiveLock"]


class ExclusiveLock:
    """A named lock over the metadata database; ``try_acquire`` never waits."""

    def __init__(self, meta: MetadataStore, name: str) -> None:
        self.name = name
        self._meta = meta
        self._key = zlib.crc32(f"convoscope:{name}".encode())  # fits PostgreSQL's bigint key
        self._connection: Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this process holds the lock now."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when held (at once on SQLite)."""
        if self._held:
            return True
        if self._meta.backend != "postgresql":
            self._held = True
            return True
        try:
            connection = self._meta.engine.connect()
            got = bool(
                connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar()
            )
            connection.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"could not ask for the {self.name} lock: {exc}") from exc
        if got:
            self._connection, self._held = connection, True
        else:
            connection.close()
        return got

    def still_held(self) -> bool:
        """Whether the lock's connection still answers (a database restart ends the lock with it)."""
        if not self._held or self._connection is None:
            return self._held
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except SQLAlchemyError:
            self.release()
            return False
        return True

    def release(self) -> None:
        """Give the lock up (closing its connection ends it even if the unlock cannot be sent)."""
        connection, self._connection, self._held = self._connection, None, False
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            connection.commit()
        except SQLAlchemyError:
            pass
        finally:
            connection.close()
