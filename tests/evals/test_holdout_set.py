"""Integrity of the independent labelled evaluator set (``benchmarks/evals_set``), not the metric scores."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from convoscope.model import Call
from evals_holdout import LABELS, MIN_CASES, load_set, split_of, to_call

FIELDS = {"id", "label", "hard", "class", "domain", "turns", "split"}


@pytest.fixture(scope="module")
def cases() -> dict[str, list[dict[str, Any]]]:
    return {label: load_set(label) for label in LABELS}


def test_counts_meet_the_minimums(cases: dict[str, list[dict[str, Any]]]) -> None:
    for label, rows in cases.items():
        assert len(rows) >= MIN_CASES[label], label
    assert sum(len(rows) for rows in cases.values()) >= 600


def test_labels_are_balanced_and_hard_share_is_met(cases: dict[str, list[dict[str, Any]]]) -> None:
    everything = [row for rows in cases.values() for row in rows]
    assert sum(row["hard"] for row in everything) / len(everything) >= 0.4
    for label, rows in cases.items():
        positives = sum(row["label"] for row in rows) / len(rows)
        assert 0.35 <= positives <= 0.65, (label, positives)


def test_every_case_has_its_fields(cases: dict[str, list[dict[str, Any]]]) -> None:
    for label, rows in cases.items():
        for row in rows:
            assert FIELDS <= row.keys(), row["id"]
            assert isinstance(row["label"], bool) and isinstance(row["hard"], bool), row["id"]
            assert row["class"] and row["domain"], row["id"]
            if label.startswith("disclosure"):
                assert row["requirement"]["kind"] and row["requirement"]["phrase"], row["id"]


def test_ids_are_unique(cases: dict[str, list[dict[str, Any]]]) -> None:
    ids = [row["id"] for rows in cases.values() for row in rows]
    assert len(ids) == len(set(ids))


def test_split_follows_the_hash_rule_and_both_splits_exist(cases: dict[str, list[dict[str, Any]]]) -> None:
    for label, rows in cases.items():
        for row in rows:
            assert row["split"] == split_of(row["id"]), row["id"]
        splits = {row["split"] for row in rows}
        assert splits == {"tune", "holdout"}, label


def test_every_case_builds_a_valid_call(cases: dict[str, list[dict[str, Any]]]) -> None:
    for rows in cases.values():
        for row in rows:
            call = to_call(row)
            assert isinstance(call, Call)
            assert len(call.turns) == len(row["turns"])
            assert len(call.tool_calls) == len(row.get("tool_calls", []))
