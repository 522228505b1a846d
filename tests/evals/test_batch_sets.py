"""Integrity of the later labelled batches (``benchmarks/evals_set_b`` onwards): every case loads as a call,
is holdout, carries its batch's id prefix, and each label file is balanced. Not the metric scores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from evals_holdout import LABELS, load_set, split_of, to_call  # noqa: E402

BATCHES = sorted(p for p in BENCHMARKS.glob("evals_set_*") if p.is_dir())


def test_the_batches_are_found() -> None:
    assert [p.name for p in BATCHES][:3] == ["evals_set_b", "evals_set_c", "evals_set_d"]


@pytest.mark.parametrize("batch", BATCHES, ids=lambda p: p.name)
def test_every_case_of_a_batch_loads_and_is_holdout(batch: Path) -> None:
    prefix = batch.name.removeprefix("evals_set_") + "-"
    ids: list[str] = []
    for label in LABELS:
        rows = load_set(label, batch)
        assert rows, (batch.name, label)
        positives = sum(row["label"] for row in rows) / len(rows)
        assert 0.35 <= positives <= 0.65, (batch.name, label, positives)
        for row in rows:
            assert row["id"].startswith(prefix), row["id"]
            assert row["split"] == "holdout" == split_of(row["id"]), row["id"]
            call = to_call(row)
            assert call.turns, row["id"]
            if label == "saydo":
                agent = {t.index for t in call.turns if t.role.value == "agent"}
                assert all(tc.turn_index in agent for tc in call.tool_calls), row["id"]
            ids.append(row["id"])
    assert len(ids) == len(set(ids))
