"""The CI gate's verdicts: judge metrics asked k times, conversations that split, regressions with the
calls behind them, and thresholds over stored calls.

A release gate must not flip on a coin toss. One judge answer per conversation lets a judge's
inconsistency pass for the agent's, so the gate can ask each judge metric ``k`` times (distinct samples,
each cached apart) and call a conversation whose runs disagree on pass or fail *split*: not passed, not
failed, counted apart, and failing the gate only when asked to. A regression says which metric or
scenario got detectably worse than the baseline run (the interval test of :mod:`.compare`) and lists the
conversations behind it with what failed in them, so the person reading a CI log can open the calls
instead of re-running the suite. Without a simulation, thresholds check a metric's pass rate or mean
value over a window of stored calls (a nightly check of production).

Everything here is data; the JUnit, Markdown and annotation renderings live in ``report_junit`` and
``report_markdown``, and the command that runs suites and reaches a server lives in the CLI.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import JsonValue

from ..evals.base import AgentProfile
from ..evals.judges.base import JudgeParams
from ..evals.llm import JudgeClient
from ..evals.registry import default_set
from ..evals.runner import resolve_metrics
from ..evals.scenario import ScenarioChecksMetric
from ..model import MetricResult
from ..store.base import Aggregate, Bucket, SeriesPoint, SeriesQuery
from ..store.schema import METRIC_PREFIX, PASSED_PREFIX, SERIES_FIELDS
from .compare import ERRORED, OVERALL, Comparison, MetricComparison, compare_runs
from .definitions import Suite
from .runner import ConversationResult, RunReport, Scorer, default_scorer

__all__ = [
    "MAX_JUDGE_RUNS",
    "Case",
    "FailedMetric",
    "GateReport",
    "GateVerdict",
    "Regression",
    "SplitMetric",
    "SuiteOutcome",
    "Threshold",
    "ThresholdOutcome",
    "call_url",
    "evaluate_threshold",
    "gate_verdict",
    "judge_runs_scorer",
    "split_votes",
    "suite_outcome",
]

GateVerdict = Literal["passed", "failed", "split", "errored"]
MAX_JUDGE_RUNS = 20
"""The most times a judge metric may be asked (the judge metrics' own bound on ``k``)."""
EVIDENCE_CHARS = 600
"""How much of one failed metric's evidence a report quotes (the rest is on the call's page)."""


# ----- judge metrics asked k times


def judge_runs_scorer(
    suite: Suite, *, judge: JudgeClient | None, runs: int, profile: AgentProfile | None = None
) -> Scorer:
    """:func:`~.runner.default_scorer` with every judge metric asked ``runs`` times.

    Each judge metric then sends ``runs`` requests numbered by ``sample`` (distinct cached answers) and
    folds them: answers that disagree on pass or fail leave ``passed`` None with the votes in
    ``evidence.spread``, which :func:`split_votes` reads. Without a judge there is nothing to repeat and
    the default scorer is returned as is. The metric set is exactly the default scorer's: the suite's
    metrics, else the profile's, else the default set.
    """
    if not 1 <= runs <= MAX_JUDGE_RUNS:
        raise ValueError(f"judge runs must be within 1..{MAX_JUDGE_RUNS}, not {runs}")
    if judge is None or runs == 1:
        return default_scorer(suite, judge=judge, profile=profile)
    base = profile or AgentProfile()
    if suite.metrics:
        names = list(dict.fromkeys(suite.metrics))
    else:
        names = list(base.metrics) or [cls.name for cls in default_set(True)]
    built = resolve_metrics(base, judge_available=True, only=names)
    overrides: dict[str, dict[str, JsonValue]] = {name: dict(base.metrics.get(name, {})) for name in names}
    for name, metric in zip(names, built, strict=True):
        if isinstance(metric.params, JudgeParams):
            overrides[name]["k"] = runs
    return default_scorer(suite, judge=judge, profile=base.model_copy(update={"metrics": overrides}))


def split_votes(result: MetricResult) -> tuple[int, int] | None:
    """(passed, failed) runs of a judge metric whose runs disagreed on pass or fail, else None.

    A label disagreement where no run failed (pass against review) is the judge asking for a person,
    not a split verdict: it stays what the metric says (no verdict).
    """
    if result.passed is not None:
        return None
    spread = result.evidence.get("spread")
    votes = spread.get("passed") if isinstance(spread, dict) else None
    if not isinstance(votes, list):
        return None
    passed = sum(1 for vote in votes if vote is True)
    failed = sum(1 for vote in votes if vote is False)
    return (passed, failed) if passed and failed else None


def gate_verdict(result: ConversationResult) -> GateVerdict:
    """The run's verdict, except that a conversation nothing failed in but a judge split on is *split*."""
    if result.verdict != "passed":
        return result.verdict
    return "split" if any(split_votes(score) for score in result.scores) else "passed"


# ----- one conversation, one suite


@dataclass(frozen=True)
class FailedMetric:
    """A metric that failed on a conversation, with what its evidence says."""

    metric: str
    value: JsonValue
    checks: list[str]
    """The scenario checks that failed (for ``scenario_checks``), described."""
    evidence: str
    """The evidence as compact JSON, cut at :data:`EVIDENCE_CHARS`."""

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "metric": self.metric,
            "value": self.value,
            "checks": list(self.checks),
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class SplitMetric:
    """A judge metric whose runs disagreed."""

    metric: str
    passed: int
    failed: int

    def as_json(self) -> dict[str, JsonValue]:
        return {"metric": self.metric, "passed": self.passed, "failed": self.failed}


@dataclass(frozen=True)
class Case:
    """One conversation as the gate reports it (a JUnit test case)."""

    suite: str
    scenario: str
    persona: str
    iteration: int
    verdict: GateVerdict
    call_id: str | None
    external_id: str
    url: str | None
    reasons: list[str]
    failed: list[FailedMetric]
    split: list[SplitMetric]
    error_kind: str | None
    duration_s: float | None

    @property
    def classname(self) -> str:
        return f"{self.suite}.{self.scenario}"

    @property
    def name(self) -> str:
        return f"{self.persona} #{self.iteration}"

    @property
    def label(self) -> str:
        """How a report names the call: its id, else its external id."""
        return self.call_id or self.external_id

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "scenario": self.scenario,
            "persona": self.persona,
            "iteration": self.iteration,
            "verdict": self.verdict,
            "call_id": self.call_id,
            "external_id": self.external_id,
            "url": self.url,
            "reasons": list(self.reasons),
            "failed": [f.as_json() for f in self.failed],
            "split": [s.as_json() for s in self.split],
        }


def call_url(server_url: str | None, call_id: str | None) -> str | None:
    """The call's page in the UI (``/calls/{id}``), when the calls went to a server the reader can open."""
    if not server_url or not call_id:
        return None
    return f"{server_url.rstrip('/')}/calls/{call_id}"


def _compact(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"


def _describe(check: Mapping[str, Any]) -> str:
    """A failed scenario check in one line: its kind and what it expected, then what was seen."""
    kind = str(check.get("check"))
    rest = {k: v for k, v in check.items() if k not in ("check", "passed")}
    return f"{kind} {_compact(rest)}" if rest else kind


def _failed(scores: Sequence[MetricResult]) -> list[FailedMetric]:
    out: list[FailedMetric] = []
    for score in scores:
        if score.passed is not False:
            continue
        checks: list[str] = []
        failed = score.evidence.get("failed") if score.metric == ScenarioChecksMetric.name else None
        if isinstance(failed, list):
            checks = [_describe(check) for check in failed if isinstance(check, dict)]
        evidence = {k: v for k, v in score.evidence.items() if k not in ("checks", "failed", "judge")}
        out.append(FailedMetric(score.metric, score.value, checks, _compact(evidence) if evidence else ""))
    return out


def _case(suite: str, result: ConversationResult, server_url: str | None) -> Case:
    call = result.outcome.call
    split = [
        SplitMetric(score.metric, *votes)
        for score in result.scores
        if (votes := split_votes(score)) is not None
    ]
    return Case(
        suite=suite,
        scenario=result.item.scenario.id,
        persona=result.item.persona.id,
        iteration=result.item.iteration,
        verdict=gate_verdict(result),
        call_id=call.id,
        external_id=call.external_id,
        url=call_url(server_url, call.id),
        reasons=result.reasons,
        failed=_failed(result.scores),
        split=split,
        error_kind=result.outcome.error_kind if result.outcome.status == "errored" else None,
        duration_s=call.duration_s,
    )


@dataclass(frozen=True)
class Regression:
    """A metric, or a scenario's pass rate, detectably worse than in the baseline run."""

    kind: Literal["metric", "scenario"]
    name: str
    """The metric (``(conversation passed)`` and ``(conversation errored)`` for the run as a whole), or
    the scenario id."""
    comparison: MetricComparison
    cases: list[Case]
    """The candidate's conversations behind it: those the metric failed on, or the scenario's failed and
    errored ones."""

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "kind": self.kind,
            "name": self.name,
            "comparison": self.comparison.as_json(),
            "calls": [case.as_json() for case in self.cases],
        }


@dataclass
class SuiteOutcome:
    """One suite's run against the agent, its conversations, and its comparison with a baseline."""

    suite: str
    agent: str
    agent_version: str
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    cases: list[Case]
    comparison: Comparison | None = None
    regressions: list[Regression] = field(default_factory=list)

    def totals(self) -> Counter[str]:
        return Counter(case.verdict for case in self.cases)

    def scenarios(self) -> list[dict[str, JsonValue]]:
        """Per scenario: the count of each verdict and the pass rate (passed over passed and failed;
        split and errored conversations are counted apart)."""
        by: dict[str, Counter[str]] = {}
        for case in self.cases:
            by.setdefault(case.scenario, Counter())[case.verdict] += 1
        rows: list[dict[str, JsonValue]] = []
        for scenario in sorted(by):
            counts = by[scenario]
            decided = counts["passed"] + counts["failed"]
            rows.append(
                {
                    "scenario": scenario,
                    **{v: counts[v] for v in ("passed", "failed", "split", "errored")},
                    "pass_rate": counts["passed"] / decided if decided else None,
                }
            )
        return rows

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "suite": self.suite,
            "agent": self.agent,
            "agent_version": self.agent_version,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "totals": {v: self.totals()[v] for v in ("passed", "failed", "split", "errored")},
            "scenarios": list(self.scenarios()),
            "baseline_run": self.comparison.baseline_run if self.comparison else None,
            "comparison": self.comparison.as_json() if self.comparison else None,
            "regressions": [r.as_json() for r in self.regressions],
            "conversations": [case.as_json() for case in self.cases],
        }


def _behind(metric: str, cases: Sequence[Case], results: Mapping[int, ConversationResult]) -> list[Case]:
    if metric == OVERALL:
        return [c for c in cases if c.verdict == "failed"]
    if metric == ERRORED:
        return [c for c in cases if c.verdict == "errored"]
    return [
        case
        for index, case in enumerate(cases)
        if any(s.metric == metric and s.passed is False for s in results[index].scores)
    ]


def _only(run: Mapping[str, Any], scenario: str) -> dict[str, Any]:
    conversations = [c for c in run.get("conversations", []) if c.get("scenario") == scenario]
    return {**run, "conversations": conversations}


def suite_outcome(
    report: RunReport, *, baseline: Mapping[str, Any] | None = None, server_url: str | None = None
) -> SuiteOutcome:
    """The gate's view of a finished run; with ``baseline`` (a kept run's result of the same suite),
    every metric and every scenario that is detectably worse, with the conversations behind it.

    Scenarios are compared one by one too: a regression confined to one scenario of many can hide in
    the run's overall rate.
    """
    ordered = sorted(report.results, key=lambda r: (r.item.scenario.id, r.item.persona.id, r.item.iteration))
    cases = [_case(report.suite_id, result, server_url) for result in ordered]
    outcome = SuiteOutcome(
        suite=report.suite_id,
        agent=report.agent_id,
        agent_version=report.agent_version,
        run_id=report.run_id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        cases=cases,
    )
    if baseline is None:
        return outcome
    candidate = report.to_json()
    outcome.comparison = compare_runs(baseline, candidate)
    results = dict(enumerate(ordered))
    for metric in outcome.comparison.regressions:
        outcome.regressions.append(
            Regression("metric", metric.metric, metric, _behind(metric.metric, cases, results))
        )
    for scenario in sorted({case.scenario for case in cases}):
        mine = [case for case in cases if case.scenario == scenario]
        for metric in compare_runs(_only(baseline, scenario), _only(candidate, scenario)).regressions:
            if metric.metric in (OVERALL, ERRORED):
                behind = [
                    c for c in mine if c.verdict == ("failed" if metric.metric == OVERALL else "errored")
                ]
                outcome.regressions.append(Regression("scenario", scenario, metric, behind))
    return outcome


# ----- thresholds over stored calls

Operator = Literal[">=", "<=", ">", "<"]
_THRESHOLD = re.compile(
    r"^\s*(?P<field>[A-Za-z0-9_.:-]+)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"\s*(?P<percent>%?)\s*$"
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Threshold:
    """``NAME OP VALUE`` over a window of stored calls.

    ``NAME`` is a series field: ``passed:<metric>`` (the metric's pass rate), ``metric:<metric>`` (its
    mean value), a call or turn column (``duration_s``, ``cost_usd``...: its mean; ``calls``: the count),
    or a bare metric name, which means its pass rate, the usual gate. ``VALUE`` may end in ``%``.
    """

    text: str
    field: str
    op: Operator
    value: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Read ``NAME>=VALUE``; a ValueError says what was expected."""
        found = _THRESHOLD.match(text)
        if found is None:
            raise ValueError(
                f"--metric {text!r}: expected NAME>=VALUE (or <=, >, <), e.g. tool_call_success>=0.95, "
                "passed:expected_outcome>=90%, metric:csat>=4, duration_s<=300"
            )
        name = found["field"]
        if not (name in SERIES_FIELDS or name.startswith((METRIC_PREFIX, PASSED_PREFIX))):
            name = PASSED_PREFIX + name
        if name in (METRIC_PREFIX, PASSED_PREFIX):
            raise ValueError(f"--metric {text!r}: no metric named after {name!r}")
        value = float(found["value"]) / (100.0 if found["percent"] else 1.0)
        op: Operator = found["op"]  # type: ignore[assignment]  # the pattern admits only these four
        return cls(text=text.strip(), field=name, op=op, value=value)

    @property
    def describes(self) -> str:
        """What is measured, in words."""
        if self.field.startswith(PASSED_PREFIX):
            return f"pass rate of {self.field[len(PASSED_PREFIX) :]}"
        if self.field.startswith(METRIC_PREFIX):
            return f"mean of {self.field[len(METRIC_PREFIX) :]}"
        return "number of calls" if self.field == "calls" else f"mean {self.field}"

    def query(
        self, *, since: datetime, until: datetime, agent: str | None = None, source: Any = None
    ) -> SeriesQuery:
        """The series query whose points :func:`evaluate_threshold` folds (daily means and counts)."""
        return SeriesQuery(
            field=self.field,
            aggregate=Aggregate.AVG,
            bucket=Bucket.DAY,
            since=since,
            until=until,
            agent_id=agent,
            source=source,
        )


@dataclass(frozen=True)
class ThresholdOutcome:
    """A threshold checked over the window: what was observed over how many values, and whether it held.

    A window with no values fails: a nightly check that finds nothing to check has found a problem
    (no calls arrived, or the metric is misnamed), and passing it would hide that.
    """

    threshold: Threshold
    observed: float | None
    count: int
    passed: bool

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "metric": self.threshold.text,
            "field": self.threshold.field,
            "op": self.threshold.op,
            "value": self.threshold.value,
            "observed": self.observed,
            "count": self.count,
            "passed": self.passed,
        }


def evaluate_threshold(threshold: Threshold, points: Sequence[SeriesPoint]) -> ThresholdOutcome:
    """Fold a series' daily points into the window's value (means weighted by their counts; the
    ``calls`` field sums) and compare it with the threshold."""
    valued = [p for p in points if p.value is not None and p.count > 0]
    count = sum(p.count for p in valued)
    if not valued:
        return ThresholdOutcome(threshold, None, 0, False)
    if threshold.field == "calls":
        observed = float(sum(p.value or 0.0 for p in valued))
    else:
        observed = math.fsum((p.value or 0.0) * p.count for p in valued) / count
    return ThresholdOutcome(threshold, observed, count, _COMPARE[threshold.op](observed, threshold.value))


# ----- the whole gate


@dataclass
class GateReport:
    """Everything one ``convoscope test`` found: suites run, or thresholds checked, and the verdict."""

    suites: list[SuiteOutcome] = field(default_factory=list)
    thresholds: list[ThresholdOutcome] = field(default_factory=list)
    server_url: str | None = None
    judge_runs: int = 1
    split_fails: bool = False
    window: tuple[datetime, datetime] | None = None
    agent: str | None = None

    def totals(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for suite in self.suites:
            totals.update(suite.totals())
        return totals

    @property
    def regressions(self) -> list[tuple[SuiteOutcome, Regression]]:
        return [(suite, regression) for suite in self.suites for regression in suite.regressions]

    @property
    def failed_thresholds(self) -> list[ThresholdOutcome]:
        return [t for t in self.thresholds if not t.passed]

    def exit_code(self) -> int:
        """2 when a conversation errored (a broken test, not a verdict on the agent); else 1 when one
        failed, a metric or scenario regressed, a threshold was missed, or (with ``split_fails``) a
        judge split; else 0. Split verdicts alone never fail the gate unless asked to."""
        totals = self.totals()
        if totals["errored"]:
            return 2
        if totals["failed"] or self.regressions or self.failed_thresholds:
            return 1
        return 1 if self.split_fails and totals["split"] else 0

    @property
    def status(self) -> str:
        return {0: "passed", 1: "failed", 2: "errored"}[self.exit_code()]

    def as_json(self) -> dict[str, JsonValue]:
        totals = self.totals()
        return {
            "status": self.status,
            "exit_code": self.exit_code(),
            "totals": {v: totals[v] for v in ("passed", "failed", "split", "errored")},
            "judge_runs": self.judge_runs,
            "split_fails": self.split_fails,
            "server": self.server_url,
            "agent": self.agent,
            "window": [moment.isoformat() for moment in self.window] if self.window else None,
            "suites": [suite.as_json() for suite in self.suites],
            "regressions": [
                {"suite": suite.suite, **regression.as_json()} for suite, regression in self.regressions
            ],
            "thresholds": [t.as_json() for t in self.thresholds],
        }
