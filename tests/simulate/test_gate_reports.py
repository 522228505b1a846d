"""The gate's renderings of real runs against the reference agent: JUnit XML checked against the rules of
the common schema CI systems read (Jenkins' junit-10.xsd, which GitHub and GitLab reporters accept), the
Markdown report and GitHub workflow annotations."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.evals.llm import JudgeClient, JudgeConfig
from convoscope.simulate.definitions import Definitions
from convoscope.simulate.gate import (
    GateReport,
    SuiteOutcome,
    Threshold,
    ThresholdOutcome,
    judge_runs_scorer,
    suite_outcome,
)
from convoscope.simulate.loader import load_definitions
from convoscope.simulate.report_junit import junit_xml
from convoscope.simulate.report_markdown import markdown, workflow_annotations
from convoscope.testing.openai_server import FakeOpenAIServer, json_reply

from .test_gate import DEFINITIONS, _run, _verdict

SERVER = "http://convoscope.example:8000"


@pytest.fixture(scope="module")
def agent_url() -> Iterator[str]:
    with ReferenceAgentServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> Definitions:
    folder = tmp_path_factory.mktemp("defs")
    (folder / "defs.yaml").write_text(DEFINITIONS)
    return load_definitions([folder])


@pytest.fixture(scope="module")
def regressed(definitions: Definitions, agent_url: str) -> SuiteOutcome:
    """A run that stopped transferring callers, against a baseline run that did."""
    baseline = _run(definitions, "smoke", agent_url, "reference-agent")
    candidate = _run(definitions, "smoke", agent_url, "reference-agent+never_transfers")
    return suite_outcome(candidate, baseline=baseline.to_json(), server_url=SERVER)


@pytest.fixture(scope="module")
def errored(definitions: Definitions, agent_url: str) -> SuiteOutcome:
    return suite_outcome(_run(definitions, "smoke", agent_url, "reference-agent+http_500"), server_url=SERVER)


@pytest.fixture(scope="module")
def split(definitions: Definitions, agent_url: str, tmp_path_factory: pytest.TempPathFactory) -> SuiteOutcome:
    """A judged run: one scenario passed, one split (pass, fail, pass), one failed."""
    with FakeOpenAIServer() as server:
        server.add(json_reply(_verdict("pass")), contains="OUTCOME-AGREED")
        server.add(json_reply(_verdict("fail")), contains="OUTCOME-REFUSED")
        server.add([json_reply(_verdict(v)) for v in ("pass", "fail", "pass")], contains="OUTCOME-DISPUTED")
        config = JudgeConfig(base_url=server.url, model="fake", max_retries=0, backoff_initial_s=0.0)
        with JudgeClient(config) as judge:
            scorer = judge_runs_scorer(definitions.suites["judged"], judge=judge, runs=3)
            report = _run(definitions, "judged", agent_url, "reference-agent", scorer=scorer)
    return suite_outcome(report, server_url=SERVER)


def _threshold(text: str, observed: float | None, count: int, passed: bool) -> ThresholdOutcome:
    return ThresholdOutcome(Threshold.parse(text), observed, count, passed)


# ----- JUnit


_ATTRIBUTES = {
    "testsuites": {"name", "time", "tests", "failures", "errors", "skipped", "disabled"},
    "testsuite": {
        "name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
        "package", "file", "log", "url", "version", "disabled",
    },
    "properties": set(),
    "property": {"name", "value"},
    "testcase": {"name", "assertions", "time", "classname", "status", "group", "file", "line"},
    "failure": {"message", "type"},
    "error": {"message", "type"},
    "skipped": {"message"},
    "system-out": set(),
    "system-err": set(),
}  # fmt: skip
_REQUIRED = {"testsuite": {"name", "tests"}, "property": {"name", "value"}, "testcase": {"name"}}
_CHILDREN = {
    "testsuites": ["testsuite"],
    "testsuite": ["properties", "testcase", "system-out", "system-err"],
    "properties": ["property"],
    "testcase": ["skipped", "error", "failure", "system-out", "system-err"],
}
_INTEGER = re.compile(r"^\d+$")
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def _check_schema(element: ET.Element) -> None:
    """The junit-10.xsd rules: known elements and attributes, required ones present, children in the
    schema's order, counts as integers, times as decimals, timestamps without a zone."""
    assert element.tag in _ATTRIBUTES, element.tag
    assert set(element.attrib) <= _ATTRIBUTES[element.tag], (element.tag, element.attrib)
    assert _REQUIRED.get(element.tag, set()) <= set(element.attrib), (element.tag, element.attrib)
    for name in ("tests", "failures", "errors", "skipped"):
        if name in element.attrib:
            assert _INTEGER.match(element.attrib[name]), (name, element.attrib[name])
    if "time" in element.attrib:
        assert _DECIMAL.match(element.attrib["time"]), element.attrib["time"]
    if "timestamp" in element.attrib:
        assert _TIMESTAMP.match(element.attrib["timestamp"]), element.attrib["timestamp"]
    allowed = _CHILDREN.get(element.tag, [])
    positions = [allowed.index(child.tag) if child.tag in allowed else -1 for child in element]
    assert -1 not in positions, (element.tag, [child.tag for child in element])
    assert positions == sorted(positions), (element.tag, [child.tag for child in element])
    if element.tag == "testcase":
        assert sum(child.tag in ("skipped", "error", "failure") for child in element) <= 1
    for child in element:
        _check_schema(child)


def _parse(report: GateReport, tmp_path: Path) -> ET.Element:
    path = tmp_path / "junit.xml"
    path.write_bytes(junit_xml(report))
    root = ET.parse(path).getroot()
    _check_schema(root)
    for suite in [root, *root.iter("testsuite")]:
        cases = list(suite.iter("testcase"))
        assert int(suite.attrib["tests"]) == len(cases)
        for name, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            assert int(suite.attrib[name]) == sum(1 for case in cases if case.find(tag) is not None), name
    return root


def test_junit_has_a_suite_per_run_a_case_per_conversation_and_failures_with_evidence(
    regressed: SuiteOutcome, errored: SuiteOutcome, tmp_path: Path
) -> None:
    thresholds = [
        _threshold("tool_call_success>=0.95", 0.5, 10, False),
        _threshold("calls>=1", 10.0, 10, True),
    ]
    root = _parse(GateReport(suites=[regressed, errored], thresholds=thresholds, server_url=SERVER), tmp_path)
    assert root.tag == "testsuites"
    assert [(s.attrib["name"], s.attrib["tests"]) for s in root.iter("testsuite")] == [
        ("smoke", "8"),
        ("smoke", "8"),
        ("thresholds", "2"),
    ]
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == ("18", "5", "8")
    first = root.find("testsuite")
    assert first is not None
    properties = {p.attrib["name"]: p.attrib["value"] for p in first.iter("property")}
    assert properties["agent_version"] == "reference-agent+never_transfers"
    assert "metric scenario_checks" in properties["regressions"]
    cases = {(c.attrib["classname"], c.attrib["name"]): c for c in first.iter("testcase")}
    assert set(cases) == {(f"smoke.{s}", f"neutral #{i}") for s in ("price", "human") for i in range(1, 5)}
    assert cases[("smoke.price", "neutral #1")].find("failure") is None
    failure = cases[("smoke.human", "neutral #2")].find("failure")
    assert failure is not None
    assert "scenario_checks: required_tool transfer_to_human" in failure.attrib["message"]
    assert failure.text is not None
    assert f"{SERVER}/calls/" in failure.text
    assert '"tool": "transfer_to_human"' in failure.text  # the failed check's evidence
    error = list(root.iter("testsuite"))[1].find("testcase/error")
    assert error is not None and error.attrib["type"] and "unreachable" in error.attrib["message"]
    missed = list(root.iter("testsuite"))[2].find("testcase/failure")
    assert missed is not None and "pass rate of tool_call_success: observed 0.5" in missed.attrib["message"]


def test_a_split_verdict_is_skipped_in_junit_unless_it_fails_the_gate(
    split: SuiteOutcome, tmp_path: Path
) -> None:
    root = _parse(GateReport(suites=[split]), tmp_path)
    skipped = root.find("testsuite/testcase[@classname='judged.price-again']/skipped")
    assert skipped is not None
    assert "expected_outcome: judge runs split (2 passed, 1 failed)" in skipped.attrib["message"]
    assert root.attrib["skipped"] == "1" and root.attrib["failures"] == "1"
    strict = _parse(GateReport(suites=[split], split_fails=True), tmp_path)
    failure = strict.find("testsuite/testcase[@classname='judged.price-again']/failure")
    assert failure is not None and failure.attrib["type"] == "split"
    assert strict.attrib["skipped"] == "0" and strict.attrib["failures"] == "2"


def test_junit_survives_text_xml_cannot_carry(regressed: SuiteOutcome, tmp_path: Path) -> None:
    case = regressed.cases[0]
    odd = SuiteOutcome(
        suite="odd",
        agent="a",
        agent_version="1",
        run_id="run-x",
        started_at=datetime.now(UTC),
        finished_at=None,
        cases=[replace(case, verdict="failed", reasons=["said \x00\x1b[31m <&> \ud800"])],
    )
    root = _parse(GateReport(suites=[odd]), tmp_path)
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "<&>" in failure.attrib["message"]


# ----- Markdown and annotations


def test_markdown_names_each_regression_with_its_calls_links_and_failed_checks(
    regressed: SuiteOutcome, split: SuiteOutcome
) -> None:
    thresholds = [_threshold("passed:expected_outcome>=0.9", None, 0, False)]
    text = markdown(GateReport(suites=[regressed, split], thresholds=thresholds, server_url=SERVER))
    assert text.startswith("## ❌ convoscope test: failed")
    assert "| human | 0 | 4 | 0 | 0 | 0% |" in text
    assert "| price | 4 | 0 | 0 | 0 | 100% |" in text
    assert "- **metric `scenario_checks`**: 100% (8/8) → 50% (4/8)" in text
    assert "- **scenario `human` ((conversation passed))**: 100% (4/4) → 0% (0/4)" in text
    failed = [case for case in regressed.cases if case.verdict == "failed"]
    for case in failed:
        assert f"[`{case.call_id}`]({SERVER}/calls/{case.call_id})" in text
        assert f"external id `{case.external_id}`" in text
    assert 'scenario_checks: `required_tool {"expected": {"tool": "transfer_to_human"' in text
    assert "#### Split judge verdicts (counted apart, not failures)" in text
    assert "expected_outcome: judge runs split, 2 passed / 1 failed" in text
    assert "| `passed:expected_outcome>=0.9` | pass rate of expected_outcome | — | 0 | ❌ no values |" in text


def test_a_passing_gate_says_so_and_names_the_baseline(regressed: SuiteOutcome) -> None:
    kept = [case for case in regressed.cases if case.verdict == "passed"]
    passed = replace(regressed, regressions=[], cases=kept)
    text = markdown(GateReport(suites=[passed]))
    assert text.startswith("## ✅ convoscope test: passed")
    assert "No metric or scenario is detectably worse than run" in text


def test_annotations_are_one_error_per_failed_scenario_regression_and_threshold(
    regressed: SuiteOutcome, split: SuiteOutcome
) -> None:
    thresholds = [_threshold("duration_s<=300", 412.5, 7, False)]
    lines = workflow_annotations(GateReport(suites=[regressed, split], thresholds=thresholds))
    errors = [line for line in lines if line.startswith("::error ")]
    titles = [line.split("::")[1] for line in errors]
    assert titles == [
        "error title=convoscope%3A smoke.human failed",
        "error title=convoscope%3A smoke regression in metric (conversation passed)",
        "error title=convoscope%3A smoke regression in metric scenario_checks",
        "error title=convoscope%3A smoke regression in scenario human",
        "error title=convoscope%3A judged.human failed",
        "error title=convoscope%3A threshold duration_s<=300 missed",
    ]
    assert all("\n" not in line for line in lines)
    assert "4 of 4 conversations failed or errored" in errors[0] and "%0Acalls: " in errors[0]
    assert [line.split("::")[1] for line in lines if line.startswith("::warning ")] == [
        "warning title=convoscope%3A judged split judge verdicts"
    ]
    strict = workflow_annotations(GateReport(suites=[split], split_fails=True))
    assert "error title=convoscope%3A judged.price-again failed" in [line.split("::")[1] for line in strict]
