"""Alert rules, their state and their events in the metadata database.

**Why here and not in ClickHouse.** A rule's state (firing or not, since when, the cooldown) and the
event that changed it must be written together: a state saved without its event loses the alert, an
event saved without its state repeats it every minute. One SQLite/PostgreSQL transaction does both. Events
are few (one per change of state, not one per evaluation), read by rule, state and time through small
indexes, and kept with the ids of the calls that caused them (a bounded sample, in JSON), so the
ReplacingMergeTree machinery of the event store would add nothing but a second write path.

The store knows nothing of a rule's schema: bodies are kept as JSON and validated by the alerts package
on the way in and out (a rule written by an older version is read through today's model). State is
kept beside the rule, so deleting a rule deletes its state; its events stay, naming the rule by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import StoreError
from .meta import Base

__all__ = [
    "AlertEventRow",
    "AlertRuleRow",
    "AlertStoreMixin",
    "StoredAlertEvent",
    "StoredRule",
    "StoredRuleState",
    "new_event_id",
]


def new_event_id() -> str:
    """A time-ordered event id (UUIDv7-like: milliseconds then randomness), so ids sort by creation."""
    millis = int(datetime.now(UTC).timestamp() * 1000)
    return f"{millis:012x}{uuid.uuid4().hex[:20]}"


class AlertRuleRow(Base):
    """One alert rule of a project with its evaluation state."""

    __tablename__ = "alert_rules"

    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    firing: Mapped[int] = mapped_column(Integer, default=0)
    state_since: Mapped[datetime | None]
    last_event_id: Mapped[str | None] = mapped_column(String(32))
    last_event_at: Mapped[datetime | None]
    cooldown_until: Mapped[datetime | None]
    last_evaluated_at: Mapped[datetime | None]
    last_value: Mapped[float | None] = mapped_column(Float)
    alerted: Mapped[list[str]] = mapped_column(JSON, default=list)


class AlertEventRow(Base):
    """One change of a rule's state (firing or resolved), with the numbers and the calls behind it."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_project_at", "project_id", "at"),
        Index("ix_alert_events_project_rule_at", "project_id", "rule_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey("projects.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(128))
    rule_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    sample_size: Mapped[int] = mapped_column(Integer)
    window_s: Mapped[float | None] = mapped_column(Float)
    call_ids: Mapped[list[str]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    series: Mapped[list[float]] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredRuleState:
    """A rule's evaluation state as kept."""

    firing: bool = False
    since: datetime | None = None
    last_event_id: str | None = None
    last_event_at: datetime | None = None
    cooldown_until: datetime | None = None
    last_evaluated_at: datetime | None = None
    last_value: float | None = None
    alerted: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredRule:
    """One kept rule: its JSON body, when it was written, and its state."""

    id: str
    body: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    state: StoredRuleState = field(default_factory=StoredRuleState)
    created: bool = False
    """True when the write that returned it created it (a PUT answers 201)."""


@dataclass(frozen=True)
class StoredAlertEvent:
    """One kept event (the fields of ``alerts.events.AlertEvent``, plain)."""

    id: str
    project_id: str
    rule_id: str
    rule_name: str
    state: str
    severity: str
    at: datetime
    summary: str
    value: float | None
    threshold: float | None
    sample_size: int
    window_s: float | None
    call_ids: list[str]
    details: dict[str, Any]
    series: list[float]


def _state(row: AlertRuleRow) -> StoredRuleState:
    return StoredRuleState(
        firing=bool(row.firing),
        since=row.state_since,
        last_event_id=row.last_event_id,
        last_event_at=row.last_event_at,
        cooldown_until=row.cooldown_until,
        last_evaluated_at=row.last_evaluated_at,
        last_value=row.last_value,
        alerted=tuple(row.alerted or ()),
    )


def _rule(row: AlertRuleRow, *, created: bool = False) -> StoredRule:
    return StoredRule(
        row.id, dict(row.body), bool(row.enabled), row.created_at, row.updated_at, _state(row), created
    )


def _event(row: AlertEventRow) -> StoredAlertEvent:
    return StoredAlertEvent(
        id=row.id,
        project_id=row.project_id,
        rule_id=row.rule_id,
        rule_name=row.rule_name,
        state=row.state,
        severity=row.severity,
        at=row.at,
        summary=row.summary,
        value=row.value,
        threshold=row.threshold,
        sample_size=row.sample_size,
        window_s=row.window_s,
        call_ids=list(row.call_ids or []),
        details=dict(row.details or {}),
        series=[float(v) for v in row.series or []],
    )


class AlertStoreMixin:
    """Alert rules, their state and events; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    def put_alert_rules(
        self, project_id: str, items: Sequence[tuple[str, Mapping[str, Any], bool]]
    ) -> list[StoredRule]:
        """Create or replace each ``(id, body, enabled)`` in one transaction; a replaced rule keeps its
        state (a renamed or retuned rule that is firing stays firing until it resolves)."""
        try:
            return self._put_rules(project_id, items)
        except IntegrityError:
            try:
                return self._put_rules(project_id, items)
            except IntegrityError as exc:
                raise StoreError(f"alert rules could not be written: {exc.orig}") from None

    def _put_rules(
        self, project_id: str, items: Sequence[tuple[str, Mapping[str, Any], bool]]
    ) -> list[StoredRule]:
        now = datetime.now(UTC)
        out: list[StoredRule] = []
        with self._session() as session:
            for ident, body, enabled in items:
                row = session.get(AlertRuleRow, (project_id, ident))
                created = row is None
                if row is None:
                    row = AlertRuleRow(
                        project_id=project_id,
                        id=ident,
                        body=dict(body),
                        enabled=int(enabled),
                        created_at=now,
                        updated_at=now,
                        firing=0,
                        alerted=[],
                    )
                    session.add(row)
                else:
                    row.body = dict(body)
                    row.enabled = int(enabled)
                    row.updated_at = now
                session.flush()
                out.append(_rule(row, created=created))
        return out

    def get_alert_rule(self, project_id: str, rule_id: str) -> StoredRule | None:
        """One kept rule with its state, or None."""
        with self._session() as session:
            row = session.get(AlertRuleRow, (project_id, rule_id))
            return None if row is None else _rule(row)

    def list_alert_rules(self, project_id: str, *, enabled_only: bool = False) -> list[StoredRule]:
        """The project's rules by id."""
        query = select(AlertRuleRow).where(AlertRuleRow.project_id == project_id)
        if enabled_only:
            query = query.where(AlertRuleRow.enabled == 1)
        with self._session() as session:
            return [_rule(row) for row in session.scalars(query.order_by(AlertRuleRow.id))]

    def alert_rule_projects(self) -> list[str]:
        """The projects with at least one enabled rule (what the scheduled evaluation walks)."""
        query = select(AlertRuleRow.project_id).where(AlertRuleRow.enabled == 1).distinct()
        with self._session() as session:
            return sorted(session.scalars(query))

    def delete_alert_rule(self, project_id: str, rule_id: str) -> bool:
        """Remove a rule and its state (its events stay); False when there was none."""
        with self._session() as session:
            result = session.execute(
                delete(AlertRuleRow).where(AlertRuleRow.project_id == project_id, AlertRuleRow.id == rule_id)
            )
            return bool(getattr(result, "rowcount", 0))

    def save_alert_state(
        self,
        project_id: str,
        rule_id: str,
        state: StoredRuleState,
        event: StoredAlertEvent | None = None,
    ) -> bool:
        """Write a rule's new state and, when it changed, its event, in one transaction; False (nothing
        written) when the rule was deleted meanwhile."""
        with self._session() as session:
            row = session.get(AlertRuleRow, (project_id, rule_id))
            if row is None:
                return False
            row.firing = int(state.firing)
            row.state_since = state.since
            row.last_event_id = state.last_event_id
            row.last_event_at = state.last_event_at
            row.cooldown_until = state.cooldown_until
            row.last_evaluated_at = state.last_evaluated_at
            row.last_value = state.last_value
            row.alerted = list(state.alerted)
            if event is not None:
                session.add(
                    AlertEventRow(
                        id=event.id,
                        project_id=project_id,
                        rule_id=event.rule_id,
                        rule_name=event.rule_name[:200],
                        state=event.state,
                        severity=event.severity,
                        at=event.at,
                        summary=event.summary,
                        value=event.value,
                        threshold=event.threshold,
                        sample_size=event.sample_size,
                        window_s=event.window_s,
                        call_ids=list(event.call_ids),
                        details=dict(event.details),
                        series=list(event.series),
                    )
                )
            return True

    def get_alert_event(self, project_id: str, event_id: str) -> StoredAlertEvent | None:
        """One kept event, or None."""
        with self._session() as session:
            row = session.get(AlertEventRow, event_id)
            return None if row is None or row.project_id != project_id else _event(row)

    def list_alert_events(
        self,
        project_id: str,
        *,
        rule_id: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredAlertEvent]:
        """The project's events, newest first."""
        query = select(AlertEventRow).where(AlertEventRow.project_id == project_id)
        if rule_id is not None:
            query = query.where(AlertEventRow.rule_id == rule_id)
        if state is not None:
            query = query.where(AlertEventRow.state == state)
        if since is not None:
            query = query.where(AlertEventRow.at >= since)
        query = query.order_by(AlertEventRow.at.desc(), AlertEventRow.id.desc()).limit(limit)
        with self._session() as session:
            return [_event(row) for row in session.scalars(query)]
