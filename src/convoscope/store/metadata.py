"""The metadata service: projects, API keys and the durable ingest outbox, over SQLAlchemy.

SQLite in the data directory is the default, PostgreSQL the scale-out choice; the queries here are plain
SQLAlchemy Core/ORM so they mean the same on both. SQLite is opened in WAL mode with ``synchronous=FULL``:
the server answers 202 only after ``enqueue`` returns, and must keep that promise through ``kill -9`` or a
power cut, so every commit is fsync'd before it returns.

API keys are stored as SHA-256 digests only. A generated key carries 256 bits of entropy, so a fast hash
is enough (no password stretching needed) and lets a request find its key by an indexed equality lookup
rather than by comparing secrets one by one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ..errors import InputError, NotFound, StoreError, field_error
from .alerts_meta import AlertStoreMixin
from .audit_meta import AuditStoreMixin
from .definitions import DefinitionStoreMixin, StoredDefinition
from .jobqueue import Job, JobQueueMixin, JobSpec, JobStatus, setting_at
from .meta import ApiKeyRow, JobRow, JobStatusValue, OutboxRow, OutboxStatusValue, ProjectRow
from .project_peek import HEAD_REVISION, ProjectInfo
from .retention_meta import RetentionStoreMixin
from .reviews_meta import ReviewStoreMixin
from .runs import RunStoreMixin, RunSummary
from .schedules_meta import ScheduleStoreMixin
from .users_meta import MembershipRow, Role, UserRow, UserStoreMixin, lower_role

__all__ = [
    "HEAD_REVISION",
    "ApiKeyInfo",
    "Job",
    "JobSpec",
    "JobStatus",
    "MetadataStore",
    "OutboxItem",
    "OutboxStatus",
    "Principal",
    "ProjectInfo",
    "RunSummary",
    "StoredDefinition",
    "hash_api_key",
    "setting_at",
    "upgrade_metadata",
]

KEY_PREFIX = "cvs_"
"""Every generated key starts with this, so secret scanners and people can recognise one."""

MIN_SEEDED_KEY_CHARS = 20
"""A headless (``CONVOSCOPE_INIT_API_KEY``) key shorter than this is refused as guessable."""

_SHOWN_CHARS_GENERATED = 12  # "cvs_" and 8 random characters: 48 of at least 256 bits shown
_SHOWN_CHARS_SEEDED = 6  # a seeded key may be as short as 20 characters: show little of it
_LAST_USED_EVERY_S = 60.0  # write last_used_at at most this often per key: a write per request is an fsync
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_PAYLOAD_ZLIB_LEVEL = 1  # the outbox is transient and on the 202 path: speed over ratio
DEFAULT_CLAIM_LEASE_S = 300.0
"""How long a claim keeps outbox rows (on PostgreSQL) and jobs from other processes unless renewed."""


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key's public facts; never its hash or plaintext."""

    id: str
    project_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    role: Role = Role.ADMIN
    expires_at: datetime | None = None
    user: str | None = None
    """The name of the user who owns the key, if any."""

    def as_json(self) -> dict[str, object]:
        """The key's public facts as the API gives them."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "role": self.role.value,
            "user": self.user,
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the project its key opens, the key, the key's user and the role in force."""

    project: ProjectInfo
    key_id: str
    key_name: str
    role: Role
    user: str | None = None

    @property
    def actor(self) -> str:
        """The name the audit log and the review queue give this principal."""
        return self.user if self.user else f"key:{self.key_name}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class OutboxItem:
    """One pending ingest request, payload decompressed, as the worker consumes it."""

    id: int
    project_id: str
    kind: str
    content_type: str
    payload: bytes
    blob_refs: tuple[str, ...]
    received_at: datetime
    attempts: int


@dataclass(frozen=True)
class OutboxStatus:
    """Where one ingest request stands, for ``GET /api/v1/ingest/{id}`` and for inspection."""

    id: int
    project_id: str
    kind: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    processed_at: datetime | None
    run_after: datetime | None = None
    """When a pending row that failed to store is tried again (None: as soon as the worker gets to it)."""


def hash_api_key(plaintext: str) -> str:
    """The stored form of a key: the SHA-256 hex digest of its UTF-8 bytes."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _short_id() -> str:
    return uuid.uuid4().hex[:16]


def _now() -> datetime:
    return datetime.now(UTC)


def _migrations_dir() -> str:
    # A real directory is needed: alembic reads scripts from the filesystem, never from a zip.
    return str(Path(__file__).resolve().parent / "migrations")


def _at_head(connection: Connection) -> bool:
    """Whether the database records ``HEAD_REVISION`` (False when it has no version table yet)."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(versions) == [HEAD_REVISION]


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _migrations_dir())
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_on(connection: Connection, url: str) -> None:
    if _at_head(connection):
        return
    from alembic import command

    config = _alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def upgrade_metadata(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (``alembic upgrade head``), in code.

    No ``alembic.ini`` is needed: the migration scripts ship inside the package and the config is built
    here. ``MetadataStore`` calls this itself on open; the function is public for deploy scripts that
    migrate a PostgreSQL database before starting servers.
    """
    engine = _create_engine(url)
    try:
        with engine.begin() as connection:
            _upgrade_on(connection, url)
    finally:
        engine.dispose()


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if _is_memory_sqlite(url):
        # One shared connection, or every pooled connection would see its own empty database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif parsed.get_backend_name() == "sqlite":
        kwargs = {"connect_args": {"check_same_thread": False}}
    else:
        kwargs = {"pool_pre_ping": True}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Durable, concurrent-reader SQLite: WAL, fsync on every commit, wait rather than fail on a lock."""
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching to WAL needs a lock another opener may briefly hold.
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _compress(payload: bytes) -> bytes:
    return zlib.compress(payload, _PAYLOAD_ZLIB_LEVEL)


class MetadataStore(
    JobQueueMixin,
    RunStoreMixin,
    DefinitionStoreMixin,
    AlertStoreMixin,
    ScheduleStoreMixin,
    ReviewStoreMixin,
    UserStoreMixin,
    AuditStoreMixin,
    RetentionStoreMixin,
):
    """Projects, API keys, the outbox and the job queue over one SQLAlchemy engine; thread-safe.

    Opening it migrates the database to the newest schema, so a fresh data directory works at once and an
    upgraded install upgrades its database on first start.
    """

    def __init__(self, url: str, *, claim_lease_s: float = DEFAULT_CLAIM_LEASE_S) -> None:
        if claim_lease_s <= 0:
            raise StoreError(f"claim_lease_s must be positive, not {claim_lease_s}")
        self._claim_lease = timedelta(seconds=claim_lease_s)
        try:
            self._backend = make_url(url).get_backend_name()
            self._engine = _create_engine(url)
        except SQLAlchemyError as exc:
            raise StoreError(f"bad metadata database URL: {_describe(exc)}") from exc
        except ImportError as exc:
            raise StoreError(
                f"no driver for the metadata database ({exc.name});"
                " for PostgreSQL install convoscope[postgres]"
            ) from exc
        try:
            with self._engine.begin() as connection:
                _upgrade_on(connection, url)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreError(
                f"cannot open the metadata database {_shown(url)} (CONVOSCOPE_METADATA_URL): {_describe(exc)}"
            ) from exc
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._claim_lock = threading.Lock()
        self._claim_after: str | None = None
        # Names this store on the rows and jobs it claims; the pid tells an operator which process holds
        # a job, the random part keeps two stores of one process (and a reused pid) apart.
        self._claimer = f"{os.getpid()}-{_short_id()[:12]}"
        self._last_used_lock = threading.Lock()
        self._last_used_written: dict[str, float] = {}

    @property
    def engine(self) -> Engine:
        """The underlying engine, for tests and maintenance tools."""
        return self._engine

    def close(self) -> None:
        """Release pooled connections (a SQLite WAL file is checkpointed when the last one closes)."""
        self._engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session committed on success, rolled back otherwise; database failures become StoreError."""
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"metadata database error: {_describe(exc)}") from exc

    # Projects ---------------------------------------------------------------------------------------

    def ensure_project(self, name: str) -> ProjectInfo:
        """The project called ``name``, created if it does not exist (safe against a concurrent creator)."""
        name = name.strip()
        if not name:
            raise InputError("a project needs a non-empty name")
        found = self.get_project(name)
        if found is not None:
            return found
        try:
            with self._session() as session:
                row = ProjectRow(id=_short_id(), name=name, created_at=_now(), settings={})
                session.add(row)
                return ProjectInfo(id=row.id, name=row.name)
        except IntegrityError:
            # Another process or thread created it between our read and our insert.
            found = self.get_project(name)
            if found is None:
                raise StoreError(f"project {name!r} could neither be created nor found") from None
            return found

    def get_project(self, name: str) -> ProjectInfo | None:
        """The project called ``name``, or None."""
        with self._session() as session:
            row = session.scalars(select(ProjectRow).where(ProjectRow.name == name)).one_or_none()
            return None if row is None else ProjectInfo(id=row.id, name=row.name)

    def list_projects(self) -> list[ProjectInfo]:
        """Every project, by name."""
        with self._session() as session:
            rows = session.scalars(select(ProjectRow).order_by(ProjectRow.name)).all()
            return [ProjectInfo(id=row.id, name=row.name) for row in rows]

    # API keys ---------------------------------------------------------------------------------------

    def create_api_key(
        self,
        project_id: str,
        *,
        name: str = "default",
        role: Role = Role.ADMIN,
        expires_at: datetime | None = None,
        user: str | None = None,
    ) -> str:
        """A new key for the project; the plaintext is returned here once and never stored."""
        return self.issue_api_key(project_id, name=name, role=role, expires_at=expires_at, user=user)[0]

    def issue_api_key(
        self,
        project_id: str,
        *,
        name: str,
        role: Role,
        expires_at: datetime | None = None,
        user: str | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """A new key's plaintext (returned here once, never stored) and its public facts.

        A key for a ``user`` may not carry more than the user's role in the project; an expiry must lie in
        the future.
        """
        if expires_at is not None and expires_at <= _now():
            raise field_error("expires_at", "a key's expiry must lie in the future")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            key_id = self._insert_key(
                project_id,
                plaintext,
                name=name,
                prefix=plaintext[:_SHOWN_CHARS_GENERATED],
                role=role,
                expires_at=expires_at,
                user=user,
            )
        except IntegrityError as exc:
            raise StoreError(f"API key could not be stored: {_describe(exc)}") from exc
        (info,) = [key for key in self.list_api_keys(project_id) if key.id == key_id]
        return plaintext, info

    def seed_api_key(self, project_id: str, plaintext: str, *, name: str) -> bool:
        """Store a key chosen by the operator (headless start); returns False when it is already stored.

        Idempotent so the server can seed ``CONVOSCOPE_INIT_API_KEY`` on every start. A key already stored
        for another project is left alone rather than moved. A revoked seeded key stays revoked.
        """
        if len(plaintext) < MIN_SEEDED_KEY_CHARS:
            raise InputError(f"an API key must be at least {MIN_SEEDED_KEY_CHARS} characters long")
        if any(ch.isspace() for ch in plaintext):
            raise InputError("an API key must not contain whitespace")
        digest = hash_api_key(plaintext)
        with self._session() as session:
            if session.scalars(select(ApiKeyRow.id).where(ApiKeyRow.key_hash == digest)).first() is not None:
                return False
        try:
            self._insert_key(project_id, plaintext, name=name, prefix=plaintext[:_SHOWN_CHARS_SEEDED])
        except IntegrityError:
            return False
        return True

    def _insert_key(
        self,
        project_id: str,
        plaintext: str,
        *,
        name: str,
        prefix: str,
        role: Role = Role.ADMIN,
        expires_at: datetime | None = None,
        user: str | None = None,
    ) -> str:
        key_id = _short_id()
        with self._session() as session:
            if session.get(ProjectRow, project_id) is None:
                raise NotFound(f"project {project_id} not found")
            user_id = None
            if user is not None:
                user_id = session.scalars(select(UserRow.id).where(UserRow.name == user)).one_or_none()
                held = None if user_id is None else self._membership_role(session, user_id, project_id)
                if user_id is None or held is None:
                    raise NotFound(f"user {user!r} is not a member of this project")
                if not held.allows(role):
                    raise field_error(
                        "role", f"user {user!r} is {held.value} here; a key cannot carry {role.value}"
                    )
            session.add(
                ApiKeyRow(
                    id=key_id,
                    project_id=project_id,
                    name=name,
                    prefix=prefix,
                    key_hash=hash_api_key(plaintext),
                    created_at=_now(),
                    role=role.value,
                    expires_at=expires_at,
                    user_id=user_id,
                )
            )
        return key_id

    def resolve_api_key(self, plaintext: str) -> ProjectInfo | None:
        """The project a key opens, or None for an unknown, revoked or expired key."""
        principal = self.resolve_principal(plaintext)
        return None if principal is None else principal.project

    def resolve_principal(self, plaintext: str) -> Principal | None:
        """Who a key acts as, or None for an unknown, revoked or expired key, or one whose user has left.

        The key is found by its digest through the unique index; the digest is then compared in constant
        time. Nothing is cached, so a revocation, an expiry or a user's new role takes effect on the next
        request, in every process.
        """
        if not plaintext:
            return None
        digest = hash_api_key(plaintext)
        with self._session() as session:
            # One read: the key, its project's name, and its user with their role in that project.
            found = session.execute(
                select(
                    ApiKeyRow.id,
                    ApiKeyRow.name,
                    ApiKeyRow.key_hash,
                    ApiKeyRow.project_id,
                    ApiKeyRow.role,
                    ApiKeyRow.expires_at,
                    ApiKeyRow.user_id,
                    ProjectRow.name,
                    MembershipRow.role,
                    UserRow.name,
                )
                .join(ProjectRow, ProjectRow.id == ApiKeyRow.project_id)
                .outerjoin(
                    MembershipRow,
                    (MembershipRow.user_id == ApiKeyRow.user_id)
                    & (MembershipRow.project_id == ApiKeyRow.project_id),
                )
                .outerjoin(UserRow, UserRow.id == ApiKeyRow.user_id)
                .where(ApiKeyRow.key_hash == digest, ApiKeyRow.revoked_at.is_(None))
            ).first()
        if found is None:
            return None
        (key_id, key_name, key_hash, project_id, key_role, expires_at, user_id, project_name, held, user) = (
            found
        )
        if not hmac.compare_digest(key_hash, digest):
            return None
        if expires_at is not None and expires_at <= _now():
            return None
        role = Role(key_role)
        if user_id is not None:
            if held is None:
                return None
            role = lower_role(role, Role(held))
        principal = Principal(
            project=ProjectInfo(id=project_id, name=project_name),
            key_id=key_id,
            key_name=key_name,
            role=role,
            user=user if user_id is not None else None,
        )
        self._touch_key(principal.key_id)
        return principal

    @property
    def backend(self) -> str:
        """The database behind it: ``sqlite`` or ``postgresql``."""
        return self._backend

    def _touch_key(self, key_id: str) -> None:
        """Record use at most once a minute per key, so authenticating is not a disk write per request."""
        now = time.monotonic()
        with self._last_used_lock:
            last = self._last_used_written.get(key_id)
            if last is not None and now - last < _LAST_USED_EVERY_S:
                return
            self._last_used_written[key_id] = now
        with self._session() as session:
            session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=_now()))

    def revoke_api_key(self, key_id: str, *, project_id: str | None = None) -> None:
        """Revoke a key for good; the row stays for the audit trail. Revoking twice keeps the first time.

        With ``project_id``, a key of another project is not found (so its existence does not leak).
        """
        with self._session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or (project_id is not None and row.project_id != project_id):
                raise NotFound(f"API key {key_id} not found")
            if row.revoked_at is None:
                row.revoked_at = _now()

    def list_api_keys(self, project_id: str) -> list[ApiKeyInfo]:
        """The project's keys, oldest first, revoked ones included; never a hash or a plaintext."""
        with self._session() as session:
            rows = session.execute(
                select(ApiKeyRow, UserRow.name)
                .outerjoin(UserRow, UserRow.id == ApiKeyRow.user_id)
                .where(ApiKeyRow.project_id == project_id)
                .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            ).all()
            return [
                ApiKeyInfo(
                    id=row.id,
                    project_id=row.project_id,
                    name=row.name,
                    prefix=row.prefix,
                    created_at=row.created_at,
                    last_used_at=row.last_used_at,
                    revoked_at=row.revoked_at,
                    role=Role(row.role),
                    expires_at=row.expires_at,
                    user=user_name,
                )
                for row, user_name in rows
            ]

    # Outbox -----------------------------------------------------------------------------------------

    def enqueue(
        self,
        project_id: str,
        *,
        kind: str,
        payload: bytes,
        content_type: str,
        blob_refs: Sequence[str] = (),
        received_at: datetime | None = None,
    ) -> int:
        """Commit one raw request to the outbox and return its id; durable once this returns.

        ``received_at`` (default now) is the receive time the caller already used, e.g. as the start of
        a vendor call whose events carry none, so the row and the answer agree.

        The caller answers 202 only after this, so the commit must reach the disk first (SQLite
        ``synchronous=FULL``; PostgreSQL's default ``synchronous_commit``).
        """
        row = OutboxRow(
            project_id=project_id,
            kind=kind,
            content_type=content_type,
            payload=_compress(payload),
            payload_bytes=len(payload),
            blob_refs=list(blob_refs),
            received_at=received_at or _now(),
            status=OutboxStatusValue.PENDING,
            attempts=0,
        )
        with self._session() as session:
            session.add(row)
            session.flush()
            row_id = row.id
        return int(row_id)

    def claim(self, limit: int, *, now: datetime | None = None) -> list[OutboxItem]:
        """Up to ``limit`` due pending rows, shared fairly between the projects that have some.

        Each project with due rows gets an equal share of the claim, its oldest rows first, so one
        project's backlog of thousands of rows cannot hold back another project's single call. Rows
        waiting out a retry delay (``run_after`` in the future) are skipped, so a row that fails to store
        never holds back the rows behind it. The projects are found by a walk along the
        ``(status, project_id, id)`` index, one short query per project, starting where the previous claim
        stopped so that past ``limit`` projects the share rotates.

        Claiming does not change a row: it stays pending until ``mark_done``, ``mark_failed`` or
        ``release``, so a consumer that dies or fails mid-batch sees the same rows again (at-least-once;
        the call store's replacement makes a replay harmless). A lock serialises concurrent claims
        from several threads of one process.

        On PostgreSQL several processes may drain one outbox: rows are read ``FOR UPDATE SKIP LOCKED``, so
        concurrent claims take disjoint rows, and a claim leases its rows to this store for
        ``claim_lease_s``, so no other store takes them while they are worked on; this store may claim
        them again at once, and another once the lease has run out (its claimer died). SQLite has one
        writing process per data directory, so it needs no lease and a claim writes nothing.
        """
        if limit <= 0:
            return []
        moment = now or _now()
        leased = self._backend == "postgresql"
        with self._claim_lock, self._session() as session:
            projects = self._projects_with_pending(session, limit)
            due = (OutboxRow.run_after.is_(None)) | (OutboxRow.run_after <= moment)
            if leased:
                due = due & (
                    OutboxRow.claimed_until.is_(None)
                    | (OutboxRow.claimed_until <= moment)
                    | (OutboxRow.claimed_by == self._claimer)
                )
            rows: list[OutboxRow] = []
            after: dict[str, int] = dict.fromkeys(projects, 0)
            # Rounds of equal shares; a project with fewer rows than its share leaves the rest to others.
            while after and len(rows) < limit:
                share = -(-(limit - len(rows)) // len(after))
                for project_id in list(after):
                    taken = session.scalars(
                        select(OutboxRow)
                        .where(
                            OutboxRow.status == OutboxStatusValue.PENDING,
                            OutboxRow.project_id == project_id,
                            OutboxRow.id > after[project_id],
                            due,
                        )
                        .order_by(OutboxRow.id)
                        .limit(share)
                        .with_for_update(skip_locked=True)
                    ).all()
                    rows.extend(taken)
                    if len(taken) < share:
                        del after[project_id]
                    else:
                        after[project_id] = taken[-1].id
            # Cut the last round's surplus before ordering, so the cut never falls on a small project.
            rows = sorted(rows[:limit], key=lambda row: row.id)
            if leased and rows:
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_([row.id for row in rows]))
                    .values(claimed_by=self._claimer, claimed_until=moment + self._claim_lease)
                    .execution_options(synchronize_session=False)
                )
            items: list[OutboxItem] = []
            for row in rows:
                try:
                    items.append(_outbox_item(row))
                except zlib.error as exc:
                    # A row that cannot even be read is dead-lettered here, or every claim would stop at it.
                    row.status = OutboxStatusValue.FAILED
                    row.error = f"the stored payload is corrupt: {exc}"
                    row.processed_at = moment
            return items

    def _projects_with_pending(self, session: Session, limit: int) -> list[str]:
        """Up to ``limit`` projects with pending rows, from the one after the last claim's, wrapping."""
        pending = OutboxRow.status == OutboxStatusValue.PENDING
        found: list[str] = []
        seen: set[str] = set()
        after = self._claim_after
        wrapped = after is None
        while len(found) < limit:
            condition = pending if after is None else pending & (OutboxRow.project_id > after)
            project_id = session.scalar(
                select(OutboxRow.project_id).where(condition).order_by(OutboxRow.project_id).limit(1)
            )
            if project_id is None:
                if wrapped:
                    break
                wrapped, after = True, None
                continue
            if project_id in seen:
                break
            found.append(project_id)
            seen.add(project_id)
            after = project_id
        self._claim_after = found[-1] if len(found) >= limit else None
        return found

    def mark_done(self, ids: Iterable[int]) -> None:
        """Mark rows stored; the payload stays until ``purge_done`` removes it after the retention time."""
        id_list = sorted(set(ids))
        if not id_list:
            return
        now = _now()
        with self._session() as session:
            # Chunks stay well under every backend's bound-parameter limit.
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(chunk))
                    .values(status=OutboxStatusValue.DONE, processed_at=now, error=None)
                )

    def mark_failed(self, item_id: int, error: str) -> None:
        """Give up on a row for good, keeping it with its error for inspection; it is never retried."""
        with self._session() as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id)
                .values(
                    status=OutboxStatusValue.FAILED,
                    error=error,
                    attempts=OutboxRow.attempts + 1,
                    processed_at=_now(),
                )
            )
            if _rowcount(result) == 0:
                raise NotFound(f"outbox row {item_id} not found")

    def release(self, item_id: int, error: str, *, run_after: datetime | None = None) -> None:
        """Hand a row back for a later retry after a failure: one more attempt, still pending.

        With ``run_after`` the row is not claimed again before then, so the rows behind it go first.
        """
        with self._session() as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id, OutboxRow.status == OutboxStatusValue.PENDING)
                .values(
                    error=error,
                    attempts=OutboxRow.attempts + 1,
                    run_after=run_after,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            if _rowcount(result) == 0 and session.get(OutboxRow, item_id) is None:
                raise NotFound(f"outbox row {item_id} not found")

    def list_outbox(
        self, project_id: str, *, status: str, limit: int, before_id: int | None = None
    ) -> list[OutboxStatus]:
        """A project's rows in one state, newest first, ``limit`` at most, older than ``before_id``."""
        condition = (OutboxRow.project_id == project_id) & (OutboxRow.status == status)
        if before_id is not None:
            condition = condition & (OutboxRow.id < before_id)
        with self._session() as session:
            rows = session.execute(
                select(*_STATUS_COLUMNS).where(condition).order_by(OutboxRow.id.desc()).limit(limit)
            ).all()
        return [_outbox_status(row) for row in rows]

    def retry_failed(self, project_id: str, item_id: int) -> OutboxStatus:
        """Put a dead-lettered row of the project back in the queue, due now, its attempts counted anew.

        The last error stays on the row until it is stored, so a retry that fails again still says why.
        A row that is not failed is left as it is (retrying a pending or stored row changes nothing).
        """
        with self._session() as session:
            row = session.get(OutboxRow, item_id)
            if row is None or row.project_id != project_id:
                raise NotFound(f"ingest {item_id} not found")
            if row.status == OutboxStatusValue.FAILED:
                row.status = OutboxStatusValue.PENDING
                row.attempts = 0
                row.run_after = None
                row.processed_at = None
                row.claimed_until = None
        found = self.status(item_id)
        assert found is not None
        return found

    def failed_since(self, since: datetime) -> int:
        """How many rows were dead-lettered at or after ``since`` (the health check's "rising")."""
        with self._session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status == OutboxStatusValue.FAILED, OutboxRow.processed_at >= since)
            )
            return int(count or 0)

    def due_pending(self, now: datetime | None = None) -> tuple[int, datetime | None]:
        """How many pending rows are due now, and when the oldest of them was received."""
        moment = now or _now()
        with self._session() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(OutboxRow.received_at)).where(
                    OutboxRow.status == OutboxStatusValue.PENDING,
                    (OutboxRow.run_after.is_(None)) | (OutboxRow.run_after <= moment),
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        return int(count or 0), oldest

    def pending_count(self) -> int:
        """How many rows wait for the worker."""
        with self._session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.status == OutboxStatusValue.PENDING)
            )
            return int(count or 0)

    def status(self, item_id: int) -> OutboxStatus | None:
        """Where one row stands, or None if there is no such row (never enqueued, or purged)."""
        with self._session() as session:
            found = session.execute(select(*_STATUS_COLUMNS).where(OutboxRow.id == item_id)).first()
        return None if found is None else _outbox_status(found)

    def purge_done(self, older_than: datetime) -> int:
        """Delete done rows processed before ``older_than``; failed rows are kept. Returns how many."""
        if older_than.tzinfo is None:
            raise InputError("purge_done needs a timezone-aware datetime")
        with self._session() as session:
            result = session.execute(
                delete(OutboxRow).where(
                    OutboxRow.status == OutboxStatusValue.DONE, OutboxRow.processed_at < older_than
                )
            )
            return _rowcount(result)

    # Health -----------------------------------------------------------------------------------------

    def reachable(self) -> None:
        """The cheapest real query on the outbox; StoreError when the database cannot answer."""
        try:
            with self._engine.connect() as connection:
                connection.execute(select(OutboxRow.id).limit(1)).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"metadata database error: {_describe(exc)}") from exc

    def ping(self) -> dict[str, object]:
        """Count the rows of each table with a real query; StoreError when the database cannot answer."""
        try:
            with self._engine.connect() as connection:
                counts = connection.execute(
                    select(
                        select(func.count()).select_from(ProjectRow).scalar_subquery().label("projects"),
                        select(func.count()).select_from(ApiKeyRow).scalar_subquery().label("api_keys"),
                        select(func.count())
                        .select_from(OutboxRow)
                        .where(OutboxRow.status == OutboxStatusValue.PENDING)
                        .scalar_subquery()
                        .label("outbox_pending"),
                        select(func.count())
                        .select_from(OutboxRow)
                        .where(OutboxRow.status == OutboxStatusValue.FAILED)
                        .scalar_subquery()
                        .label("outbox_failed"),
                        select(func.count())
                        .select_from(JobRow)
                        .where(JobRow.status == JobStatusValue.PENDING)
                        .scalar_subquery()
                        .label("jobs_pending"),
                        select(func.count())
                        .select_from(JobRow)
                        .where(JobRow.status == JobStatusValue.FAILED)
                        .scalar_subquery()
                        .label("jobs_failed"),
                    )
                ).one()
        except SQLAlchemyError as exc:
            raise StoreError(f"metadata database error: {_describe(exc)}") from exc
        return {"backend": self._backend, **{key: int(value) for key, value in counts._mapping.items()}}


_STATUS_COLUMNS = (
    OutboxRow.id,
    OutboxRow.project_id,
    OutboxRow.kind,
    OutboxRow.status,
    OutboxRow.attempts,
    OutboxRow.error,
    OutboxRow.received_at,
    OutboxRow.processed_at,
    OutboxRow.run_after,
)


def _outbox_status(found: Any) -> OutboxStatus:
    return OutboxStatus(
        id=found.id,
        project_id=found.project_id,
        kind=found.kind,
        status=found.status,
        attempts=found.attempts,
        error=found.error,
        received_at=found.received_at,
        processed_at=found.processed_at,
        run_after=found.run_after,
    )


def _outbox_item(row: OutboxRow) -> OutboxItem:
    """The row as the worker consumes it; ``zlib.error`` when its payload cannot be decompressed."""
    return OutboxItem(
        id=row.id,
        project_id=row.project_id,
        kind=row.kind,
        content_type=row.content_type,
        payload=zlib.decompress(row.payload),
        blob_refs=tuple(row.blob_refs),
        received_at=row.received_at,
        attempts=row.attempts,
    )


def _describe(exc: SQLAlchemyError) -> str:
    """The driver's own message without the SQL statement and parameters SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {original if original is not None else exc.args[0] if exc.args else ''}"


def _shown(url: str) -> str:
    """The database URL for an error message, its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
