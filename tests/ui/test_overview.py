"""The overview page in the browser: its figures against the store, the filters in the URL, every bucket
a way into its calls (chart click and keyboard link), empty ranges, and text from the data shown as text.

Expected numbers are computed here from the calls and scores as the store returns them one by one
(``list_calls``, ``get_calls``), not from the overview's own queries, so a wrong aggregate shows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from convoscope.audio.metrics import RESPONSE_GAP_P50, RESPONSE_GAP_P95
from convoscope.demo.data import ORDERS, demo_calls
from convoscope.model import EndReason, MetricResult, MetricSource, Role
from convoscope.server.worker import assign_identity
from convoscope.store.base import CallFilter, CallSummary, StoredCall

from .conftest import UiServer


@pytest.fixture(autouse=True)
def _no_icon_request(page: Page) -> None:
    """The calls list declares no icon, so chromium asks for ``/favicon.ico`` (404, a console error)
    after some navigations; answered here so a test of this page does not fail on another page's icon."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))


CHARTS = ("calls", "pass_rate", "response_gap", "turn_taking", "vendor_latency", "failures", "cost", "alerts")


@dataclass
class Expected:
    """The overview's figures for one period, computed from the stored calls."""

    calls: int
    pass_rate: float | None
    gap_p50: float | None
    gap_p95: float | None
    e2e_p50: float | None
    e2e_p95: float | None
    error_share: float | None
    cost_per_call: float | None
    cost_per_minute: float | None
    failing: dict[str, int]
    end_reasons: dict[str, int]


def _listed(ui: UiServer, since: datetime, until: datetime, agent: str | None = None) -> list[CallSummary]:
    listed = ui.services.store.list_calls(
        ui.project_id, CallFilter(since=since, until=until, agent_id=agent), limit=500, cursor=None
    )
    assert listed.next_cursor is None
    return listed.items


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _audio(calls: list[StoredCall], metric: str) -> list[float]:
    return [
        float(s.value)
        for c in calls
        for s in c.scores
        if s.metric == metric and s.source is MetricSource.AUDIO and isinstance(s.value, float)
    ]


def expected(ui: UiServer, since: datetime, until: datetime, agent: str | None = None) -> Expected:
    summaries = _listed(ui, since, until, agent)
    calls = list(ui.services.store.get_calls(ui.project_id, [c.id for c in summaries]).values())
    judged = [s.passed for c in calls for s in c.scores if s.passed is not None]
    e2e = [t.e2e_s for c in calls for t in c.call.turns if t.role is Role.AGENT and t.e2e_s is not None]
    cost = sum(c.cost_usd for c in summaries)
    minutes = sum(c.duration_s for c in summaries) / 60
    failing: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for summary in summaries:
        reasons[summary.end_reason.value] = reasons.get(summary.end_reason.value, 0) + 1
    for c in calls:
        for s in c.scores:
            if s.passed is False:
                failing[s.metric] = failing.get(s.metric, 0) + 1
    n = len(calls)
    return Expected(
        calls=n,
        pass_rate=sum(judged) / len(judged) if judged else None,
        gap_p50=_percentile(_audio(calls, RESPONSE_GAP_P50), 50),
        gap_p95=_percentile(_audio(calls, RESPONSE_GAP_P95), 95),
        e2e_p50=_percentile(e2e, 50),
        e2e_p95=_percentile(e2e, 95),
        error_share=sum(c.end_reason is EndReason.ERROR for c in summaries) / n if n else None,
        cost_per_call=cost / n if n else None,
        cost_per_minute=cost / minutes if minutes else None,
        failing=failing,
        end_reasons=reasons,
    )


def _data(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(page.locator("#overview-data").text_content() or "{}")
    return found


def _period(page: Page) -> tuple[datetime, datetime, datetime]:
    period = _data(page)["period"]
    previous_since, since, until = (
        datetime.fromisoformat(period[k]) for k in ("previous_since", "since", "until")
    )
    return previous_since, since, until


def _figure(page: Page, key: str, previous: bool = False) -> float | None:
    where = f'[data-figure="{key}"] ' + (".previous span[data-value]" if previous else "dd.value")
    raw = page.locator(where).get_attribute("data-value")
    return None if raw in (None, "") else float(raw)


def _table(page: Page, selector: str) -> dict[str, int]:
    rows = page.locator(f"{selector} tbody tr")
    return {
        rows.nth(i).locator("td").nth(0).inner_text(): int(rows.nth(i).locator("td").nth(1).inner_text())
        for i in range(rows.count())
    }


def _assert_figures(page: Page, want: Expected) -> None:
    assert _figure(page, "calls") == want.calls
    for key in (
        "pass_rate",
        "gap_p50",
        "gap_p95",
        "e2e_p50",
        "e2e_p95",
        "error_share",
        "cost_per_call",
        "cost_per_minute",
    ):
        value = getattr(want, key)
        assert _figure(page, key) == (None if value is None else pytest.approx(value, rel=1e-9)), key
    shown_failing = _table(page, "#failing-metrics") if page.locator("#failing-metrics").count() else {}
    assert {k: v for k, v in shown_failing.items() if v} == dict(
        sorted(want.failing.items(), key=lambda kv: -kv[1])[:10]
    )
    shown_reasons = _table(page, "#end-reasons") if page.locator("#end-reasons").count() else {}
    assert {k: v for k, v in shown_reasons.items() if v} == want.end_reasons


def test_the_overview_shows_what_the_store_holds(page: Page, ui: UiServer) -> None:
    page.goto("/")
    assert urlsplit(page.url).path == "/"
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Overview")
    previous_since, since, until = _period(page)
    now = expected(ui, since, until)
    assert now.calls > 0 and now.gap_p50 is not None and now.e2e_p50 is not None  # the demo has them
    _assert_figures(page, now)
    before = expected(ui, previous_since, since)
    assert _figure(page, "calls", previous=True) == before.calls
    assert _figure(page, "cost_per_call", previous=True) == (
        None if before.cost_per_call is None else pytest.approx(before.cost_per_call, rel=1e-9)
    )
    # Every chart with data is drawn, each line with its dashed previous-period twin.
    drawn = [chart["id"] for chart in _data(page)["charts"]]
    assert {"calls", "pass_rate", "response_gap", "vendor_latency"} <= set(drawn) <= set(CHARTS)
    expect(page.locator(".chart .plot canvas")).to_have_count(len(drawn))
    for chart in _data(page)["charts"]:
        legend = page.locator(f"#chart-{chart['id']} .u-legend .u-series")
        expect(legend).to_have_count(1 + 2 * len(chart["series"]))
    # The calls per bucket add up to the period's calls.
    links = page.locator("#chart-calls a[data-bucket]:not(.previous)")
    total = sum(int(links.nth(i).get_attribute("data-calls") or 0) for i in range(links.count()))
    assert total == now.calls
    # Charts without data say so (the demo raises no alert).
    expect(page.locator("#chart-alerts .empty")).to_contain_text("No alert events")


def test_the_agent_filter_is_kept_in_the_url_and_changes_the_figures(page: Page, ui: UiServer) -> None:
    page.goto("/")
    everything = _figure(page, "calls")
    page.select_option("select[name=agent]", ORDERS)
    page.click("#filters button")
    query = parse_qs(urlsplit(page.url).query)
    assert query["agent"] == [ORDERS]
    _, since, until = _period(page)
    want = expected(ui, since, until, agent=ORDERS)
    assert 0 < want.calls < (everything or 0)
    _assert_figures(page, want)
    # Bucket links keep the agent, so the calls behind a point are the agent's.
    href = page.locator("#chart-calls a[data-bucket]").first.get_attribute("href") or ""
    assert parse_qs(urlsplit(href).query)["agent"] == [ORDERS]
    shared = page.url
    page.goto("/calls")
    page.goto(shared)
    expect(page.locator("select[name=agent]")).to_have_value(ORDERS)
    assert _figure(page, "calls") == want.calls


def _busiest_bucket(page: Page) -> tuple[int, str, int]:
    links = page.locator("#chart-calls a[data-bucket]:not(.previous)")
    found = [
        (int(links.nth(i).get_attribute("data-calls") or 0), links.nth(i).get_attribute("href") or "", i)
        for i in range(links.count())
    ]
    calls, href, index = max(found)
    assert calls > 0
    return index, href, calls


def _assert_calls_of_bucket(page: Page, ui: UiServer, href: str, calls: int) -> None:
    assert urlsplit(page.url).path == "/calls"
    query = parse_qs(urlsplit(page.url).query)
    wanted = parse_qs(urlsplit(href).query)
    assert query["since"] == wanted["since"] and query["until"] == wanted["until"]
    since, until = (datetime.fromisoformat(query[k][0]).replace(tzinfo=UTC) for k in ("since", "until"))
    ids = {c.id for c in _listed(ui, since, until)}
    shown = page.locator('#calls tbody a[href^="/calls/"]')
    expect(shown).to_have_count(calls)
    assert {(shown.nth(i).get_attribute("href") or "").rsplit("/", 1)[1] for i in range(calls)} == ids


def test_a_bucket_link_lists_exactly_the_calls_of_that_bucket(page: Page, ui: UiServer) -> None:
    page.goto("/")
    _, href, calls = _busiest_bucket(page)
    summary = page.locator("#chart-calls details summary")
    summary.focus()
    page.keyboard.press("Enter")  # the table under each chart opens from the keyboard
    link = page.locator(f'#chart-calls a[data-bucket]:not(.previous)[href="{href}"]')
    expect(link).to_be_visible()
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/calls?**")
    _assert_calls_of_bucket(page, ui, href, calls)


EDGE_PX = 1.0
"""The outermost pixel inside the plot: a click there opens its bucket too."""


def test_clicking_a_chart_point_opens_the_calls_of_its_bucket(page: Page, ui: UiServer) -> None:
    page.goto("/")
    index, href, calls = _busiest_bucket(page)
    chart = next(c for c in _data(page)["charts"] if c["id"] == "calls")
    values = [v for s in chart["series"] for v in (*s["current"], *s["previous"]) if v is not None]
    box = page.locator("#chart-calls .u-over").bounding_box()
    assert box is not None
    count = len(_data(page)["buckets"])
    x = box["width"] * (index / (count - 1) if count > 1 else 0.5)
    y = box["height"] * (1 - calls / (max(values) * 1.1))  # the y scale runs from 0 to 1.1 x the largest
    # The first and last buckets sit on the plot's edges; x == width would be just outside it.
    x, y = min(max(x, EDGE_PX), box["width"] - EDGE_PX), min(max(y, EDGE_PX), box["height"] - EDGE_PX)
    page.locator("#chart-calls .u-over").click(position={"x": x, "y": y})
    page.wait_for_url("**/calls?**")
    _assert_calls_of_bucket(page, ui, href, calls)


def test_a_click_on_the_plots_outermost_pixel_opens_the_last_bucket(page: Page, ui: UiServer) -> None:
    """uPlot clamps its cursor at the edge and, by default, takes such a press and release for a drag."""
    page.goto("/")
    data = _data(page)
    last = data["buckets"][-1]
    chart = next(c for c in data["charts"] if c["id"] == "calls")
    values = [v for s in chart["series"] for v in (*s["current"], *s["previous"]) if v is not None]
    value = chart["series"][0]["current"][-1] or 0
    box = page.locator("#chart-calls .u-over").bounding_box()
    assert box is not None
    y = min(max(box["height"] * (1 - value / (max(values) * 1.1)), EDGE_PX), box["height"] - EDGE_PX)
    page.locator("#chart-calls .u-over").click(position={"x": box["width"] - EDGE_PX, "y": y})
    page.wait_for_url("**/calls?**")
    opened = parse_qs(urlsplit(page.url).query)
    wanted = [parse_qs(urlsplit(last[k]).query) for k in ("href", "previous_href")]
    assert any(opened["since"] == w["since"] and opened["until"] == w["until"] for w in wanted), page.url


def test_an_empty_range_says_there_is_no_data_and_how_to_get_it(page: Page) -> None:
    page.goto("/?since=2001-01-01T00:00&until=2001-01-02T00:00")
    expect(page.locator("[role=alert]")).to_have_count(0)
    assert _figure(page, "calls") == 0
    for key in ("pass_rate", "gap_p50", "e2e_p95", "cost_per_call"):
        assert _figure(page, key) is None
    expect(page.locator('[data-figure="gap_p50"] .note')).to_have_text("no recordings analysed")
    expect(page.locator(".chart .plot")).to_have_count(0)
    for chart in CHARTS:
        expect(page.locator(f"#chart-{chart} .empty")).to_be_visible()
    expect(page.locator("#chart-calls .empty")).to_contain_text("POST /api/v1/calls")
    expect(page.locator("#chart-response_gap .empty")).to_contain_text("No recordings analysed")
    assert _data(page)["charts"] == []


def test_a_bad_filter_is_reported_and_the_page_still_shows(page: Page) -> None:
    page.goto("/?range=1y&bucket=minute&since=yesterday")
    alerts = page.locator("[role=alert]")
    expect(alerts).to_have_count(3)
    expect(page.locator("select[name=range]")).to_have_value("7d")
    assert (_figure(page, "calls") or 0) > 0


@pytest.fixture
def hostile(ui: UiServer) -> dict[str, str]:
    """A call in 2002 whose agent id is markup, with a failed score whose metric name is markup too."""
    agent = "<script>window.__owned = 1</script><b>agent</b>"
    metric = '<img src="/x" onerror="window.__owned = 2">'
    (template,) = demo_calls(now=datetime(2002, 1, 1, 12, tzinfo=UTC), count=1)
    call = assign_identity(
        ui.project_id,
        template.model_copy(
            update={
                "agent_id": agent,
                "recordings": [],
                "started_at": datetime(2002, 1, 1, 10, tzinfo=UTC),
                "external_id": "hostile-call",
            }
        ),
    )
    ui.services.store.insert_calls(ui.project_id, [call], version=time.time_ns() // 1000)
    assert call.id is not None
    ui.services.store.insert_scores(
        ui.project_id,
        [MetricResult(call_id=call.id, metric=metric, value=False, passed=False, source=MetricSource.JUDGE)],
    )
    return {"agent": agent, "metric": metric, "range": "since=2002-01-01T00:00&until=2002-01-02T00:00"}


def test_text_from_the_data_is_shown_as_text(page: Page, hostile: dict[str, str]) -> None:
    page.goto(f"/?{hostile['range']}")
    page.select_option("select[name=agent]", hostile["agent"])
    page.click("#filters button")
    assert parse_qs(urlsplit(page.url).query)["agent"] == [hostile["agent"]]
    assert _figure(page, "calls") == 1
    expect(page.locator("#failing-metrics tbody td").first).to_have_text(hostile["metric"])
    assert page.evaluate("window.__owned") is None
    expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("main b")).to_have_count(0)
    expect(page.locator("main script:not([type])")).to_have_count(0)


def test_the_previous_period_is_as_long_and_right_before(page: Page) -> None:
    page.goto("/?range=24h")
    previous_since, since, until = _period(page)
    assert until - since == since - previous_since == timedelta(hours=24)
    assert until > datetime.now(UTC) and until.minute == 0  # the last bucket is the hour in progress
    buckets = _data(page)["buckets"]
    assert len(buckets) == 24
    first = parse_qs(urlsplit(buckets[0]["previous_href"]).query)
    assert first["since"] == [previous_since.strftime("%Y-%m-%dT%H:%M")]
