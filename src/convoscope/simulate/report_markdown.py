"""The gate's result for people: a Markdown report (a CI job summary, a pull-request comment) and GitHub
workflow annotations.

The report leads with the verdict and totals, then each suite's per-scenario pass rates, then what made
the gate fail, each with the calls behind it: regressions against the baseline (from the interval test
of :mod:`.compare`), failed and errored conversations with their failed checks and evidence, split judge
verdicts, and thresholds. Every call is named by its id and external id and, when the calls went to a
server, links to its page, so a reviewer goes from the CI summary to the transcript in one click. Lists
are cut at a bound (GitHub keeps at most 1 MiB of a step's summary); the JSON summary holds everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from .gate import Case, GateReport, Regression, SuiteOutcome

__all__ = ["markdown", "workflow_annotations"]

LISTED = 20
"""Calls listed under one regression, and failed conversations listed per suite."""
_ICON = {"passed": "✅", "failed": "❌", "errored": "💥"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: object) -> str:
    plain = str(text).replace("`", "'")
    return f"`{plain}`"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _call(case: Case) -> str:
    name = _code(case.label)
    linked = f"[{name}]({case.url})" if case.url else name
    where = f"{case.scenario} × {case.persona} #{case.iteration}"
    external = f" · external id {_code(case.external_id)}" if case.call_id else ""
    return f"{linked}{external} · {where}"


def _case_lines(case: Case, indent: str, *, only: str | None = None) -> list[str]:
    """A call and why it failed; with its failed checks and evidence unless ``only`` names the metric
    whose reasons alone are shown (under a regression, the details are in the failures section)."""
    reasons = [r for r in case.reasons if only is None or r.startswith(f"{only}")]
    lines = [f"{indent}- {_call(case)}: {_cell('; '.join(reasons or case.reasons)) or case.verdict}"]
    if only is not None:
        return lines
    for failed in case.failed:
        for check in failed.checks:
            lines.append(f"{indent}  - {failed.metric}: {_code(check)}")
        if failed.evidence:
            lines.append(f"{indent}  - {failed.metric} evidence: {_code(failed.evidence)}")
    for split in case.split:
        lines.append(
            f"{indent}  - {split.metric}: judge runs split, {split.passed} passed / {split.failed} failed"
        )
    return lines


def _regression(regression: Regression) -> list[str]:
    metric = regression.comparison
    base, cand = metric.baseline, metric.candidate
    delta = "n/a" if metric.delta is None else f"{metric.delta:+.0%}"
    what = (
        f"scenario {_code(regression.name)} ({metric.metric})"
        if regression.kind == "scenario"
        else f"metric {_code(regression.name)}"
    )
    lines = [
        f"- **{what}**: {_percent(base.rate)} ({base.passed}/{base.n}) → {_percent(cand.rate)} "
        f"({cand.passed}/{cand.n}), {delta} [{metric.ci_low:+.0%}, {metric.ci_high:+.0%}]; "
        f"{len(regression.cases)} call(s) behind it"
    ]
    only = regression.name if regression.kind == "metric" and not regression.name.startswith("(") else ""
    for case in regression.cases[:LISTED]:
        lines.extend(_case_lines(case, "  ", only=only))
    if len(regression.cases) > LISTED:
        lines.append(f"  - … and {len(regression.cases) - LISTED} more (see the JSON summary)")
    return lines


def _suite(suite: SuiteOutcome, split_fails: bool) -> list[str]:
    version = f" {suite.agent_version}" if suite.agent_version else ""
    lines = [
        f"### {_cell(suite.suite)} against {_cell(suite.agent)}{_cell(version)} (run {_code(suite.run_id)})",
        "",
        "| scenario | passed | failed | split | errored | pass rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in suite.scenarios():
        rate = row["pass_rate"]
        lines.append(
            f"| {_cell(row['scenario'])} | {row['passed']} | {row['failed']} | {row['split']} | "
            f"{row['errored']} | {_percent(rate if isinstance(rate, float) else None)} |"
        )
    lines.append("")
    if suite.comparison is not None:
        comparison = suite.comparison
        versions = f"{comparison.baseline_version or '?'} → {comparison.candidate_version or '?'}"
        if suite.regressions:
            lines.append(f"#### Regressions against run {_code(comparison.baseline_run)} ({_cell(versions)})")
            lines.append("")
            for regression in suite.regressions:
                lines.extend(_regression(regression))
        else:
            lines.append(
                f"No metric or scenario is detectably worse than run {_code(comparison.baseline_run)} "
                f"({_cell(versions)})."
            )
        lines.append("")
    bad = [case for case in suite.cases if case.verdict in ("failed", "errored")]
    if bad:
        lines += ["#### Failed and errored conversations", ""]
        for case in bad[:LISTED]:
            lines.extend(_case_lines(case, ""))
        if len(bad) > LISTED:
            lines.append(f"- … and {len(bad) - LISTED} more (see the JSON summary)")
        lines.append("")
    split = [case for case in suite.cases if case.verdict == "split"]
    if split:
        effect = "they fail the gate (--split-fails)" if split_fails else "counted apart, not failures"
        lines += [f"#### Split judge verdicts ({effect})", ""]
        for case in split[:LISTED]:
            lines.extend(_case_lines(case, ""))
        lines.append("")
    return lines


def _thresholds(report: GateReport) -> list[str]:
    window = ""
    if report.window is not None:
        since, until = report.window
        window = f" ({since:%Y-%m-%d %H:%M} → {until:%Y-%m-%d %H:%M} UTC"
        window += f", agent {_code(report.agent)})" if report.agent else ")"
    lines = [
        f"### Thresholds{window}",
        "",
        "| check | measures | observed | values | result |",
        "|---|---|---:|---:|---|",
    ]
    for outcome in report.thresholds:
        observed = "—" if outcome.observed is None else f"{outcome.observed:.4g}"
        result = "✅ met" if outcome.passed else ("❌ no values" if outcome.observed is None else "❌ missed")
        lines.append(
            f"| {_code(outcome.threshold.text)} | {_cell(outcome.threshold.describes)} | {observed} | "
            f"{outcome.count} | {result} |"
        )
    lines.append("")
    return lines


def markdown(report: GateReport) -> str:
    """The whole report as GitHub-flavoured Markdown."""
    totals = report.totals()
    status = report.status
    lines = [f"## {_ICON[status]} convoscope test: {status}", ""]
    facts: list[str] = []
    if report.suites:
        count = sum(totals.values())
        facts.append(
            f"**{count}** conversations: {totals['passed']} passed, {totals['failed']} failed, "
            f"{totals['split']} split, {totals['errored']} errored"
        )
        if report.regressions:
            facts.append(f"**{len(report.regressions)}** regression(s) against the baseline")
        if report.judge_runs > 1:
            facts.append(f"judge metrics asked {report.judge_runs} times")
    if report.thresholds:
        facts.append(f"{len(report.failed_thresholds)} of {len(report.thresholds)} threshold(s) missed")
    if report.server_url:
        facts.append(f"server {report.server_url}")
    lines += [" · ".join(facts), ""]
    for suite in report.suites:
        lines.extend(_suite(suite, report.split_fails))
    if report.thresholds:
        lines.extend(_thresholds(report))
    return "\n".join(lines).rstrip() + "\n"


# ----- GitHub workflow commands


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, title: str, message: str) -> str:
    return f"::{level} title={_property(title)}::{_data(message)}"


def _scenario_annotations(suite: SuiteOutcome, split_fails: bool) -> Iterable[str]:
    for scenario in sorted({case.scenario for case in suite.cases}):
        mine = [case for case in suite.cases if case.scenario == scenario]
        bad = [
            c for c in mine if c.verdict in ("failed", "errored") or (split_fails and c.verdict == "split")
        ]
        if not bad:
            continue
        reasons = list(dict.fromkeys(reason for case in bad for reason in case.reasons))[:5]
        calls = ", ".join(case.url or case.label for case in bad[:5])
        yield _command(
            "error",
            f"convoscope: {suite.suite}.{scenario} failed",
            f"{len(bad)} of {len(mine)} conversations failed or errored against {suite.agent} "
            f"{suite.agent_version}: {'; '.join(reasons) or 'judge runs split'}\ncalls: {calls}",
        )


def workflow_annotations(report: GateReport) -> list[str]:
    """``::error`` workflow commands (GitHub Actions shows them on the run and the pull request): one per
    failed scenario, regression and missed threshold; ``::warning`` for split verdicts that do not fail."""
    lines: list[str] = []
    for suite in report.suites:
        lines.extend(_scenario_annotations(suite, report.split_fails))
        for regression in suite.regressions:
            metric = regression.comparison
            lines.append(
                _command(
                    "error",
                    f"convoscope: {suite.suite} regression in {regression.kind} {regression.name}",
                    f"{_percent(metric.baseline.rate)} → {_percent(metric.candidate.rate)} against run "
                    f"{suite.comparison.baseline_run if suite.comparison else '?'}; calls: "
                    + ", ".join(case.url or case.label for case in regression.cases[:5]),
                )
            )
        split = [case for case in suite.cases if case.verdict == "split"]
        if split and not report.split_fails:
            lines.append(
                _command(
                    "warning",
                    f"convoscope: {suite.suite} split judge verdicts",
                    f"{len(split)} conversation(s) where the judge runs disagreed: "
                    + ", ".join(case.url or case.label for case in split[:5]),
                )
            )
    for outcome in report.failed_thresholds:
        seen = "no values in the window" if outcome.observed is None else f"observed {outcome.observed:.4g}"
        lines.append(
            _command(
                "error",
                f"convoscope: threshold {outcome.threshold.text} missed",
                f"{outcome.threshold.describes}: {seen} over {outcome.count} values",
            )
        )
    return lines
