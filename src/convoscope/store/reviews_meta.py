"""The review queue and people's labels in the metadata database.

**Why here.** Claiming an item, storing a label and closing the item it answers must be one transaction:
a label saved without closing its item hands the call to the next reviewer, an item closed without its
label loses the verdict. Both are few (people label tens to thousands of calls), written by the API,
the UI and the CLI, and read by project, state and metric through small indexes; the event store's
merge-on-read tables would make "is this already labelled?" a question with an eventual answer.

**No call labelled twice by mistake.** Three rules, each enforced by the database, not by callers:

* one queue item per (project, call, metric): filling the queue again over the same window adds
  nothing (:meth:`ReviewStoreMixin.enqueue_review_items` ignores what is already queued);
* a claim: the items of the call a reviewer was handed are not handed to anyone else until
  ``claimed_until`` (the reviewer's own claims come back first, so reloading the page is harmless);
* one label per (project, call, metric, reviewer): a second one is refused with :class:`LabelExists`
  unless the caller says it replaces the first (an edit keeps ``created_at`` and sets ``updated_at``).

A label keeps what the judge said when the person looked (value, pass/fail, metric version), so
calibration compares the verdict that was reviewed even after the call is evaluated again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import InputError, StoreError
from .meta import Base

__all__ = [
    "ITEM_DONE",
    "ITEM_OPEN",
    "LabelExists",
    "NewLabel",
    "QueueCandidate",
    "ReviewItemRow",
    "ReviewLabelRow",
    "ReviewStoreMixin",
    "Reviewer",
    "StoredLabel",
    "StoredReviewItem",
]

ITEM_OPEN = "open"
"""Waiting for a label (claimed or not)."""
ITEM_DONE = "done"
"""Labelled by someone; never handed out again."""

_CLAIM_SCAN = 200
"""Open items read per step while looking for the next call a reviewer may take."""


class LabelExists(InputError):
    """This reviewer already labelled this call's metric; a replacement must say so (an HTTP 409)."""


class ReviewItemRow(Base):
    """One (call, metric) queued for a person by a rule, with who holds it and until when."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("project_id", "call_id", "metric"),
        Index("ix_review_items_project_state", "project_id", "state", "priority", "queued_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey("projects.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(200))
    call_started_at: Mapped[datetime]
    queued_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_by_name: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    skipped_by: Mapped[list[str]] = mapped_column(JSON)
    done_at: Mapped[datetime | None]


class ReviewLabelRow(Base):
    """One person's label of one call's metric, with the judge's result it was compared with."""

    __tablename__ = "review_labels"
    __table_args__ = (
        UniqueConstraint("project_id", "call_id", "metric", "reviewer_id"),
        Index("ix_review_labels_project_metric", "project_id", "metric", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(32), ForeignKey("projects.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    reviewer_id: Mapped[str] = mapped_column(String(64))
    reviewer_name: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str | None] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(String(32))
    judge: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Reviewer:
    """Who labels: an API key's id and its user's name (else the key's name), or ``local:<name>`` for the
    CLI working on a stopped data directory."""

    id: str
    name: str

    @classmethod
    def of(cls, principal: HasKey) -> Reviewer:
        """The reviewer a request's principal stands for."""
        return cls(id=principal.key_id, name=principal.user or principal.key_name)


class HasKey(Protocol):
    """What a reviewer is made from (a :class:`~convoscope.store.metadata.Principal`)."""

    @property
    def key_id(self) -> str: ...
    @property
    def key_name(self) -> str: ...
    @property
    def user(self) -> str | None: ...


@dataclass(frozen=True)
class QueueCandidate:
    """A (call, metric) a rule wants a person to look at, and why."""

    call_id: str
    metric: str
    rule: str
    reason: str
    priority: int
    agent_id: str | None
    call_started_at: datetime


@dataclass(frozen=True)
class StoredReviewItem:
    """One kept queue item."""

    id: str
    call_id: str
    metric: str
    rule: str
    reason: str
    priority: int
    agent_id: str | None
    call_started_at: datetime
    queued_at: datetime
    state: str
    claimed_by: str | None
    claimed_by_name: str | None
    claimed_at: datetime | None
    claimed_until: datetime | None
    done_at: datetime | None


@dataclass(frozen=True)
class NewLabel:
    """A label as submitted: ``verdict`` pass/fail and/or a number, a note, and the judge's result."""

    call_id: str
    metric: str
    verdict: str | None
    value: float | None
    note: str
    judge: dict[str, Any]
    """The stored result when the person looked: ``value``, ``passed``, ``version`` (empty: none)."""


@dataclass(frozen=True)
class StoredLabel:
    """One kept label, with who gave it and when."""

    id: str
    call_id: str
    metric: str
    reviewer_id: str
    reviewer_name: str
    verdict: str | None
    value: float | None
    note: str
    rule: str | None
    judge: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None
    replaced: bool = False
    """True when the write that returned it replaced this reviewer's earlier label."""


def _new_id() -> str:
    millis = int(datetime.now(UTC).timestamp() * 1000)
    return f"{millis:012x}{uuid.uuid4().hex[:20]}"


def _item(row: ReviewItemRow) -> StoredReviewItem:
    return StoredReviewItem(
        id=row.id,
        call_id=row.call_id,
        metric=row.metric,
        rule=row.rule,
        reason=row.reason,
        priority=row.priority,
        agent_id=row.agent_id,
        call_started_at=row.call_started_at,
        queued_at=row.queued_at,
        state=row.state,
        claimed_by=row.claimed_by,
        claimed_by_name=row.claimed_by_name,
        claimed_at=row.claimed_at,
        claimed_until=row.claimed_until,
        done_at=row.done_at,
    )


def _label(row: ReviewLabelRow, *, replaced: bool = False) -> StoredLabel:
    return StoredLabel(
        id=row.id,
        call_id=row.call_id,
        metric=row.metric,
        reviewer_id=row.reviewer_id,
        reviewer_name=row.reviewer_name,
        verdict=row.verdict,
        value=row.value,
        note=row.note,
        rule=row.rule,
        judge=dict(row.judge or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        replaced=replaced,
    )


class ReviewStoreMixin:
    """The review queue and labels; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    # Who --------------------------------------------------------------------------------------------

    # The queue --------------------------------------------------------------------------------------

    def enqueue_review_items(self, project_id: str, candidates: Iterable[QueueCandidate]) -> int:
        """Queue each (call, metric) not queued before (whatever its state); returns how many were new.

        The first rule to queue a pair keeps it: filling again, by the same rule or another, adds nothing.
        """
        wanted: dict[tuple[str, str], QueueCandidate] = {}
        for candidate in candidates:
            wanted.setdefault((candidate.call_id, candidate.metric), candidate)
        if not wanted:
            return 0
        now = datetime.now(UTC)
        added = 0
        call_ids = sorted({call_id for call_id, _ in wanted})
        try:
            with self._session() as session:
                existing: set[tuple[str, str]] = set()
                for start in range(0, len(call_ids), 500):
                    chunk = call_ids[start : start + 500]
                    rows = session.execute(
                        select(ReviewItemRow.call_id, ReviewItemRow.metric).where(
                            ReviewItemRow.project_id == project_id, ReviewItemRow.call_id.in_(chunk)
                        )
                    )
                    existing.update((row[0], row[1]) for row in rows)
                for key, candidate in wanted.items():
                    if key in existing:
                        continue
                    session.add(
                        ReviewItemRow(
                            id=_new_id(),
                            project_id=project_id,
                            call_id=candidate.call_id,
                            metric=candidate.metric,
                            rule=candidate.rule,
                            reason=candidate.reason[:2000],
                            priority=candidate.priority,
                            agent_id=candidate.agent_id,
                            call_started_at=candidate.call_started_at,
                            queued_at=now,
                            state=ITEM_OPEN,
                            skipped_by=[],
                        )
                    )
                    added += 1
        except IntegrityError:
            # A concurrent fill queued some of the same pairs: queue what is still missing.
            return self.enqueue_review_items(project_id, wanted.values())
        return added

    def review_items_of_rule(
        self, project_id: str, rule: str, since: datetime, until: datetime
    ) -> list[StoredReviewItem]:
        """Items a rule queued for calls started in ``[since, until)`` (what a random sample already took)."""
        query = select(ReviewItemRow).where(
            ReviewItemRow.project_id == project_id,
            ReviewItemRow.rule == rule,
            ReviewItemRow.call_started_at >= since,
            ReviewItemRow.call_started_at < until,
        )
        with self._session() as session:
            return [_item(row) for row in session.scalars(query)]

    def list_review_items(
        self, project_id: str, *, state: str | None = ITEM_OPEN, call_id: str | None = None, limit: int = 100
    ) -> list[StoredReviewItem]:
        """Queue items in the order they are handed out (priority, then oldest queued)."""
        query = select(ReviewItemRow).where(ReviewItemRow.project_id == project_id)
        if state is not None:
            query = query.where(ReviewItemRow.state == state)
        if call_id is not None:
            query = query.where(ReviewItemRow.call_id == call_id)
        query = query.order_by(
            ReviewItemRow.priority, ReviewItemRow.queued_at, ReviewItemRow.call_id, ReviewItemRow.metric
        ).limit(limit)
        with self._session() as session:
            return [_item(row) for row in session.scalars(query)]

    def count_review_items(self, project_id: str) -> dict[str, int]:
        """How many items are in each state."""
        query = (
            select(ReviewItemRow.state, func.count())
            .where(ReviewItemRow.project_id == project_id)
            .group_by(ReviewItemRow.state)
        )
        with self._session() as session:
            return {state: int(count) for state, count in session.execute(query)}

    def claim_review_call(
        self,
        project_id: str,
        reviewer: Reviewer,
        *,
        claim_for: timedelta,
        exclude: Collection[str] = (),
        now: datetime | None = None,
    ) -> list[StoredReviewItem]:
        """Hand ``reviewer`` the open items of the next call: their own unexpired claim first, else the
        highest-priority, oldest call nobody holds (and they did not skip); its items are claimed until
        ``now + claim_for``. Calls in ``exclude`` (already handed in this request) are passed over.
        Empty when nothing is left for them."""
        moment = now or datetime.now(UTC)
        for _ in range(20):  # a concurrent reviewer may take the call we picked; pick again
            call_id = self._next_call(project_id, reviewer, moment, exclude)
            if call_id is None:
                return []
            claimed = self._claim(project_id, call_id, reviewer, moment, moment + claim_for)
            if claimed:
                return claimed
        return []

    def _next_call(
        self, project_id: str, reviewer: Reviewer, now: datetime, exclude: Collection[str]
    ) -> str | None:
        base = select(ReviewItemRow).where(
            ReviewItemRow.project_id == project_id, ReviewItemRow.state == ITEM_OPEN
        )
        if exclude:
            base = base.where(ReviewItemRow.call_id.not_in(list(exclude)))
        with self._session() as session:
            mine = session.scalars(
                base.where(ReviewItemRow.claimed_by == reviewer.id, ReviewItemRow.claimed_until > now)
                .order_by(ReviewItemRow.claimed_at, ReviewItemRow.priority, ReviewItemRow.queued_at)
                .limit(1)
            ).first()
            if mine is not None:
                return mine.call_id
            free = base.where(
                or_(
                    ReviewItemRow.claimed_by.is_(None),
                    ReviewItemRow.claimed_until <= now,
                    ReviewItemRow.claimed_by == reviewer.id,
                )
            ).order_by(
                ReviewItemRow.priority, ReviewItemRow.queued_at, ReviewItemRow.call_id, ReviewItemRow.id
            )
            offset = 0
            while True:
                rows = session.scalars(free.offset(offset).limit(_CLAIM_SCAN)).all()
                for row in rows:
                    if reviewer.id not in (row.skipped_by or []):
                        return row.call_id
                if len(rows) < _CLAIM_SCAN:
                    return None
                offset += _CLAIM_SCAN

    def _claim(
        self, project_id: str, call_id: str, reviewer: Reviewer, now: datetime, until: datetime
    ) -> list[StoredReviewItem]:
        with self._session() as session:
            session.execute(
                update(ReviewItemRow)
                .where(
                    ReviewItemRow.project_id == project_id,
                    ReviewItemRow.call_id == call_id,
                    ReviewItemRow.state == ITEM_OPEN,
                    or_(
                        ReviewItemRow.claimed_by.is_(None),
                        ReviewItemRow.claimed_until <= now,
                        ReviewItemRow.claimed_by == reviewer.id,
                    ),
                )
                .values(
                    claimed_by=reviewer.id,
                    claimed_by_name=reviewer.name[:200],
                    claimed_at=now,
                    claimed_until=until,
                )
            )
            rows = session.scalars(
                select(ReviewItemRow)
                .where(
                    ReviewItemRow.project_id == project_id,
                    ReviewItemRow.call_id == call_id,
                    ReviewItemRow.state == ITEM_OPEN,
                    ReviewItemRow.claimed_by == reviewer.id,
                )
                .order_by(ReviewItemRow.priority, ReviewItemRow.metric)
            ).all()
            return [_item(row) for row in rows]

    def skip_review_call(self, project_id: str, call_id: str, reviewer: Reviewer) -> int:
        """Give back the reviewer's claim on a call and never hand it to them again (others still get
        it); returns how many items were released."""
        with self._session() as session:
            rows = session.scalars(
                select(ReviewItemRow).where(
                    ReviewItemRow.project_id == project_id,
                    ReviewItemRow.call_id == call_id,
                    ReviewItemRow.state == ITEM_OPEN,
                )
            ).all()
            released = 0
            for row in rows:
                if reviewer.id not in (row.skipped_by or []):
                    row.skipped_by = [*(row.skipped_by or []), reviewer.id]
                if row.claimed_by == reviewer.id:
                    row.claimed_by = row.claimed_by_name = None
                    row.claimed_at = row.claimed_until = None
                    released += 1
            return released

    # Labels -----------------------------------------------------------------------------------------

    def put_review_label(
        self, project_id: str, reviewer: Reviewer, label: NewLabel, *, replace: bool = False
    ) -> StoredLabel:
        """Keep a label and close the queue item of its (call, metric), in one transaction.

        A second label of the same call and metric by the same reviewer raises :class:`LabelExists`
        unless ``replace`` (then the first is edited: its values change, its ``created_at`` stays).
        """
        try:
            return self._put_label(project_id, reviewer, label, replace=replace)
        except IntegrityError:  # a concurrent submission of the same label won the insert
            if not replace:
                raise self._exists(label) from None
            try:
                return self._put_label(project_id, reviewer, label, replace=True)
            except IntegrityError as exc:
                raise StoreError(f"label could not be written: {exc.orig}") from None

    @staticmethod
    def _exists(label: NewLabel) -> LabelExists:
        return LabelExists(
            f"call {label.call_id} already has your label for {label.metric}; send replace=true to change it"
        )

    def _put_label(
        self, project_id: str, reviewer: Reviewer, label: NewLabel, *, replace: bool
    ) -> StoredLabel:
        now = datetime.now(UTC)
        with self._session() as session:
            row = session.scalars(
                select(ReviewLabelRow).where(
                    ReviewLabelRow.project_id == project_id,
                    ReviewLabelRow.call_id == label.call_id,
                    ReviewLabelRow.metric == label.metric,
                    ReviewLabelRow.reviewer_id == reviewer.id,
                )
            ).first()
            items = session.scalars(
                select(ReviewItemRow).where(
                    ReviewItemRow.project_id == project_id,
                    ReviewItemRow.call_id == label.call_id,
                    ReviewItemRow.metric == label.metric,
                )
            ).all()
            rule = items[0].rule if items else None
            replaced = row is not None
            if row is not None:
                if not replace:
                    raise self._exists(label)
                row.verdict, row.value, row.note = label.verdict, label.value, label.note
                row.judge = dict(label.judge)
                row.reviewer_name = reviewer.name[:200]
                row.updated_at = now
            else:
                row = ReviewLabelRow(
                    id=_new_id(),
                    project_id=project_id,
                    call_id=label.call_id,
                    metric=label.metric,
                    reviewer_id=reviewer.id,
                    reviewer_name=reviewer.name[:200],
                    verdict=label.verdict,
                    value=label.value,
                    note=label.note,
                    rule=rule,
                    judge=dict(label.judge),
                    created_at=now,
                )
                session.add(row)
            for item in items:
                if item.state != ITEM_DONE:
                    item.state = ITEM_DONE
                    item.done_at = now
            session.flush()
            return _label(row, replaced=replaced)

    def list_review_labels(
        self,
        project_id: str,
        *,
        metric: str | None = None,
        call_id: str | None = None,
        reviewer_id: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredLabel]:
        """Labels, oldest first."""
        query = select(ReviewLabelRow).where(ReviewLabelRow.project_id == project_id)
        if metric is not None:
            query = query.where(ReviewLabelRow.metric == metric)
        if call_id is not None:
            query = query.where(ReviewLabelRow.call_id == call_id)
        if reviewer_id is not None:
            query = query.where(ReviewLabelRow.reviewer_id == reviewer_id)
        if since is not None:
            query = query.where(ReviewLabelRow.created_at >= since)
        query = query.order_by(ReviewLabelRow.created_at, ReviewLabelRow.id)
        if limit is not None:
            query = query.limit(limit)
        with self._session() as session:
            return [_label(row) for row in session.scalars(query)]

    def labels_of_calls(self, project_id: str, call_ids: Sequence[str]) -> list[StoredLabel]:
        """Every label of these calls (what the review page shows as already given)."""
        if not call_ids:
            return []
        query = select(ReviewLabelRow).where(
            ReviewLabelRow.project_id == project_id, ReviewLabelRow.call_id.in_(list(call_ids))
        )
        with self._session() as session:
            return [_label(row) for row in session.scalars(query.order_by(ReviewLabelRow.created_at))]
