"""A throwaway PostgreSQL cluster for the tests, from Debian's ``postgresql`` package.

``initdb`` makes a cluster in a temporary directory and ``pg_ctl`` runs it on a free loopback port with
password (SCRAM) authentication, so a test can also try a wrong password. PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` system user the package creates. Each test gets a
database of its own; the cluster is removed at the end of the session. A missing PostgreSQL is a failure
that says how to install it, never a skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from convoscope.testing.processes import free_port

SUPERUSER = "postgres"
PASSWORD = "convoscope-test"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: the metadata tests need Debian's postgresql package"
            " (apt-get install postgresql; scripts/test installs it)"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    """One running cluster; ``database()`` makes an empty database and returns its SQLAlchemy URL."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.version = int(self.bin.parts[4])
        self.root = Path(tempfile.mkdtemp(prefix="convoscope-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")  # made by the postgresql package
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count()
        self._start()

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def _start(self) -> None:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        if self._as:
            shutil.chown(password_file, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D", str(self.data),
            "-U", SUPERUSER,
            "--pwfile", str(password_file),
            "--auth", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C.UTF-8",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.root / "server.log"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start"
        )

    def url(self, database: str = "postgres", *, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port or self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
        )

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self._admin() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
