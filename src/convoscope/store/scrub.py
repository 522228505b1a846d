"""Rewriting the payloads of processed outbox rows, for redaction before storage.

A request's raw body waits in the outbox until the worker has stored what it holds, and a drained row
keeps its payload until it is purged days later, so a crash can be replayed. For a project that masks
personal data, that raw body is one more copy of it. Once a row is processed, its payload is no longer
needed for a replay: a done row's is emptied, and a dead letter's is replaced by its masked form, which
a retry can still read.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import StoreError
from .meta import OutboxRow, OutboxStatusValue
from .metadata import MetadataStore

__all__ = ["ProcessedRow", "empty_done_payloads", "failed_payloads", "replace_payloads"]

_LEVEL = 1
"""The outbox's own compression level: the rows are transient."""

ProcessedRow = tuple[int, str, bytes]
"""A dead letter's id, content type and payload."""


@contextmanager
def _session(meta: MetadataStore) -> Iterator[Session]:
    try:
        with Session(meta.engine) as session, session.begin():
            yield session
    except SQLAlchemyError as exc:
        raise StoreError(f"metadata database error while rewriting outbox payloads: {exc}") from exc


def empty_done_payloads(meta: MetadataStore, ids: Collection[int]) -> int:
    """Empty the payload of every row of ``ids`` that is done; returns how many were emptied."""
    if not ids:
        return 0
    empty = zlib.compress(b"", _LEVEL)
    count = 0
    ordered = sorted(ids)
    with _session(meta) as session:
        for start in range(0, len(ordered), 500):
            result = session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(ordered[start : start + 500]),
                    OutboxRow.status == OutboxStatusValue.DONE,
                    OutboxRow.payload_bytes > 0,
                )
                .values(payload=empty, payload_bytes=0)
            )
            count += int(getattr(result, "rowcount", 0) or 0)
    return count


def failed_payloads(meta: MetadataStore, ids: Collection[int]) -> list[ProcessedRow]:
    """The rows of ``ids`` that are dead letters, with their payloads."""
    if not ids:
        return []
    with _session(meta) as session:
        rows = session.execute(
            select(OutboxRow.id, OutboxRow.content_type, OutboxRow.payload).where(
                OutboxRow.id.in_(sorted(ids)), OutboxRow.status == OutboxStatusValue.FAILED
            )
        ).all()
    return [(int(row_id), str(kind), zlib.decompress(payload)) for row_id, kind, payload in rows]


def replace_payloads(meta: MetadataStore, payloads: Mapping[int, bytes]) -> None:
    """Write new payloads for rows (their content type stays)."""
    if not payloads:
        return
    with _session(meta) as session:
        for row_id, payload in payloads.items():
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(payload=zlib.compress(payload, _LEVEL), payload_bytes=len(payload))
            )
