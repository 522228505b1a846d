"""The gate's result as JUnit XML, the format CI systems (GitHub, GitLab, Jenkins) render as test results.

The shape is the common one their readers accept (the Jenkins ``junit-10.xsd`` subset): ``testsuites``
holding one ``testsuite`` per simulation suite, one ``testcase`` per conversation (classname
``suite.scenario``, name ``persona #iteration``), a ``failure`` with the reasons as its message and the
failed checks with their evidence as its text, an ``error`` for a conversation that could not be held,
and ``skipped`` for a split judge verdict (not passed, not failed; with ``split_fails`` it is a failure).
Thresholds over stored calls are a ``thresholds`` suite with one case each. Text is stripped of the
characters XML 1.0 cannot carry, so an agent that says a control character cannot break the file.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from .gate import Case, GateReport, SuiteOutcome, ThresholdOutcome

__all__ = ["junit_xml"]

MESSAGE_CHARS = 1000
"""How long a failure's ``message`` attribute may be (CI lists show it on one line); the text has all."""
_COUNTER = {"failure": "failures", "error": "errors", "skipped": "skipped"}
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _message(parts: Iterable[str]) -> str:
    text = _clean("; ".join(parts))
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _details(case: Case) -> str:
    lines = [f"call: {case.url or case.label} (external id {case.external_id})"]
    for failed in case.failed:
        lines.append(f"{failed.metric} failed (value {failed.value})")
        lines.extend(f"  - {check}" for check in failed.checks)
        if failed.evidence:
            lines.append(f"  evidence: {failed.evidence}")
    for split in case.split:
        lines.append(f"{split.metric}: judge runs split ({split.passed} passed, {split.failed} failed)")
    if case.verdict == "errored":
        lines.extend(case.reasons)
    return _clean("\n".join(lines))


def _testcase(parent: ET.Element, case: Case, split_fails: bool) -> str:
    """Adds one case; returns the JUnit outcome it counts as (passed, failure, error, skipped)."""
    element = ET.SubElement(
        parent,
        "testcase",
        classname=_clean(case.classname),
        name=_clean(case.name),
        time=_seconds(case.duration_s),
    )
    outcome = "passed"
    if case.verdict == "errored":
        error = ET.SubElement(
            element, "error", message=_message(case.reasons), type=case.error_kind or "errored"
        )
        error.text = _details(case)
        outcome = "error"
    elif case.verdict == "failed":
        failure = ET.SubElement(element, "failure", message=_message(case.reasons), type="failed")
        failure.text = _details(case)
        outcome = "failure"
    elif case.verdict == "split":
        why = [f"{s.metric}: judge runs split ({s.passed} passed, {s.failed} failed)" for s in case.split]
        if split_fails:
            failure = ET.SubElement(element, "failure", message=_message(why), type="split")
            failure.text = _details(case)
            outcome = "failure"
        else:
            ET.SubElement(element, "skipped", message=_message(why))
            outcome = "skipped"
    out = ET.SubElement(element, "system-out")
    out.text = _clean(f"call: {case.url or case.label} (external id {case.external_id})")
    return outcome


def _suite(root: ET.Element, suite: SuiteOutcome, split_fails: bool, hostname: str) -> dict[str, int]:
    element = ET.SubElement(root, "testsuite", name=_clean(suite.suite))
    properties = ET.SubElement(element, "properties")
    for name, value in (
        ("agent", suite.agent),
        ("agent_version", suite.agent_version),
        ("run_id", suite.run_id),
        ("baseline_run", suite.comparison.baseline_run if suite.comparison else ""),
        ("regressions", ", ".join(f"{r.kind} {r.name}" for r in suite.regressions)),
    ):
        ET.SubElement(properties, "property", name=name, value=_clean(value))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in suite.cases:
        outcome = _testcase(element, case, split_fails)
        counts["tests"] += 1
        if outcome != "passed":
            counts[_COUNTER[outcome]] += 1
    elapsed = (suite.finished_at - suite.started_at).total_seconds() if suite.finished_at else 0.0
    element.attrib.update(
        {k: str(v) for k, v in counts.items()}
        | {
            "time": _seconds(elapsed),
            "timestamp": suite.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": hostname,
        }
    )
    return counts


def _thresholds(root: ET.Element, thresholds: list[ThresholdOutcome], hostname: str) -> dict[str, int]:
    element = ET.SubElement(root, "testsuite", name="thresholds")
    counts = {"tests": len(thresholds), "failures": 0, "errors": 0, "skipped": 0}
    for outcome in thresholds:
        case = ET.SubElement(
            element, "testcase", classname="thresholds", name=_clean(outcome.threshold.text), time="0.000"
        )
        if not outcome.passed:
            counts["failures"] += 1
            seen = (
                "no values in the window" if outcome.observed is None else f"observed {outcome.observed:.4g}"
            )
            failure = ET.SubElement(
                case,
                "failure",
                message=_message([f"{outcome.threshold.describes}: {seen} over {outcome.count} values"]),
                type="threshold",
            )
            failure.text = _clean(
                f"{outcome.threshold.field} {outcome.threshold.op} {outcome.threshold.value:g}: {seen}, "
                f"{outcome.count} values"
            )
    element.attrib.update({k: str(v) for k, v in counts.items()} | {"time": "0.000", "hostname": hostname})
    return counts


def junit_xml(report: GateReport) -> bytes:
    """The report as a JUnit XML document (UTF-8, with its declaration)."""
    root = ET.Element("testsuites", name="convoscope test")
    hostname = _clean(socket.gethostname()) or "localhost"
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    elapsed = 0.0
    for suite in report.suites:
        for key, value in _suite(root, suite, report.split_fails, hostname).items():
            totals[key] += value
        if suite.finished_at:
            elapsed += (suite.finished_at - suite.started_at).total_seconds()
    if report.thresholds:
        for key, value in _thresholds(root, report.thresholds, hostname).items():
            totals[key] += value
    root.attrib.update({k: str(v) for k, v in totals.items()} | {"time": _seconds(elapsed)})
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
