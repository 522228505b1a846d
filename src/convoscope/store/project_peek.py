"""A project's id read from the embedded metadata database with the standard library alone.

A command that reads calls from a stopped data directory needs one fact from the metadata database: the
id of the project it reads. Opening the metadata store imports SQLAlchemy, about a third of such a
command's start, so that id is read here with :mod:`sqlite3`. Whenever this cannot answer for certain (no
database yet, a revision the metadata store would first migrate, no such project, a database it cannot
read) it answers None and the caller opens the metadata store, which migrates, creates or explains.

This module imports nothing heavy on purpose; the metadata store takes its revision and its project type
from here so the two cannot drift apart.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD_REVISION", "ProjectInfo", "peek_project"]

HEAD_REVISION = "0011"
"""The newest migration in ``migrations/versions``; a test checks it against Alembic's own view.

Opening a database already at this revision skips Alembic entirely: importing and running it was about
0.3 s of every server start and every CLI command that opens the stores."""

BUSY_TIMEOUT_S = 5.0
"""How long a read waits on a writer's lock before it gives up and leaves the answer to the store."""


@dataclass(frozen=True)
class ProjectInfo:
    """A project as callers see it."""

    id: str
    name: str


def peek_project(database: Path, name: str) -> ProjectInfo | None:
    """The project called ``name`` in the SQLite file ``database`` at ``HEAD_REVISION``, else None.

    The file is opened read-write but never written (``mode=rw`` refuses to create a missing file, and a
    WAL database is readable without help only to a connection that may create its shared-memory file).
    """
    name = name.strip()
    if not name or not database.is_file():
        return None
    uri = f"{database.resolve().as_uri()}?mode=rw"
    try:
        with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)) as connection:
            versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            if versions != [HEAD_REVISION]:
                return None
            row = connection.execute("SELECT id, name FROM projects WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else ProjectInfo(id=str(row[0]), name=str(row[1]))
