"""The service the API, the UI and the CLI share: filling a window idempotently, handing calls out,
labelling with the refusals a client sees, calibration kept in the project settings, and the export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from convoscope.errors import NotFound, PayloadError
from convoscope.model.enums import MetricSource
from convoscope.review import service
from convoscope.review.rules import LowScoreRule, QueueRules, RandomSampleRule
from convoscope.store.metadata import MetadataStore, ProjectInfo
from convoscope.store.reviews_meta import LabelExists, Reviewer

from .conftest import T0, MemoryCalls, result

ALICE = Reviewer("k-alice", "alice")
WINDOW: dict[str, Any] = {"since": T0 - timedelta(days=1), "until": T0 + timedelta(days=3)}


def _seed(calls: MemoryCalls) -> None:
    for i in range(6):
        passed = i % 3 != 0  # c0 and c3 fail
        calls.add(
            f"c{i}",
            agent="a" if i < 4 else "b",
            started=T0 + timedelta(hours=i),
            scores=[
                ("tool_call_success", passed, passed),
                result(f"c{i}", "csat", 4.0, True, source=MetricSource.JUDGE),
            ],
        )
    calls.add("old", started=T0 - timedelta(days=5), scores=[("tool_call_success", False, False)])


def test_a_fill_queues_by_rule_and_a_second_fill_adds_nothing(
    meta: MetadataStore, project: ProjectInfo, calls: MemoryCalls
) -> None:
    _seed(calls)
    rules = QueueRules(random_sample=RandomSampleRule(per_agent_per_day=1, seed=3))
    report = service.fill_queue(calls, meta, project.id, rules=rules, **WINDOW)
    assert report.examined == 6 and not report.truncated  # "old" is outside the window
    assert report.queued == {"split_verdict": 0, "low_score": 2, "random_sample": 2}
    again = service.fill_queue(calls, meta, project.id, rules=rules, **WINDOW)
    assert again.queued == {"split_verdict": 0, "low_score": 0, "random_sample": 0}
    items = meta.list_review_items(project.id)
    assert [i.rule for i in items][:2] == ["low_score", "low_score"]  # failures before the sample
    capped = service.fill_queue(calls, meta, project.id, rules=QueueRules(max_calls=2), **WINDOW)
    assert capped.truncated and capped.examined == 2


def test_labels_are_refused_naming_what_is_wrong(
    meta: MetadataStore, project: ProjectInfo, calls: MemoryCalls
) -> None:
    _seed(calls)

    def label(**given: Any) -> Any:
        fields: dict[str, Any] = {
            "call_id": "c0",
            "metric": "tool_call_success",
            "verdict": "pass",
            "value": None,
        }
        return service.submit_label(calls, meta, project.id, ALICE, **{**fields, **given})

    with pytest.raises(NotFound, match="call nope not found"):
        label(call_id="nope")
    with pytest.raises(PayloadError) as unknown:
        label(metric="no_such_metric")
    assert unknown.value.errors[0]["loc"] == "metric"
    with pytest.raises(PayloadError) as empty:
        label(verdict=None)
    assert empty.value.errors[0]["loc"] == "verdict"
    with pytest.raises(PayloadError) as bad:
        label(verdict="maybe")
    assert bad.value.errors[0]["loc"] == "verdict"
    kept = label(note="  the tool did run  ")
    assert kept.note == "the tool did run" and kept.judge["passed"] is False and kept.judge["version"] == "1"
    with pytest.raises(LabelExists):
        label()
    # A known metric the call has no result of may be labelled (nothing to compare yet).
    assert label(metric="hallucination").judge == {}


def test_labels_calibrate_the_metric_and_the_settings_carry_it(
    meta: MetadataStore, project: ProjectInfo, calls: MemoryCalls
) -> None:
    _seed(calls)
    for call_id, verdict in (("c0", "fail"), ("c1", "pass"), ("c2", "fail"), ("c3", "fail")):
        service.submit_label(
            calls,
            meta,
            project.id,
            ALICE,
            call_id=call_id,
            metric="tool_call_success",
            verdict=verdict,
            value=None,
        )
    # Pairs (person, judge): (fail, fail) (pass, pass) (fail, pass) (fail, fail): p_o = 3/4,
    # person fail 3/4, judge fail 2/4: p_e = (3*2 + 1*2)/16 = 1/2, kappa = (3/4 - 1/2)/(1/2) = 0.5.
    rows = {row.metric: row for row in service.calibration_report(meta, project.id)}
    assert rows["tool_call_success"].kappa == pytest.approx(0.5) and rows["tool_call_success"].compared == 4
    assert rows["csat"].status == "uncalibrated" and rows["csat"].kind == "judge"
    kept = meta.project_settings(project.id)["calibration"]["tool_call_success"]
    assert kept["kappa"] == pytest.approx(0.5) and kept["source"] == "review"


def test_next_calls_hand_out_claimed_calls_with_their_results(
    meta: MetadataStore, project: ProjectInfo, calls: MemoryCalls
) -> None:
    _seed(calls)
    rules = QueueRules(random_sample=RandomSampleRule(enabled=False), low_score=LowScoreRule())
    service.fill_queue(calls, meta, project.id, rules=rules, **WINDOW)
    peek = service.next_calls(calls, meta, project.id, ALICE, count=5, claim=False)
    assert [c.call_id for c in peek] == ["c0", "c3"] and all(
        i.claimed_by is None for c in peek for i in c.items
    )
    (handed,) = service.next_calls(calls, meta, project.id, ALICE)
    assert handed.call_id == "c0" and handed.stored is not None
    assert handed.result("tool_call_success") is not None and handed.items[0].claimed_by == "k-alice"
    both = service.next_calls(calls, meta, project.id, ALICE, count=3)
    assert [c.call_id for c in both] == ["c0", "c3"]


def test_the_export_is_one_row_per_label_with_the_transcript(
    meta: MetadataStore, project: ProjectInfo, calls: MemoryCalls
) -> None:
    _seed(calls)
    service.submit_label(
        calls, meta, project.id, ALICE, call_id="c1", metric="csat", verdict=None, value=2.0, note="rude"
    )
    (row,) = service.export_rows(calls, meta, project.id)
    assert (
        row["call_id"] == "c1" and row["metric"] == "csat" and row["label"] == 2.0 and row["note"] == "rude"
    )
    assert row["reviewer"] == {"id": "k-alice", "name": "alice"} and row["labelled_at"]
    assert row["judge"]["value"] == 4.0 and row["judge"]["passed"] is True and row["agent_id"] == "a"
    assert [t["role"] for t in row["transcript"]] == ["agent", "user", "agent", "user"]
    assert list(service.export_rows(calls, meta, project.id, metric="latency")) == []
