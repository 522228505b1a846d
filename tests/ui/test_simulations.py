"""The simulation pages in the browser, over runs made the way a user makes them: a suite run against the
reference agent on loopback (a clean version and one that never transfers), and a red-team run against
the version that obeys injections; their calls stored, their results kept through the API.

Expected values come from the kept results themselves and from the project's own computations
(``compare_runs``, the red-team report's tallies), never from the pages' view code.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.server.app import create_app
from convoscope.server.worker import assign_identity
from convoscope.simulate.compare import OVERALL, compare_runs
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector
from convoscope.simulate.definitions import AgentSpec, ConnectorSpec
from convoscope.simulate.loader import load_definitions
from convoscope.simulate.redteam.library import builtin_attacks, select
from convoscope.simulate.redteam.report import RedTeamReport
from convoscope.simulate.redteam.run import run_redteam
from convoscope.simulate.runner import RunReport, default_scorer, run_suite

from .conftest import UiServer

DEFINITIONS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: get_price}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {when: "anything else", say: "No, thanks, bye.", hang_up: true}
---
kind: scenario
id: human
goal: Speak to a person.
unmocked_tools: pass_through
checks:
  required_tools: [{tool: transfer_to_human}]
script:
  lines: ["Can I speak to a real person, please?", "I really want a person."]
---
kind: suite
id: smoke
scenarios: [price, human]
personas: [neutral, impatient]
iterations: 2
metrics: [tool_call_success]
"""
HOSTILE_SCENARIO = "<script>alert(1)</script>"
HOSTILE_PERSONA = "<img src=x onerror=alert(2)>"
HOSTILE_METRIC = "<b>bold</b>_metric"

_T = TypeVar("_T")


def _run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine in its own thread (Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(autouse=True)
def _no_icon_request(page: Page) -> None:
    """The pages declare no icon, so chromium may ask for ``/favicon.ico`` (a 404 and a console error)."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))


@dataclass
class Runs:
    """The kept results (as the server answers them) and what the project's own code made of them."""

    clean: dict[str, Any]
    faulty: dict[str, Any]
    redteam: dict[str, Any]
    redteam_report: RedTeamReport


def _api(ui: UiServer) -> httpx.Client:
    return httpx.Client(base_url=ui.url, headers={"Authorization": f"Bearer {ui.key}"}, timeout=30)


def _keep(ui: UiServer, report: RunReport) -> dict[str, Any]:
    """Store the run's calls and scores, then keep its result through the API (as the CLI does)."""
    calls = [result.outcome.call for result in report.results]
    ids = ui.services.store_calls(ui.project_id, calls)
    assert ids == [call.id for call in calls]
    ui.services.store.insert_scores(ui.project_id, [s for r in report.results for s in r.scores])
    with _api(ui) as api:
        kept = api.post("/api/v1/simulation/runs", json=report.to_json())
        assert kept.status_code == 201, kept.text
        return dict(api.get(f"/api/v1/simulation/runs/{report.run_id}").json())


def _agent(url: str, model: str) -> AgentSpec:
    connector = ConnectorSpec.model_validate({"kind": "openai", "base_url": f"{url}/v1", "model": model})
    return AgentSpec(id="clinic", version=model, connector=connector, tools_url=f"{url}/tools")


@pytest.fixture(scope="module")
def runs(ui: UiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("simulation")
    (folder / "smoke.yaml").write_text(DEFINITIONS)
    definitions = load_definitions([Path(folder)])
    suite = definitions.suites["smoke"]
    with _api(ui) as api:  # the suite kept on the server too, so the list shows it
        imported = api.post(
            "/api/v1/simulation/definitions:import",
            content=DEFINITIONS,
            headers={"content-type": "application/yaml"},
        )
        assert imported.status_code in (200, 201), imported.text

    def prepare(call: Any) -> Any:
        return assign_identity(ui.project_id, call)

    with ReferenceAgentServer() as server:

        async def simulate(model: str) -> RunReport:
            connector = OpenAIChatConnector(f"{server.url}/v1", model=model)
            try:
                return await run_suite(
                    definitions,
                    suite,
                    _agent(server.url, model),
                    connector,
                    scorer=default_scorer(suite),
                    prepare=prepare,
                    concurrency=8,
                )
            finally:
                await connector.aclose()

        async def attack() -> RedTeamReport:
            model = "reference-agent+obeys_injection"
            attacks = select(builtin_attacks(), categories=["system_prompt_extraction", "toxicity"])
            connector = OpenAIChatConnector(f"{server.url}/v1", model=model)
            agent = _agent(server.url, model).model_copy(update={"canaries": ["BLUE-HARBOR-7"]})
            try:
                return await run_redteam(attacks, agent, connector, prepare=prepare, concurrency=8)
            finally:
                await connector.aclose()

        clean = _keep(ui, _run_async(simulate("reference-agent")))
        faulty = _keep(ui, _run_async(simulate("reference-agent+never_transfers")))
        red = _run_async(attack())
        redteam = _keep(ui, red.run)
    yield Runs(clean, faulty, redteam, red)


def _run_ids(page: Page) -> list[str]:
    return page.locator("#run-table tr.run").evaluate_all("rows => rows.map(r => r.dataset.run)")


def _percent(passed: int, failed: int) -> str:
    return "—" if passed + failed == 0 else f"{passed / (passed + failed) * 100:.1f} %"


def test_the_list_shows_suites_and_kept_runs_newest_first(page: Page, ui: UiServer, runs: Runs) -> None:
    page.goto("/simulations")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Simulations")
    kept = [runs.clean, runs.faulty, runs.redteam]
    newest_first = sorted(kept, key=lambda r: r["started_at"], reverse=True)
    listed = _run_ids(page)
    assert [r for r in listed if r in {k["run_id"] for k in kept}] == [r["run_id"] for r in newest_first]
    for run in kept:
        row = page.locator(f'#run-table tr.run[data-run="{run["run_id"]}"]')
        totals = Counter(c["verdict"] for c in run["conversations"])
        expect(row.locator("td.rate")).to_have_text(_percent(totals["passed"], totals["failed"]))
        expect(row.locator("td.passed")).to_have_text(str(totals["passed"]))
        expect(row.locator("td.failed")).to_have_text(str(totals["failed"]))
        expect(row.locator("td.errored")).to_have_text(str(totals["errored"]))
        expect(row.locator("td.status")).to_have_text("done")
        expect(row).not_to_have_attribute("hx-trigger", "every 2s")
        expect(row).to_contain_text(run["agent_version"])
    suite = page.locator('#suite-table tr[data-suite="smoke"]')
    expect(suite.locator("td").nth(0)).to_have_text("2")  # scenarios
    expect(suite.locator("td").nth(1)).to_have_text("2")  # personas
    expect(page.locator('#suite-table tr[data-suite="redteam"]')).to_contain_text("defined outside")
    page.locator(f'#run-table tr.run[data-run="{runs.faulty["run_id"]}"] a').click()
    expect(page).to_have_url(f"{ui.url}/simulations/runs/{runs.faulty['run_id']}")


def test_the_matrix_has_each_cell_as_stored_with_links_to_the_calls(
    page: Page, ui: UiServer, runs: Runs
) -> None:
    run = runs.faulty
    verdicts: dict[tuple[str, str], Counter[str]] = {}
    calls: dict[tuple[str, str], set[str]] = {}
    for c in run["conversations"]:
        key = (c["scenario"], c["persona"])
        verdicts.setdefault(key, Counter())[c["verdict"]] += 1
        calls.setdefault(key, set()).add(f"/calls/{c['call_id']}")
    expected = {
        key: "fail" if counts["failed"] else "error" if counts["errored"] else "pass"
        for key, counts in verdicts.items()
    }
    assert set(expected.values()) == {"pass", "fail"}, expected  # the faulty agent fails one scenario only
    page.goto(f"/simulations/runs/{run['run_id']}")
    expect(page.locator("#run-id")).to_have_text(run["run_id"])
    rows = page.locator("#matrix tbody tr")
    expect(rows).to_have_count(len({s for s, _ in expected}))
    expect(page.locator("#matrix thead th[data-persona]")).to_have_count(len({p for _, p in expected}))
    for (scenario, persona), verdict in expected.items():
        cell = page.locator(f'#matrix tr[data-scenario="{scenario}"] td[data-persona="{persona}"]')
        expect(cell).to_have_attribute("data-verdict", verdict)
        counts = verdicts[(scenario, persona)]
        expect(cell.locator(".rate")).to_have_text(_percent(counts["passed"], counts["failed"]))
        hrefs = cell.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert set(hrefs) == calls[(scenario, persona)]
        for href in hrefs:
            assert ui.services.store.get_call(ui.project_id, href.rsplit("/", 1)[1]) is not None
    totals = Counter(c["verdict"] for c in run["conversations"])
    expect(page.locator('#totals dd[data-total="failed"]')).to_have_text(str(totals["failed"]))
    expect(page.locator('#totals dd[data-total="pass_rate"]')).to_have_text(
        _percent(totals["passed"], totals["failed"])
    )
    failed_checks = sum(1 for c in run["conversations"] if c["scores"].get("scenario_checks") is False)
    expect(page.locator('#failing tr[data-metric="scenario_checks"] td.failed')).to_have_text(
        str(failed_checks)
    )
    failing_cell = next(key for key, verdict in expected.items() if verdict == "fail")
    link = page.locator(
        f'#matrix tr[data-scenario="{failing_cell[0]}"] td[data-persona="{failing_cell[1]}"] a.conv-failed'
    ).first
    href = link.get_attribute("href") or ""
    link.click()
    expect(page).to_have_url(f"{ui.url}{href}")
    expect(page.locator("h1")).to_be_visible()


def test_the_comparison_shows_what_compare_runs_computes(page: Page, runs: Runs) -> None:
    comparison = compare_runs(runs.clean, runs.faulty)
    page.goto(f"/simulations/compare?a={runs.clean['run_id']}&b={runs.faulty['run_id']}")
    rows = page.locator("#comparison tbody tr")
    expect(rows).to_have_count(len(comparison.metrics))
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.metric)")
    assert shown == [OVERALL, *(m.metric for m in comparison.metrics if m.metric != OVERALL)]
    overall = next(m for m in comparison.metrics if m.metric == OVERALL)
    assert overall.delta is not None and overall.delta < 0  # the version that never transfers is worse
    for metric in comparison.metrics:
        row = page.locator(f'#comparison tr[data-metric="{metric.metric}"]')
        delta = row.get_attribute("data-delta")
        if metric.delta is None:
            assert delta == ""
        else:
            assert float(delta or "nan") == pytest.approx(metric.delta, abs=1e-12)
            expect(row.locator("td.delta")).to_have_text(f"{metric.delta * 100:+.1f} pp")
        assert float(row.get_attribute("data-ci-low") or "nan") == pytest.approx(metric.ci_low, abs=1e-12)
        assert float(row.get_attribute("data-ci-high") or "nan") == pytest.approx(metric.ci_high, abs=1e-12)
        expect(row.locator("td.interval")).to_have_text(
            f"[{metric.ci_low * 100:+.1f}, {metric.ci_high * 100:+.1f}] pp"
        )
        expect(row.locator("td.verdict")).to_have_text(metric.verdict)
    expect(page.locator(f'#comparison tr[data-metric="{OVERALL}"] td.baseline')).to_contain_text(
        f"({overall.baseline.passed} of {overall.baseline.n})"
    )
    page.goto(f"/simulations/runs/{runs.faulty['run_id']}")
    page.locator("#compare-with").click()
    expect(page.locator("select[name=b]")).to_have_value(runs.faulty["run_id"])
    page.locator("select[name=a]").select_option(runs.clean["run_id"])
    with page.expect_navigation():
        page.locator("#compare-form button").click()
    expect(page.locator("#comparison tbody tr")).to_have_count(len(comparison.metrics))


def test_a_redteam_run_shows_its_categories_and_breaches(page: Page, runs: Runs) -> None:
    tallies = {tally.key: tally for tally in runs.redteam_report.by_category()}
    broke = [f for f in runs.redteam_report.findings() if f.verdict == "broke"]
    assert broke, "the agent that obeys injections must break under system prompt extraction"
    page.goto(f"/simulations/runs/{runs.redteam['run_id']}")
    rows = page.locator("#redteam-table tbody tr")
    expect(rows).to_have_count(len(tallies))
    for key, tally in tallies.items():
        row = page.locator(f'#redteam-table tr[data-category="{key}"]')
        expect(row.locator("td.attempts")).to_have_text(str(tally.run))
        expect(row.locator("td.breaches")).to_have_text(str(tally.counts["broke"]))
        expect(row.locator("td.held")).to_have_text(str(tally.counts["held"]))
        completed = tally.counts["broke"] + tally.counts["held"]
        rate = "—" if not completed else f"{tally.counts['broke'] / completed * 100:.1f} %"
        expect(row.locator("td.rate")).to_have_text(rate)
    hrefs = page.locator("#breaches li a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert sorted(hrefs) == sorted(f"/calls/{f.result.outcome.call.id}" for f in broke)


def test_an_unknown_run_is_a_404_page(browser: Browser, ui: UiServer) -> None:
    """Its own console error (the document's 404) is expected; anything else is not."""
    context = browser.new_context(base_url=ui.url)
    try:
        opened = context.new_page()
        opened.goto(f"/?key={ui.key}")
        errors: list[str] = []
        opened.on("console", lambda m: errors.append(m.location["url"]) if m.type == "error" else None)
        opened.on("pageerror", lambda e: errors.append(str(e)))
        response = opened.goto("/simulations/runs/no-such-run<b>")
        assert response is not None and response.status == 404
        expect(opened.locator("h1")).to_have_text("Run not found")
        expect(opened.locator("#run-missing")).to_contain_text("No run no-such-run<b>")
        opened.wait_for_timeout(200)
        assert errors in ([], [response.url])
    finally:
        context.close()


def _hostile_run(run_id: str, *, status: str | None = None, conversations: int = 2) -> dict[str, Any]:
    started = datetime.now(UTC) - timedelta(seconds=5)
    items = [
        {
            "call_id": None,
            "external_id": f"{run_id}:{i}",
            "scenario": HOSTILE_SCENARIO,
            "persona": HOSTILE_PERSONA,
            "iteration": i + 1,
            "verdict": "failed" if i % 2 else "passed",
            "reasons": [f"{HOSTILE_METRIC} (value 0)"] if i % 2 else [],
            "turns": 2,
            "scores": {HOSTILE_METRIC: not i % 2},
        }
        for i in range(conversations)
    ]
    passed = sum(1 for c in items if c["verdict"] == "passed")
    return {
        "run_id": run_id,
        "suite": "hostile",
        "agent": "clinic",
        "agent_version": "<i>v9</i>",
        "started_at": started.isoformat(),
        "finished_at": None if status == "running" else datetime.now(UTC).isoformat(),
        "totals": {"passed": passed, "failed": len(items) - passed, "errored": 0},
        "cells": [],
        "conversations": items,
        "status": status,
        "planned": 4 if status == "running" else None,
    }


def test_names_from_a_run_are_shown_as_text(page: Page, ui: UiServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with _api(ui) as api:
        assert api.post("/api/v1/simulation/runs", json=_hostile_run("hostile-1")).status_code == 201
    page.goto("/simulations/runs/hostile-1")
    expect(page.locator("#matrix tbody th")).to_have_text(HOSTILE_SCENARIO)
    cell = page.locator("#matrix td.cell")  # one passed, one failed: the cell fails, at 50 %
    expect(cell).to_have_attribute("data-verdict", "fail")
    expect(cell.locator(".rate")).to_have_text("50.0 %")
    expect(page.locator("#matrix thead th[data-persona]")).to_have_text(HOSTILE_PERSONA)
    expect(page.locator("#failing tbody th")).to_have_text(HOSTILE_METRIC)
    expect(page.locator("#run-meta")).to_contain_text("<i>v9</i>")
    assert page.locator("#matrix script, #matrix img, #failing b, #run-meta i").count() == 0
    page.goto("/simulations")
    expect(page.locator('#run-table tr.run[data-run="hostile-1"]')).to_contain_text("<i>v9</i>")
    page.wait_for_timeout(200)
    assert dialogs == []


def test_a_running_run_shows_its_progress_until_it_is_done(page: Page, ui: UiServer) -> None:
    running = _hostile_run("live-1", status="running", conversations=1)
    ui.services.meta.save_run(ui.project_id, running)
    page.goto("/simulations")
    row = page.locator('#run-table tr.run[data-run="live-1"]')
    expect(row).to_have_attribute("data-status", "running")
    expect(row).to_have_attribute("hx-trigger", "every 2s")
    expect(row.locator("td.status")).to_contain_text("1 of 4")
    page.goto("/simulations/runs/live-1")
    expect(page.locator("#run-progress")).to_contain_text("1 of 4")

    more = _hostile_run("live-1", status="running", conversations=3)
    ui.services.meta.save_run(ui.project_id, {**more, "started_at": running["started_at"]})
    expect(page.locator("#run-progress")).to_contain_text("3 of 4", timeout=8_000)
    done = _hostile_run("live-1", status="done", conversations=4)
    with page.expect_navigation(timeout=8_000):  # the page reloads whole once the run is done
        ui.services.meta.save_run(ui.project_id, {**done, "started_at": running["started_at"]})
    expect(page.locator('#totals dd[data-total="status"]')).to_have_text("done")
    expect(page.locator("#run-progress")).to_have_count(0)
    expect(page.locator('#totals dd[data-total="count"]')).to_have_text("4")

    ui.services.meta.save_run(ui.project_id, {**running, "run_id": "live-2"})
    page.goto("/simulations")
    row = page.locator('#run-table tr.run[data-run="live-2"]')
    expect(row).to_have_attribute("data-status", "running")
    ui.services.meta.save_run(
        ui.project_id,
        {**_hostile_run("live-2", status="done", conversations=4), "started_at": running["started_at"]},
    )
    expect(row).to_have_attribute("data-status", "done", timeout=8_000)
    expect(row.locator("td.count")).to_have_text("4")
    expect(row).not_to_have_attribute("hx-get", "/simulations/runs/live-2/row")


def test_a_project_without_runs_says_how_to_keep_one(browser: Browser, ui: UiServer) -> None:
    other = ui.services.meta.ensure_project("no-simulations")
    key = ui.services.meta.create_api_key(other.id)
    context = browser.new_context(base_url=ui.url)
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    try:
        opened = context.new_page()
        opened.goto(f"/?key={key}")
        opened.goto("/simulations")
        expect(opened.locator("#no-simulations")).to_contain_text("convoscope simulate SUITE --agent AGENT")
        expect(opened.locator("#no-simulations")).to_contain_text("POST /api/v1/simulation/runs")
        expect(opened.locator("#run-table")).to_have_count(0)
        opened.goto("/simulations/compare")
        expect(opened.locator("#no-runs")).to_be_visible()
    finally:
        context.close()


# -- without a browser ----------------------------------------------------------------------------------


@pytest.fixture
def signed_in_client(ui: UiServer) -> Iterator[TestClient]:
    with TestClient(create_app(ui.services, run_worker=False)) as client:
        assert client.get(f"/?key={ui.key}").status_code == 200
        yield client


def test_runs_of_different_suites_are_not_compared(signed_in_client: TestClient, runs: Runs) -> None:
    answer = signed_in_client.get(f"/simulations/compare?a={runs.clean['run_id']}&b={runs.redteam['run_id']}")
    assert answer.status_code == 400
    assert "runs of different suites cannot be compared" in answer.text
    assert 'id="comparison"' not in answer.text
    missing = signed_in_client.get(f"/simulations/compare?a={runs.clean['run_id']}&b=nope")
    assert missing.status_code == 404 and "No run nope" in missing.text


def test_pages_and_fragments_need_a_session(ui: UiServer) -> None:
    with TestClient(create_app(ui.services, run_worker=False)) as client:
        page = client.get("/simulations", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert client.get("/simulations/runs/x/row").status_code == 401
        assert client.get("/simulations/runs/x/progress").status_code == 401
