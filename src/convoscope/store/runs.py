"""Simulation runs in the metadata database: kept whole, listed newest first, read back for comparison."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .meta import SimulationRunRow

__all__ = ["RunStoreMixin", "RunSummary"]


@dataclass(frozen=True)
class RunSummary:
    """One stored run without its per-conversation detail."""

    id: str
    suite_id: str
    agent_id: str
    agent_version: str
    started_at: datetime
    finished_at: datetime | None
    passed: int
    failed: int
    errored: int


def _summary(row: SimulationRunRow) -> RunSummary:
    return RunSummary(
        row.id,
        row.suite_id,
        row.agent_id,
        row.agent_version,
        row.started_at,
        row.finished_at,
        row.passed,
        row.failed,
        row.errored,
    )


class RunStoreMixin:
    """Simulation runs; mixed into ``MetadataStore``, which provides ``_session``."""

    _session: Callable[[], AbstractContextManager[Session]]

    def save_run(self, project_id: str, report: Mapping[str, Any]) -> RunSummary:
        """Keep a run's result (``RunReport.to_json()``); saving the same run id again replaces it."""
        totals = report.get("totals") or {}
        values = {
            "project_id": project_id,
            "suite_id": str(report["suite"]),
            "agent_id": str(report["agent"]),
            "agent_version": str(report.get("agent_version") or ""),
            "started_at": datetime.fromisoformat(str(report["started_at"])),
            "finished_at": datetime.fromisoformat(str(report["finished_at"]))
            if report.get("finished_at")
            else None,
            "passed": int(totals.get("passed", 0)),
            "failed": int(totals.get("failed", 0)),
            "errored": int(totals.get("errored", 0)),
            "report": dict(report),
        }
        with self._session() as session:
            row = session.get(SimulationRunRow, str(report["run_id"]))
            if row is not None and row.project_id != project_id:
                raise ValueError(f"run {report['run_id']} belongs to another project")
            if row is None:
                row = SimulationRunRow(id=str(report["run_id"]), **values)
                session.add(row)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            session.flush()
            return _summary(row)

    def get_run(self, project_id: str, run_id: str) -> dict[str, Any] | None:
        """A kept run's whole result, or None."""
        with self._session() as session:
            row = session.get(SimulationRunRow, run_id)
            if row is None or row.project_id != project_id:
                return None
            return dict(row.report)

    def list_runs(
        self, project_id: str, *, suite_id: str | None = None, agent_id: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """The project's runs, newest first."""
        query = select(SimulationRunRow).where(SimulationRunRow.project_id == project_id)
        if suite_id is not None:
            query = query.where(SimulationRunRow.suite_id == suite_id)
        if agent_id is not None:
            query = query.where(SimulationRunRow.agent_id == agent_id)
        query = query.order_by(SimulationRunRow.started_at.desc(), SimulationRunRow.id.desc()).limit(limit)
        with self._session() as session:
            return [_summary(row) for row in session.scalars(query)]
