"""What the simulation pages show, worked out from kept runs: a list row, the scenario × persona matrix,
the failing metrics, the failures, and the A/B comparison's rows.

Everything here reads a kept run as stored (``RunResult`` as JSON, what ``GET
/api/v1/simulation/runs/{id}`` answers) and returns plain values for the templates; the statistics of a
comparison are :func:`convoscope.simulate.compare.compare_runs`' own, only formatted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ...simulate.compare import ERRORED, OVERALL, Comparison, MetricComparison
from ...store.metadata import RunSummary

__all__ = [
    "CompareRow",
    "Failure",
    "FailingMetric",
    "Matrix",
    "MatrixCell",
    "RunRow",
    "compare_rows",
    "failing_metrics",
    "failures",
    "matrix",
    "percent",
    "run_row",
]

CELL_LINKS = 20
"""Conversations linked in one matrix cell; the rest are counted."""
FAILURES_SHOWN = 100
"""Failed or errored conversations listed under the matrix (the first ones, in the run's order)."""


def percent(rate: float | None) -> str:
    """A rate as the pages write it (``75.0 %``), or an em dash when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f} %"


def _pass_rate(passed: int, failed: int) -> float | None:
    """Passed over completed: errored conversations say nothing about the agent (as the CLI counts)."""
    return passed / (passed + failed) if passed + failed else None


class _Tally:
    """Counts of conversations by verdict and what the pages derive from them (the rows and cells)."""

    passed: int
    failed: int
    errored: int

    @property
    def count(self) -> int:
        return self.passed + self.failed + self.errored

    @property
    def pass_rate(self) -> float | None:
        return _pass_rate(self.passed, self.failed)

    @property
    def pass_rate_text(self) -> str:
        return percent(self.pass_rate)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class RunRow(_Tally):
    """One kept run as the list shows it."""

    id: str
    suite: str
    agent: str
    agent_version: str
    started_at: datetime
    finished_at: datetime | None
    passed: int
    failed: int
    errored: int
    status: str = "done"
    planned: int | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def progress(self) -> str:
        """``7 of 12`` while the run goes on (``7 so far`` when its size is not known)."""
        return f"{self.count} of {self.planned}" if self.planned is not None else f"{self.count} so far"


def run_row(summary: RunSummary | None, report: Mapping[str, Any] | None) -> RunRow:
    """The row of a run from its summary, its kept result, or both (the result says whether it is still
    running: a run kept after it ran elsewhere has no status and is done)."""
    if report is not None:
        totals = report.get("totals") or {}
        started = _moment(report.get("started_at"))
        return RunRow(
            id=str(report.get("run_id", "")),
            suite=str(report.get("suite", "")),
            agent=str(report.get("agent", "")),
            agent_version=str(report.get("agent_version") or ""),
            started_at=started if started is not None else datetime.min.replace(tzinfo=UTC),
            finished_at=_moment(report.get("finished_at")),
            passed=int(totals.get("passed", 0)),
            failed=int(totals.get("failed", 0)),
            errored=int(totals.get("errored", 0)),
            status=str(report.get("status") or "done"),
            planned=report.get("planned"),
            error=report.get("error"),
        )
    if summary is None:
        raise ValueError("a run row needs the run's summary or its kept result")
    return RunRow(
        id=summary.id,
        suite=summary.suite_id,
        agent=summary.agent_id,
        agent_version=summary.agent_version,
        started_at=summary.started_at,
        finished_at=summary.finished_at,
        passed=summary.passed,
        failed=summary.failed,
        errored=summary.errored,
    )


@dataclass(frozen=True)
class ConversationLink:
    """One conversation of a cell: its iteration, verdict and stored call (when the run names one)."""

    iteration: int
    verdict: str
    call_id: str | None


@dataclass
class MatrixCell(_Tally):
    """One (scenario, persona) pair of a run."""

    scenario: str
    persona: str
    passed: int = 0
    failed: int = 0
    errored: int = 0
    conversations: list[ConversationLink] = field(default_factory=list)
    more: int = 0
    """Conversations of the cell not linked (over ``CELL_LINKS``)."""

    @property
    def verdict(self) -> str:
        """``pass`` when every conversation passed, ``fail`` when any failed, else ``error``."""
        if self.failed:
            return "fail"
        if self.errored or not self.count:
            return "error"
        return "pass"


@dataclass(frozen=True)
class Matrix:
    """Scenarios (rows) × personas (columns) of a run."""

    scenarios: list[str]
    personas: list[str]
    cells: dict[tuple[str, str], MatrixCell]

    def cell(self, scenario: str, persona: str) -> MatrixCell | None:
        return self.cells.get((scenario, persona))


def _conversations(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = report.get("conversations") or []
    return [c for c in found if isinstance(c, Mapping)]


def matrix(report: Mapping[str, Any]) -> Matrix:
    """The run's cells (their counts as kept) with a link to each conversation's call."""
    cells: dict[tuple[str, str], MatrixCell] = {}
    for kept in report.get("cells") or []:
        key = (str(kept["scenario"]), str(kept["persona"]))
        cells[key] = MatrixCell(
            *key, passed=int(kept["passed"]), failed=int(kept["failed"]), errored=int(kept["errored"])
        )
    counted = bool(cells)
    for conversation in _conversations(report):
        key = (str(conversation.get("scenario")), str(conversation.get("persona")))
        cell = cells.setdefault(key, MatrixCell(*key))
        verdict = str(conversation.get("verdict"))
        if not counted and verdict in ("passed", "failed", "errored"):  # no cells kept: count here
            setattr(cell, verdict, getattr(cell, verdict) + 1)
        if len(cell.conversations) >= CELL_LINKS:
            cell.more += 1
            continue
        call_id = conversation.get("call_id")
        iteration = int(conversation.get("iteration") or 1)
        cell.conversations.append(ConversationLink(iteration, verdict, str(call_id) if call_id else None))
    for cell in cells.values():
        cell.conversations.sort(key=lambda c: c.iteration)
    scenarios = list(dict.fromkeys(s for s, _ in cells))
    personas = list(dict.fromkeys(p for _, p in cells))
    return Matrix(scenarios, personas, cells)


@dataclass(frozen=True)
class FailingMetric:
    """A metric that failed on some of the run's conversations."""

    metric: str
    failed: int
    scored: int
    pairs: list[str]
    """The scenario × persona pairs it failed in."""

    @property
    def fail_rate_text(self) -> str:
        return percent(self.failed / self.scored if self.scored else None)


def failing_metrics(report: Mapping[str, Any]) -> list[FailingMetric]:
    """Each metric that failed at least once, most failures first."""
    counts: dict[str, list[int]] = {}
    pairs: dict[str, dict[str, None]] = {}
    for conversation in _conversations(report):
        scores = conversation.get("scores") or {}
        for metric, passed in scores.items():
            if not isinstance(passed, bool):
                continue
            slot = counts.setdefault(str(metric), [0, 0])
            slot[1] += 1
            if not passed:
                slot[0] += 1
                pair = f"{conversation.get('scenario')} × {conversation.get('persona')}"
                pairs.setdefault(str(metric), {})[pair] = None
    found = [FailingMetric(m, f, n, list(pairs.get(m, {}))) for m, (f, n) in counts.items() if f]
    return sorted(found, key=lambda m: (-m.failed, m.metric))


@dataclass(frozen=True)
class Failure:
    """A failed or errored conversation with its reasons."""

    scenario: str
    persona: str
    iteration: int
    verdict: str
    reasons: list[str]
    call_id: str | None


def failures(report: Mapping[str, Any]) -> tuple[list[Failure], int]:
    """The first ``FAILURES_SHOWN`` failed or errored conversations, and how many there are in all."""
    bad = [c for c in _conversations(report) if c.get("verdict") in ("failed", "errored")]
    shown = [
        Failure(
            str(c.get("scenario")),
            str(c.get("persona")),
            int(c.get("iteration") or 1),
            str(c.get("verdict")),
            [str(r) for r in c.get("reasons") or []],
            str(c["call_id"]) if c.get("call_id") else None,
        )
        for c in bad[:FAILURES_SHOWN]
    ]
    return shown, len(bad)


@dataclass(frozen=True)
class CompareRow:
    """One metric of an A/B comparison, as computed by ``compare_runs``, with its words."""

    metric: str
    label: str
    baseline: str
    candidate: str
    delta: float | None
    ci_low: float
    ci_high: float
    verdict: str
    higher_is_better: bool

    @property
    def delta_text(self) -> str:
        return "—" if self.delta is None else f"{self.delta * 100:+.1f} pp"

    @property
    def interval_text(self) -> str:
        return f"[{self.ci_low * 100:+.1f}, {self.ci_high * 100:+.1f}] pp"

    @property
    def verdict_class(self) -> str:
        return {"better": "ok", "worse": "bad"}.get(self.verdict, "muted")


_LABELS = {
    OVERALL: "Overall pass rate (conversations passed)",
    ERRORED: "Errored conversations (lower is better)",
}


def _share(passed: int, n: int, rate: float | None) -> str:
    return f"{percent(rate)} ({passed} of {n})" if n else "not scored"


def _compare_row(metric: MetricComparison) -> CompareRow:
    base, cand = metric.baseline, metric.candidate
    return CompareRow(
        metric=metric.metric,
        label=_LABELS.get(metric.metric, metric.metric),
        baseline=_share(base.passed, base.n, base.rate),
        candidate=_share(cand.passed, cand.n, cand.rate),
        delta=metric.delta,
        ci_low=metric.ci_low,
        ci_high=metric.ci_high,
        verdict=metric.verdict,
        higher_is_better=metric.higher_is_better,
    )


def compare_rows(comparison: Comparison) -> Sequence[CompareRow]:
    """The overall pass rate first, then the comparison's metrics in its own order (errored, then each
    metric by name)."""
    ordered = sorted(comparison.metrics, key=lambda metric: metric.metric != OVERALL)
    return [_compare_row(metric) for metric in ordered]
