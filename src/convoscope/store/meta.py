"""SQLAlchemy tables of the metadata database: projects, API keys, the ingest outbox, jobs, vendor events.

The same models serve SQLite (embedded) and PostgreSQL (at scale), so only portable column types are
used. The migration in ``migrations/versions`` is written by hand to match these classes; a test compares
the migrated schema with this metadata so the two cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKeyRow",
    "JobRow",
    "JobStatusValue",
    "NAMING_CONVENTION",
    "Base",
    "OutboxRow",
    "OutboxStatusValue",
    "ProjectRow",
    "SimulationDefinitionRow",
    "SimulationRunRow",
    "SourceEventRow",
    "UtcDateTime",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is UTC-aware in Python on every backend.

    SQLite keeps no time zone and hands back naive values; PostgreSQL converts to the session zone. Values
    are normalised to UTC on the way in and UTC is attached on the way out, so callers only ever see
    aware UTC datetimes and SQLite's text timestamps still sort chronologically.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class OutboxStatusValue:
    """The states of an outbox row (plain strings in the table, portable across backends)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


# PostgreSQL gets a 64-bit identity; SQLite needs exactly INTEGER for a rowid alias with AUTOINCREMENT.
_OUTBOX_ID = BigInteger().with_variant(Integer(), "sqlite")


# Explicit constraint names, identical on SQLite and PostgreSQL, so later migrations can drop or alter
# a constraint by name and autogenerate comparisons line up.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the metadata tables; ``Base.metadata`` is what the migration must match."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class ProjectRow(Base):
    """A project: the unit every API key, call and setting belongs to."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    # Per-source options (webhook secrets, channel maps) arrive here later; JSON keeps the schema stable.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKeyRow(Base):
    """An API key of a project; only the SHA-256 of the key is stored, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # The role the key carries (see ``users_meta``); keys made before roles existed keep full access.
    role: Mapped[str] = mapped_column(String(16), default="admin", server_default="admin")
    expires_at: Mapped[datetime | None]
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class OutboxRow(Base):
    """One acknowledged ingest request, kept until the worker has stored it.

    ``id`` never repeats, even after the newest rows were purged and the process restarted (SQLite
    AUTOINCREMENT, PostgreSQL identity), so it doubles as the ingest id returned to clients.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        # The fair claim walks the projects with pending rows, then each project's oldest rows.
        Index("ix_outbox_status_project_id", "status", "project_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(_OUTBOX_ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    blob_refs: Mapped[list[str]] = mapped_column(default=list)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatusValue.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    run_after: Mapped[datetime | None]
    """A pending row that failed to store waits until then before it is claimed again (None: due now)."""
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    """On PostgreSQL, the store instance that claimed the pending row last (None: never claimed there)."""
    claimed_until: Mapped[datetime | None]
    """Until when that claim keeps the row from other instances; past it, a dead claimer's rows are free."""


class JobStatusValue:
    """The states of a post-ingest job."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobRow(Base):
    """The latest state of one post-ingest job of one call (re-hosting a recording, audio analysis, evals).

    One row per (project, kind, call): enqueuing the same job again resets that row, so the table is also
    the record of what happened to each call, failures included, and a replay cannot pile up duplicates.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "call_id"),
        Index("ix_jobs_status_run_after", "status", "run_after"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(_OUTBOX_ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatusValue.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    """The store instance (one per process) running the job (None: never claimed, or claimed before
    leases existed)."""
    claimed_until: Mapped[datetime | None]
    """Until when a running job is its claimer's; the claimer renews it while it works, so a job whose
    worker was killed is free again once it has passed."""


class SourceEventRow(Base):
    """One raw vendor event (a webhook or a pulled record) of one vendor call, kept to re-assemble the call.

    Vendors describe a call over several events (Retell's started/ended/analyzed, Bland's corrected
    transcript, ElevenLabs' separate audio), so the call is rebuilt from all of them; the unique event key
    makes a replayed webhook a no-op.
    """

    __tablename__ = "source_events"
    __table_args__ = (
        UniqueConstraint("project_id", "source", "external_id", "event_key"),
        Index("ix_source_events_call", "project_id", "source", "external_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(_OUTBOX_ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    event_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]


class SimulationRunRow(Base):
    """The result of one simulation run, kept so later runs can be compared with it (A/B, regressions).

    The per-conversation detail lives in the stored calls and scores; ``report`` keeps the run's own
    summary (cells, totals, each conversation's verdict and metric outcomes) so a comparison needs one
    read, and stays possible after the calls' retention has passed.
    """

    __tablename__ = "simulation_runs"
    __table_args__ = (Index("ix_simulation_runs_project_started", "project_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    suite_id: Mapped[str] = mapped_column(String(128))
    agent_id: Mapped[str] = mapped_column(String(128))
    agent_version: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    errored: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class SimulationDefinitionRow(Base):
    """One simulation definition (scenario, persona, suite or agent) of a project, kept by the server.

    The same objects as the YAML files of ``convoscope simulate``, so a team can keep its tests on the
    server and start runs over the API. ``body`` is the definition as validated JSON (the pydantic
    model's dump), read back through the same model, so a later field default applies on read; one row
    per (project, kind, id), the key a definition is named by.
    """

    __tablename__ = "simulation_definitions"

    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
