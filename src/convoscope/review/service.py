"""The review queue's operations over a project's stores, shared by the API, the UI and the CLI.

Each function takes the call store and the metadata store it works on, so the server (its services),
the web UI (the same services) and the CLI on a stopped data directory (the stores under the lock) run
the same code and give the same answers and errors: an unknown call is :class:`NotFound`, an unknown
metric or a label without a verdict or value a :class:`PayloadError` naming the field, a second label
of the same call and metric :class:`LabelExists`.

Reads go through three methods of the :class:`CallStore` protocol (:class:`CallReads`): list the
window's calls, then read their scores in batches. The rules then run on any store and on fakes in
tests; a fill is an occasional batch over a bounded window (``QueueRules.max_calls``), not a request
path.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from ..errors import NotFound, field_error
from ..evals.calibration import SETTINGS_KEY
from ..model.metric import MetricResult
from ..store.base import CallFilter, CallPage, StoredCall
from ..store.metadata import MetadataStore
from ..store.reviews_meta import NewLabel, Reviewer, StoredLabel, StoredReviewItem
from .calibration import MetricCalibration, agreement_settings, calibrate_labels
from .rules import (
    LOW_SCORE,
    RANDOM_SAMPLE,
    SPLIT_VERDICT,
    CallScores,
    QueueRules,
    low_score_candidates,
    random_sample_candidates,
    split_verdict_candidates,
)

__all__ = [
    "DEFAULT_CLAIM",
    "CallReads",
    "FillReport",
    "ReviewCall",
    "calibration_report",
    "export_rows",
    "fill_queue",
    "metric_kinds",
    "next_calls",
    "submit_label",
]

DEFAULT_CLAIM = timedelta(minutes=15)
"""How long a call handed to a reviewer stays theirs (no one else is given it meanwhile)."""

_PAGE = 500
"""Calls listed per page while filling."""
_BATCH = 100
"""Calls whose scores (or transcripts) are read at once."""
NOTE_CHARS = 10_000


@dataclass(frozen=True)
class FillReport:
    """What a fill looked at and queued."""

    since: datetime
    until: datetime
    examined: int
    queued: dict[str, int]
    """New items per rule (a (call, metric) already queued is not counted)."""
    candidates: int
    """Items the rules asked for, new or not."""
    truncated: bool
    """The window held more calls than ``max_calls``; the newest were examined."""

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "examined": self.examined,
            "queued": dict(self.queued),
            "candidates": self.candidates,
            "truncated": self.truncated,
        }


@dataclass
class ReviewCall:
    """A call handed to a reviewer: its queue items and its stored call (None if it is gone)."""

    call_id: str
    items: list[StoredReviewItem]
    stored: StoredCall | None
    labels: list[StoredLabel] = field(default_factory=list)
    """Labels already given to this call (by anyone)."""

    def result(self, metric: str) -> MetricResult | None:
        """The stored result of ``metric`` on this call."""
        if self.stored is None:
            return None
        return next((s for s in self.stored.scores if s.metric == metric), None)


class CallReads(Protocol):
    """The three reads of :class:`..store.base.CallStore` the review queue makes."""

    def list_calls(self, project_id: str, filters: CallFilter, *, limit: int, cursor: str | None) -> CallPage:
        """Calls matching the filters, newest first."""
        ...

    def get_call(self, project_id: str, call_id: str) -> StoredCall | None:
        """One call with its scores."""
        ...

    def get_calls(self, project_id: str, call_ids: Collection[str]) -> dict[str, StoredCall]:
        """Many calls with their scores, by id."""
        ...


# Filling -----------------------------------------------------------------------------------------------


def _window_calls(
    store: CallReads, project_id: str, since: datetime, until: datetime, limit: int
) -> tuple[list[tuple[str, str | None, datetime]], bool]:
    """(id, agent, start) of the calls started in ``[since, until)``, newest first, at most ``limit``."""
    found: list[tuple[str, str | None, datetime]] = []
    cursor: str | None = None
    while True:
        page = store.list_calls(project_id, CallFilter(since=since, until=until), limit=_PAGE, cursor=cursor)
        for item in page.items:
            if item.started_at >= until:
                continue  # the filter's upper bound may be inclusive
            if len(found) == limit:
                return found, True
            found.append((item.id, item.agent_id, item.started_at))
        cursor = page.next_cursor
        if cursor is None:
            return found, False


def _scored(
    store: CallReads, project_id: str, calls: Sequence[tuple[str, str | None, datetime]]
) -> Iterator[CallScores]:
    for start in range(0, len(calls), _BATCH):
        chunk = calls[start : start + _BATCH]
        stored = store.get_calls(project_id, [call_id for call_id, _, _ in chunk])
        for call_id, agent_id, started_at in chunk:
            found = stored.get(call_id)
            if found is not None:
                yield CallScores(call_id, agent_id, started_at, found.scores)


def fill_queue(
    store: CallReads,
    meta: MetadataStore,
    project_id: str,
    *,
    since: datetime,
    until: datetime,
    rules: QueueRules | None = None,
) -> FillReport:
    """Apply the rules to the calls started in ``[since, until)`` and queue what they pick.

    Idempotent: a (call, metric) already queued (by any rule, labelled or not) is not queued again, and
    the random sample counts the calls it already took per agent and day.
    """
    rules = rules or QueueRules()
    calls, truncated = _window_calls(store, project_id, since, until, rules.max_calls)
    taken: dict[tuple[str | None, date], set[str]] = {}
    for item in meta.review_items_of_rule(project_id, RANDOM_SAMPLE, since, until):
        taken.setdefault((item.agent_id, item.call_started_at.date()), set()).add(item.call_id)
    scored = list(_scored(store, project_id, calls))
    candidates = [
        *(c for call in scored for c in split_verdict_candidates(rules.split_verdict, call)),
        *(c for call in scored for c in low_score_candidates(rules.low_score, call)),
        *random_sample_candidates(rules.random_sample, scored, taken),
    ]
    queued = {SPLIT_VERDICT: 0, LOW_SCORE: 0, RANDOM_SAMPLE: 0}
    # One rule at a time, in priority order, so each count says which rule queued the pair.
    for rule in queued:
        queued[rule] = meta.enqueue_review_items(project_id, [c for c in candidates if c.rule == rule])
    return FillReport(
        since=since,
        until=until,
        examined=len(calls),
        queued=queued,
        candidates=len(candidates),
        truncated=truncated,
    )


# Handing out -------------------------------------------------------------------------------------------


def next_calls(
    store: CallReads,
    meta: MetadataStore,
    project_id: str,
    reviewer: Reviewer,
    *,
    count: int = 1,
    claim_for: timedelta = DEFAULT_CLAIM,
    claim: bool = True,
) -> list[ReviewCall]:
    """The next ``count`` calls for ``reviewer``, claimed for ``claim_for`` (their own claims first).

    With ``claim=False`` nothing is claimed: the open items in queue order, grouped by call (a look at
    the queue that hands nothing out).
    """
    groups: list[tuple[str, list[StoredReviewItem]]] = []
    if claim:
        taken: set[str] = set()
        for _ in range(count):
            items = meta.claim_review_call(project_id, reviewer, claim_for=claim_for, exclude=taken)
            if not items:
                break
            taken.add(items[0].call_id)
            groups.append((items[0].call_id, items))
    else:
        by_call: dict[str, list[StoredReviewItem]] = {}
        for item in meta.list_review_items(project_id, limit=max(count * 20, 100)):
            if item.call_id in by_call or len(by_call) < count:
                by_call.setdefault(item.call_id, []).append(item)
        groups = list(by_call.items())
    stored = store.get_calls(project_id, [call_id for call_id, _ in groups]) if groups else {}
    labels = meta.labels_of_calls(project_id, [call_id for call_id, _ in groups])
    return [
        ReviewCall(
            call_id=call_id,
            items=items,
            stored=stored.get(call_id),
            labels=[label for label in labels if label.call_id == call_id],
        )
        for call_id, items in groups
    ]


# Labelling ---------------------------------------------------------------------------------------------


def metric_kinds(settings: dict[str, Any]) -> dict[str, str]:
    """Every metric the server knows (the project's custom ones included) → its kind."""
    from ..evals import registry
    from ..evals.project import ProjectEvaluator

    ProjectEvaluator(settings)  # registers the project's custom metrics
    return {name: cls.kind.value for name, cls in registry.all_metrics().items()}


def _judge_of(result: MetricResult | None) -> dict[str, Any]:
    if result is None:
        return {}
    value = result.value
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    return {
        "value": value,
        "passed": result.passed,
        "version": result.version,
        "source": result.source.value,
        "error": result.error,
        "evaluated_at": result.evaluated_at.isoformat(),
    }


def submit_label(
    store: CallReads,
    meta: MetadataStore,
    project_id: str,
    reviewer: Reviewer,
    *,
    call_id: str,
    metric: str,
    verdict: str | None,
    value: float | None,
    note: str = "",
    replace: bool = False,
) -> StoredLabel:
    """Keep a person's label of one call's metric and update the metric's calibration.

    The metric must be one the server knows or one the call has a result of; the label needs a verdict
    (``pass``/``fail``) or a number, or both.
    """
    stored = store.get_call(project_id, call_id)
    if stored is None:
        raise NotFound(f"call {call_id} not found")
    result = next((s for s in stored.scores if s.metric == metric), None)
    settings = meta.project_settings(project_id)
    if result is None and metric not in metric_kinds(settings):
        raise field_error("metric", f"unknown metric {metric!r} (not a known metric, no result on this call)")
    if verdict is not None and verdict not in ("pass", "fail"):
        raise field_error("verdict", f"{verdict!r} is not pass or fail")
    if value is not None and not math.isfinite(value):
        raise field_error("value", "must be a finite number")
    if verdict is None and value is None:
        raise field_error("verdict", "give a verdict (pass or fail) or a value")
    if len(note) > NOTE_CHARS:
        raise field_error("note", f"longer than {NOTE_CHARS} characters")
    label = meta.put_review_label(
        project_id,
        reviewer,
        NewLabel(call_id, metric, verdict, value, note.strip(), _judge_of(result)),
        replace=replace,
    )
    _store_calibration(meta, project_id, metric, settings)
    return label


def _store_calibration(meta: MetadataStore, project_id: str, metric: str, settings: dict[str, Any]) -> None:
    """Keep the metric's agreement in the project settings, from where new results carry it; a metric
    whose labels compare nothing yet leaves an earlier calibration (``convoscope calibrate``) alone."""
    labels = meta.list_review_labels(project_id, metric=metric)
    (calibration,) = calibrate_labels(labels, metric_kinds(settings), always=[metric])
    if calibration.compared:
        meta.update_project_settings(
            project_id, (SETTINGS_KEY, metric), agreement_settings(calibration, datetime.now(UTC))
        )


def calibration_report(meta: MetadataStore, project_id: str) -> list[MetricCalibration]:
    """Every labelled metric's calibration, and every judge's (uncalibrated when nobody labelled it)."""
    kinds = metric_kinds(meta.project_settings(project_id))
    judges = [name for name, kind in kinds.items() if kind == "judge"]
    return calibrate_labels(meta.list_review_labels(project_id), kinds, always=judges)


# Export ------------------------------------------------------------------------------------------------


def _transcript(stored: StoredCall | None) -> list[dict[str, Any]]:
    if stored is None:
        return []
    return [
        {"index": t.index, "role": t.role.value, "text": t.text, "start_s": t.start_s, "end_s": t.end_s}
        for t in stored.call.turns
    ]


def label_row(label: StoredLabel) -> dict[str, Any]:
    """One label as plain JSON (without the call's transcript)."""
    return {
        "call_id": label.call_id,
        "metric": label.metric,
        "label": label.verdict if label.verdict is not None else label.value,
        "verdict": label.verdict,
        "value": label.value,
        "note": label.note,
        "reviewer": {"id": label.reviewer_id, "name": label.reviewer_name},
        "labelled_at": label.created_at.isoformat(),
        "updated_at": None if label.updated_at is None else label.updated_at.isoformat(),
        "rule": label.rule,
        "judge": dict(label.judge),
    }


def export_rows(
    store: CallReads,
    meta: MetadataStore,
    project_id: str,
    *,
    metric: str | None = None,
    since: datetime | None = None,
    transcripts: bool = True,
    call_ids: Collection[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The labels as an evaluation dataset, oldest first: each row a label with the judge's result and,
    with ``transcripts``, the call's agent and turns. ``call_id`` and ``label`` make a row a valid
    entry of ``convoscope calibrate --labels`` (export one metric at a time for that)."""
    labels = meta.list_review_labels(project_id, metric=metric, since=since)
    if call_ids is not None:
        wanted = set(call_ids)
        labels = [label for label in labels if label.call_id in wanted]
    for start in range(0, len(labels), _BATCH):
        chunk = labels[start : start + _BATCH]
        calls = store.get_calls(project_id, {label.call_id for label in chunk}) if transcripts else {}
        for label in chunk:
            row = label_row(label)
            if transcripts:
                stored = calls.get(label.call_id)
                row["agent_id"] = None if stored is None else stored.call.agent_id
                row["transcript"] = _transcript(stored)
            yield row
