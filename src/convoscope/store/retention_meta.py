"""The metadata a deleted call leaves behind, removed; and the raw material past a project's limits.

A call is named in the metadata database by its id (jobs, review items and labels, alert events'
calls, simulation reports) and by its natural key (the raw vendor events it was assembled from), and its
payload sits in the outbox rows that carried it. :meth:`RetentionStoreMixin.forget_calls` removes all of
those: rows that belong to the call are deleted, and a row that only mentions it among others (an alert
event, a simulation report) keeps everything but the mention.

On SQLite a deleted row's bytes stay in the file's free pages and in the write-ahead log until they are
reused; deletions here run with ``secure_delete`` on (freed content is overwritten with zeros) and end
with a ``TRUNCATE`` checkpoint of the log, so the bytes leave the disk with the rows.

Mixed into :class:`~.metadata.MetadataStore`. The audit log is not touched: it is append-only, and the
record of a deletion names the call it deleted.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, cast, delete, or_, select
from sqlalchemy.orm import Session

from .alerts_meta import AlertEventRow
from .meta import JobRow, OutboxRow, OutboxStatusValue, SimulationRunRow, SourceEventRow
from .reviews_meta import ReviewItemRow, ReviewLabelRow

__all__ = ["ForgottenCall", "RetentionStoreMixin"]

_CHUNK = 500
_GONE = "(deleted)"


@dataclass(frozen=True, slots=True)
class ForgottenCall:
    """A deleted call: every id its versions had, and its natural key."""

    ids: frozenset[str]
    source: str
    external_id: str


def _scrub(value: Any, ids: Collection[str]) -> Any:
    """``value`` with every mention of ``ids`` gone: list items dropped, strings rewritten."""
    if isinstance(value, dict):
        return {key: _scrub(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, ids) for item in value if not (isinstance(item, str) and item in ids)]
    if isinstance(value, str):
        for call_id in ids:
            if call_id in value:
                value = value.replace(call_id, _GONE)
    return value


_SCAN_NEEDLES = 256
"""Up to this many names, a payload that is not JSON (OTLP protobuf) is searched byte by byte."""


def _strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, into)
    elif isinstance(value, list):
        for item in value:
            _strings(item, into)


def _mentions(payload: bytes, names: set[str], needles: Sequence[bytes]) -> bool:
    """Whether a stored request names one of the calls: any JSON string value equal to a name (or, for
    another format, the name's bytes anywhere, when there are few names)."""
    try:
        text = zlib.decompress(payload)
    except zlib.error:
        return False
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return len(needles) <= _SCAN_NEEDLES and any(needle in text for needle in needles)
    found: set[str] = set()
    _strings(document, found)
    return not found.isdisjoint(names)


class RetentionStoreMixin:
    """Removes what the metadata database holds of deleted calls and of raw material past its limit."""

    _session: Any
    _backend: str

    @contextmanager
    def _erasing(self) -> Iterator[Session]:
        """A session whose deletions overwrite the freed bytes; the log is truncated after the commit."""
        with self._session() as session:
            if self._backend == "sqlite":
                session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
            yield session
        self._truncate_log()

    def _truncate_log(self) -> None:
        if self._backend != "sqlite":
            return
        with self._session() as session:
            connection = session.connection()
            connection.exec_driver_sql("PRAGMA secure_delete = ON")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def forget_calls(self, project_id: str, calls: Sequence[ForgottenCall]) -> int:
        """Delete every metadata row of these calls and every mention of them; returns the rows changed."""
        if not calls:
            return 0
        ids = sorted({call_id for call in calls for call_id in call.ids})
        changed = 0
        with self._erasing() as session:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                for table in (JobRow, ReviewItemRow, ReviewLabelRow):
                    result = session.execute(
                        delete(table).where(table.project_id == project_id, table.call_id.in_(chunk))
                    )
                    changed += int(getattr(result, "rowcount", 0) or 0)
            for call in calls:
                result = session.execute(
                    delete(SourceEventRow).where(
                        SourceEventRow.project_id == project_id,
                        SourceEventRow.source == call.source,
                        SourceEventRow.external_id == call.external_id,
                    )
                )
                changed += int(getattr(result, "rowcount", 0) or 0)
            changed += self._scrub_mentions(session, project_id, ids)
            changed += self._drop_outbox_rows(session, project_id, calls)
        return changed

    def _scrub_mentions(self, session: Session, project_id: str, ids: Sequence[str]) -> int:
        """Alert events and simulation reports keep everything but the deleted calls' ids."""
        changed = 0
        wanted = set(ids)
        for model, column in (
            (AlertEventRow, "call_ids"),
            (SimulationRunRow, "report"),
        ):
            text = cast(getattr(model, column), String)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows = session.scalars(
                    select(model).where(
                        model.project_id == project_id, or_(*(text.contains(call_id) for call_id in chunk))
                    )
                ).all()
                for row in rows:
                    setattr(row, column, _scrub(getattr(row, column), wanted))
                    if isinstance(row, AlertEventRow):
                        row.summary = _scrub(row.summary, wanted)
                        row.details = _scrub(row.details, wanted)
                    changed += 1
        session.flush()
        return changed

    def _drop_outbox_rows(self, session: Session, project_id: str, calls: Sequence[ForgottenCall]) -> int:
        """Delete the outbox rows whose payload holds one of the calls (by id or by external id).

        A request still waiting that holds a deleted call is dropped whole, so the call does not come
        back when it is stored; the other calls it carried, if any, go with it.
        """
        names = {name for call in calls for name in (*call.ids, call.external_id)}
        needles = [name.encode() for name in sorted(names)]
        doomed: list[int] = []
        last = 0
        while True:
            rows = session.execute(
                select(OutboxRow.id, OutboxRow.payload)
                .where(OutboxRow.project_id == project_id, OutboxRow.id > last)
                .order_by(OutboxRow.id)
                .limit(_CHUNK)
            ).all()
            if not rows:
                break
            last = int(rows[-1][0])
            doomed.extend(int(row_id) for row_id, payload in rows if _mentions(payload, names, needles))
        for start in range(0, len(doomed), _CHUNK):
            session.execute(delete(OutboxRow).where(OutboxRow.id.in_(doomed[start : start + _CHUNK])))
        return len(doomed)

    def pending_blob_refs(self) -> set[str]:
        """The blobs that outbox rows not yet stored still name (they must not be deleted)."""
        with self._session() as session:
            refs = session.scalars(
                select(OutboxRow.blob_refs).where(OutboxRow.status == OutboxStatusValue.PENDING)
            ).all()
        return {str(sha) for row in refs for sha in (row or [])}

    def expire_raw_payloads(self, project_id: str, before: datetime) -> int:
        """Delete the raw vendor events received before ``before`` and the outbox rows already stored
        or dead-lettered that were received before it; returns how many rows went."""
        with self._erasing() as session:
            events = session.execute(
                delete(SourceEventRow).where(
                    SourceEventRow.project_id == project_id, SourceEventRow.received_at < before
                )
            )
            outbox = session.execute(
                delete(OutboxRow).where(
                    OutboxRow.project_id == project_id,
                    OutboxRow.received_at < before,
                    OutboxRow.status != OutboxStatusValue.PENDING,
                )
            )
            return int(getattr(events, "rowcount", 0) or 0) + int(getattr(outbox, "rowcount", 0) or 0)
