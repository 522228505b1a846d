"""Simulation definitions in the metadata database: kept per project, kind and id, written in batches.

The store keeps bodies as JSON and knows nothing of their schema: validating them is the simulation
package's job (the server validates before it writes and again when it reads), so a definition written
by an older version is read through today's model. A batch (an imported YAML file) is written in one
transaction, so an import is whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import StoreError
from .meta import SimulationDefinitionRow

__all__ = ["DEFINITION_KINDS", "DefinitionStoreMixin", "StoredDefinition"]

DEFINITION_KINDS = ("scenario", "persona", "suite", "agent")
"""What a definition may be (the ``kind`` of a YAML document)."""


@dataclass(frozen=True)
class StoredDefinition:
    """One kept definition: its key, its JSON body and when it was first and last written."""

    kind: str
    id: str
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created: bool = False
    """True when the write that returned it created it (a PUT answers 201 instead of 200)."""


def _stored(row: SimulationDefinitionRow, *, created: bool = False) -> StoredDefinition:
    return StoredDefinition(row.kind, row.id, dict(row.body), row.created_at, row.updated_at, created)


def _check_kind(kind: str) -> None:
    if kind not in DEFINITION_KINDS:
        raise ValueError(f"unknown definition kind {kind!r} (one of {', '.join(DEFINITION_KINDS)})")


class DefinitionStoreMixin:
    """Simulation definitions; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    def put_definitions(
        self, project_id: str, items: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> list[StoredDefinition]:
        """Create or replace each ``(kind, id, body)`` in one transaction; returns them in order.

        Two writers racing to create the same key meet the primary key: the loser's whole batch is
        written again, this time as replacements, so the last write wins as with any other PUT.
        """
        for kind, _, _ in items:
            _check_kind(kind)
        try:
            return self._put(project_id, items)
        except IntegrityError:
            try:
                return self._put(project_id, items)
            except IntegrityError as exc:
                raise StoreError(f"simulation definitions could not be written: {exc.orig}") from None

    def _put(
        self, project_id: str, items: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> list[StoredDefinition]:
        now = datetime.now(UTC)
        out: list[StoredDefinition] = []
        with self._session() as session:
            for kind, ident, body in items:
                row = session.get(SimulationDefinitionRow, (project_id, kind, ident))
                created = row is None
                if row is None:
                    row = SimulationDefinitionRow(
                        project_id=project_id,
                        kind=kind,
                        id=ident,
                        body=dict(body),
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                else:
                    row.body = dict(body)
                    row.updated_at = now
                session.flush()
                out.append(_stored(row, created=created))
        return out

    def get_definition(self, project_id: str, kind: str, ident: str) -> StoredDefinition | None:
        """One kept definition, or None."""
        _check_kind(kind)
        with self._session() as session:
            row = session.get(SimulationDefinitionRow, (project_id, kind, ident))
            return None if row is None else _stored(row)

    def list_definitions(
        self, project_id: str, kind: str, *, ids: Collection[str] | None = None
    ) -> list[StoredDefinition]:
        """The project's definitions of one kind by id (only ``ids`` when given)."""
        _check_kind(kind)
        query = select(SimulationDefinitionRow).where(
            SimulationDefinitionRow.project_id == project_id, SimulationDefinitionRow.kind == kind
        )
        if ids is not None:
            if not ids:
                return []
            query = query.where(SimulationDefinitionRow.id.in_(sorted(set(ids))))
        with self._session() as session:
            return [_stored(row) for row in session.scalars(query.order_by(SimulationDefinitionRow.id))]

    def definition_ids(self, project_id: str, kind: str) -> set[str]:
        """The ids of the project's definitions of one kind (to check a suite's references)."""
        _check_kind(kind)
        query = select(SimulationDefinitionRow.id).where(
            SimulationDefinitionRow.project_id == project_id, SimulationDefinitionRow.kind == kind
        )
        with self._session() as session:
            return set(session.scalars(query))

    def delete_definition(self, project_id: str, kind: str, ident: str) -> bool:
        """Remove one definition; False when there was none."""
        _check_kind(kind)
        with self._session() as session:
            result = session.execute(
                delete(SimulationDefinitionRow).where(
                    SimulationDefinitionRow.project_id == project_id,
                    SimulationDefinitionRow.kind == kind,
                    SimulationDefinitionRow.id == ident,
                )
            )
            return bool(getattr(result, "rowcount", 0))
