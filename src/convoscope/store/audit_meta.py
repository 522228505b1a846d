"""The audit log: who did what, when, from where, to which project; append-only.

**What is recorded.** Every write through the API (ingest included, refused attempts too, with the
status they got), every change of keys, users and settings (from the API or the command line), every
read of a recording or a raw payload, and every deletion. An entry names the actor (the user, else the
key's name), the key's id and role, the action, its target, the client's address and a small detail
document; never a secret, a body or a transcript.

**Append-only by the database.** The store has no method that changes or removes an entry, and the
migration adds triggers that make the database refuse an ``UPDATE`` or ``DELETE`` of the table (SQLite
and PostgreSQL), so a bug or a hand-typed statement cannot rewrite history either. Entries carry the
project's id but no foreign key: deleting a project keeps the record of what was done to it.
"""

from __future__ import annotations

import dataclasses
import getpass
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .meta import Base

__all__ = ["AuditEntry", "AuditQuery", "AuditRow", "AuditStoreMixin", "NewAuditEntry", "local_entry"]

_AUDIT_ID = BigInteger().with_variant(Integer(), "sqlite")
_EXPORT_PAGE = 1000


class AuditRow(Base):
    """One audited act."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project_at", "project_id", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(_AUDIT_ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(500))
    method: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


@dataclass(frozen=True)
class NewAuditEntry:
    """An act to record."""

    project_id: str | None
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    key_id: str | None = None
    role: str | None = None
    method: str | None = None
    status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry(NewAuditEntry):
    """A recorded act, with its place in the log."""

    id: int = 0

    def as_json(self) -> dict[str, Any]:
        """The entry as the API and the JSONL export give it."""
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "project_id": self.project_id,
            "actor": self.actor,
            "key_id": self.key_id,
            "role": self.role,
            "action": self.action,
            "target": self.target,
            "method": self.method,
            "status": self.status,
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditQuery:
    """Which entries to read: a project's, optionally narrowed; ``after_id`` pages forward."""

    project_id: str
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    after_id: int = 0
    limit: int = 100


class AuditStoreMixin:
    """Writes and reads of the audit log; mixed into :class:`~convoscope.store.metadata.MetadataStore`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def append_audit(self, entries: Sequence[NewAuditEntry]) -> None:
        """Record acts, all in one transaction."""
        if not entries:
            return
        with self._session() as session:
            session.add_all(
                AuditRow(
                    project_id=entry.project_id,
                    at=entry.at,
                    actor=entry.actor[:200],
                    key_id=entry.key_id,
                    role=entry.role,
                    action=entry.action[:64],
                    target=entry.target[:500],
                    method=entry.method,
                    status=entry.status,
                    source=entry.source[:200],
                    detail=entry.detail,
                )
                for entry in entries
            )

    def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries in the order they were recorded (oldest first), from after ``query.after_id``."""
        statement = select(AuditRow).where(
            AuditRow.project_id == query.project_id, AuditRow.id > query.after_id
        )
        if query.since is not None:
            statement = statement.where(AuditRow.at >= query.since)
        if query.until is not None:
            statement = statement.where(AuditRow.at < query.until)
        if query.actor:
            statement = statement.where(AuditRow.actor == query.actor)
        if query.action:
            statement = statement.where(
                AuditRow.action.startswith(query.action.rstrip("*"), autoescape=True)
                if query.action.endswith("*")
                else AuditRow.action == query.action
            )
        with self._session() as session:
            rows = session.scalars(statement.order_by(AuditRow.id).limit(query.limit)).all()
            return [_entry(row) for row in rows]

    def iter_audit(self, query: AuditQuery) -> Iterator[AuditEntry]:
        """Every matching entry, read a page at a time (for the JSONL export)."""
        after = query.after_id
        while True:
            page = self.list_audit(dataclasses.replace(query, after_id=after, limit=_EXPORT_PAGE))
            yield from page
            if len(page) < _EXPORT_PAGE:
                return
            after = page[-1].id


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        project_id=row.project_id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        source=row.source,
        key_id=row.key_id,
        role=row.role,
        method=row.method,
        status=row.status,
        detail=dict(row.detail or {}),
        id=row.id,
    )


def local_entry(project_id: str | None, action: str, target: str, detail: dict[str, Any]) -> NewAuditEntry:
    """An entry for an act of the command line on the data directory: the actor is the operating-system
    user (``cli:NAME``), the source ``cli``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return NewAuditEntry(
        project_id=project_id,
        at=datetime.now(UTC),
        actor=f"cli:{user}",
        action=action,
        target=target,
        source="cli",
        detail=detail,
    )
