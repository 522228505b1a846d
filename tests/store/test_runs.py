"""Simulation runs kept in the metadata database: saved, replaced, listed newest first, per project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from convoscope.store.metadata import MetadataStore


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(metadata_url)
    yield store
    store.close()


def _report(run_id: str, started: str, *, suite: str = "smoke", passed: int = 3) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "suite": suite,
        "agent": "clinic",
        "agent_version": "1.0",
        "started_at": started,
        "finished_at": None,
        "totals": {"passed": passed, "failed": 1},
        "cells": [],
        "conversations": [{"verdict": "passed", "scores": {"latency": True}}],
    }


def test_runs_are_kept_whole_listed_newest_first_and_filtered(meta: MetadataStore) -> None:
    project = meta.ensure_project("a").id
    meta.save_run(project, _report("run-1", "2026-12-07T10:00:00+00:00"))
    meta.save_run(project, _report("run-2", "2026-12-07T11:00:00+00:00", suite="other"))
    summary = meta.save_run(project, _report("run-1", "2026-12-07T10:00:00+00:00", passed=5))  # replaced
    assert (summary.passed, summary.failed, summary.errored) == (5, 1, 0)
    assert [run.id for run in meta.list_runs(project)] == ["run-2", "run-1"]
    assert [run.id for run in meta.list_runs(project, suite_id="smoke")] == ["run-1"]
    kept = meta.get_run(project, "run-1")
    assert (
        kept is not None
        and kept["totals"]["passed"] == 5
        and kept["conversations"][0]["scores"] == {"latency": True}
    )


def test_a_run_is_invisible_to_another_project_and_cannot_be_taken_over(meta: MetadataStore) -> None:
    mine = meta.ensure_project("a").id
    theirs = meta.ensure_project("b").id
    meta.save_run(mine, _report("run-1", "2026-12-07T10:00:00+00:00"))
    assert meta.get_run(theirs, "run-1") is None
    assert meta.list_runs(theirs) == []
    with pytest.raises(ValueError, match="another project"):
        meta.save_run(theirs, _report("run-1", "2026-12-07T10:00:00+00:00"))
