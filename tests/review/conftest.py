"""A metadata store on a real SQLite file, and a small call store in memory that answers the reads the
review queue makes (list a window's calls, read them with their scores)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from convoscope.model import Call, MetricResult
from convoscope.model.enums import MetricSource
from convoscope.store.base import CallFilter, CallPage, CallSummary, StoredCall
from convoscope.store.metadata import MetadataStore, ProjectInfo
from convoscope.testing import make_call

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class MemoryCalls:
    """The part of ``CallStore`` the review service reads, over calls kept in a dict."""

    def __init__(self) -> None:
        self.calls: dict[str, StoredCall] = {}

    def add(
        self, call_id: str, *, agent: str = "a", started: datetime = T0, scores: Sequence[Any] = ()
    ) -> Call:
        call = make_call(external_id=call_id, agent_id=agent, started_at=started.isoformat()).model_copy(
            update={"id": call_id}
        )
        results = [s if isinstance(s, MetricResult) else result(call_id, *s) for s in scores]
        self.calls[call_id] = StoredCall(call=call, scores=results, version=1, ingested_at=started)
        return call

    def list_calls(self, project_id: str, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        rows = sorted(self.calls.values(), key=lambda s: (s.call.started_at, s.call.id), reverse=True)
        rows = [
            s
            for s in rows
            if (filters.since is None or s.call.started_at >= filters.since)
            and (filters.until is None or s.call.started_at <= filters.until)
        ]
        start = int(cursor or 0)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return CallPage(
            items=[
                CallSummary(
                    id=s.call.id or "",
                    source=s.call.source,
                    external_id=s.call.external_id,
                    agent_id=s.call.agent_id,
                    started_at=s.call.started_at,
                    duration_s=0.0,
                    end_reason=s.call.end_reason,
                    turn_count=len(s.call.turns),
                    tool_call_count=0,
                    tool_error_count=0,
                    cost_usd=0.0,
                    has_recording=False,
                    tags=[],
                )
                for s in page
            ],
            next_cursor=str(start + limit) if more else None,
        )

    def get_call(self, project_id: str, call_id: str) -> StoredCall | None:
        return self.calls.get(call_id)

    def get_calls(self, project_id: str, call_ids: Collection[str]) -> dict[str, StoredCall]:
        return {c: self.calls[c] for c in call_ids if c in self.calls}


def result(
    call_id: str,
    metric: str,
    value: float | bool | str | None,
    passed: bool | None,
    *,
    source: MetricSource = MetricSource.TRANSCRIPT,
    evidence: dict[str, Any] | None = None,
) -> MetricResult:
    return MetricResult(
        call_id=call_id,
        metric=metric,
        value=value,
        passed=passed,
        source=source,
        evidence=evidence or {},
        evaluated_at=T0 + timedelta(minutes=5),
    )


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def project(meta: MetadataStore) -> ProjectInfo:
    return meta.ensure_project("default")


@pytest.fixture
def calls() -> MemoryCalls:
    return MemoryCalls()
