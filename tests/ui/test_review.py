"""The review queue in the browser: fill it, label calls with the keyboard (never while typing a note),
the labels stored with their reviewer and time, the calibration page showing the kappa worked out here
from the stored scores and the labels, a second label of the same call and metric refused, and the
JSONL export holding the labels."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from convoscope.store.base import StoredCall

from .conftest import UiServer

MAX_ROUNDS = 80


@pytest.fixture(autouse=True)
def _no_icon_request(page: Page) -> None:
    """The pages declare no icon, so chromium may ask for ``/favicon.ico`` (a 404 and a console error)."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))


def _kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa, written out again here: (p_o - p_e) / (1 - p_e)."""
    n = len(pairs)
    observed = sum(1 for person, metric in pairs if person == metric) / n
    people, metrics = Counter(p for p, _ in pairs), Counter(m for _, m in pairs)
    chance = sum(people[v] * metrics[v] for v in ("pass", "fail")) / (n * n)
    return None if chance == 1 else (observed - chance) / (1 - chance)


def _seek_from_the_transcript(page: Page, stored: StoredCall) -> None:
    """The call's waveforms load from peaks, and a time in the transcript moves that one player there."""
    page.wait_for_function("() => window.convoscopeCall && window.convoscopeCall.ready", timeout=15_000)
    expect(page.locator("#player #waveform")).to_be_visible()
    offset = stored.call.recordings[0].offset_s
    turn = stored.call.turns[len(stored.call.turns) // 2]
    page.locator(f"#review-transcript li:nth-child({len(stored.call.turns) // 2 + 1}) button.seek").click()
    page.evaluate("() => window.convoscopeCall.ws.pause()")
    playing_at = page.evaluate("() => window.convoscopeCall.ws.getCurrentTime()")
    assert playing_at == pytest.approx(turn.start_s - offset, abs=0.5)
    page.locator("h1").click()  # focus leaves the button, so Enter saves rather than presses it


def _label_everything(page: Page, ui: UiServer) -> list[tuple[str, str]]:
    """Label every call the queue hands out: pass on even rounds, fail on odd ones, by keyboard only;
    the second call is first skipped with ``n``. Returns the (call, metric) pairs labelled."""
    labelled: list[tuple[str, str]] = []
    skipped = None
    recorded = 0
    for round_ in range(MAX_ROUNDS):
        if page.locator("#review-empty").count():
            assert recorded, "no call with a recording came up for review"
            return labelled
        call_id = page.locator("#review").get_attribute("data-call-id") or ""
        stored = ui.services.store.get_call(ui.project_id, call_id)
        assert stored is not None
        if stored.call.recordings:
            _seek_from_the_transcript(page, stored)
            recorded += 1
        else:
            expect(page.locator("#no-recording")).to_be_visible()
        expect(page.locator("#call-page-link")).to_have_attribute("href", f"/calls/{call_id}")
        if round_ == 1 and skipped is None:
            skipped = call_id
            with page.expect_navigation():
                page.keyboard.press("n")
            assert page.locator("#review").get_attribute("data-call-id") != skipped
            continue
        metrics = page.locator("fieldset.metric").evaluate_all("nodes => nodes.map(n => n.dataset.metric)")
        if round_ == 0:
            note = page.locator("fieldset.metric textarea").first
            note.click()
            note.type("pf: the agent did say it")  # p and f typed into a note are text, not verdicts
            expect(page.locator("fieldset.metric input[type=radio]:checked")).to_have_count(0)
            page.locator("h1").click()  # focus leaves the note
        key = "p" if round_ % 2 == 0 else "f"
        for _ in metrics:
            page.keyboard.press(key)
        expect(
            page.locator(
                f"fieldset.metric input[type=radio][value={'pass' if key == 'p' else 'fail'}]:checked"
            )
        ).to_have_count(len(metrics))
        with page.expect_navigation():
            page.keyboard.press("Enter")
        expect(page.locator("#review-message")).to_contain_text(f"Saved {len(metrics)} label")
        labelled.extend((call_id, metric) for metric in metrics)
    raise AssertionError(f"the queue was not empty after {MAX_ROUNDS} calls")


def test_label_calls_by_keyboard_and_see_the_calibration(page: Page, ui: UiServer) -> None:
    meta, store, project_id = ui.services.meta, ui.services.store, ui.project_id
    started = datetime.now(UTC) - timedelta(seconds=1)
    page.goto("/review")
    expect(page.locator("#review-empty")).to_be_visible()
    page.fill("#fill-form input[name=days]", "30")
    page.fill("#fill-form input[name=per_agent_per_day]", "1")
    page.fill("#fill-form input[name=sample_metrics]", "tool_call_success")
    with page.expect_navigation():
        page.click("#fill")
    expect(page.locator("#review-message")).to_contain_text("Queued")
    # The recorded calls too (by a threshold every turn-taking result meets), so their timeline is reviewed.
    rules = {
        "low_score": {"failed": False, "below": {"turn_taking.long_silences": 1e9}},
        "split_verdict": {"enabled": False},
        "random_sample": {"enabled": False},
    }
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    more = page.request.post(
        f"{ui.url}/api/v1/reviews/queue/fill",
        headers={"Authorization": f"Bearer {ui.key}"},
        data={"rules": rules, "since": since},
    )
    assert more.status == 200 and more.json()["queued"].get("low_score"), more.text()
    page.reload()
    queued = meta.list_review_items(project_id, state=None, limit=1000)
    assert {item.rule for item in queued} == {"low_score", "random_sample"}
    expect(page.locator("#shortcuts")).to_contain_text("fail for the highlighted metric")

    labelled = _label_everything(page, ui)
    expect(page.locator("#review-empty")).to_be_visible()

    # Stored with who and when; the first note kept as typed.
    labels = meta.list_review_labels(project_id)
    assert sorted((lb.call_id, lb.metric) for lb in labels) == sorted(labelled)
    (key,) = [k for k in meta.list_api_keys(project_id) if k.name == "init"]
    assert all(lb.reviewer_id == key.id and lb.reviewer_name == "init" for lb in labels)
    assert all(started <= lb.created_at <= datetime.now(UTC) for lb in labels)
    assert labels[0].note == "pf: the agent did say it"
    skipped = [item for item in meta.list_review_items(project_id) if item.state == "open"]
    assert len({item.call_id for item in skipped}) == 1  # the skipped call waits for someone else

    # Kappa per metric from the stored scores and the labels, as the calibration page shows it.
    calls = store.get_calls(project_id, {lb.call_id for lb in labels})
    pairs: dict[str, list[tuple[str, str]]] = {}
    for lb in labels:
        (score,) = [s for s in calls[lb.call_id].scores if s.metric == lb.metric]
        assert lb.verdict is not None and score.passed is not None
        pairs.setdefault(lb.metric, []).append((lb.verdict, "pass" if score.passed else "fail"))
    page.goto("/review/calibration")
    for metric, metric_pairs in pairs.items():
        row = page.locator(f"#calibration tr[data-metric='{metric}']")
        kappa = _kappa(metric_pairs)
        expect(row.locator("td.kappa")).to_have_text("undefined" if kappa is None else f"{kappa:.3f}")
    assert _kappa(pairs["tool_call_success"]) is not None  # judged pass and fail, labelled both ways
    expect(page.locator("#calibration tr[data-metric='csat'] td.kappa")).to_have_text("uncalibrated")

    # Every result of a labelled metric shows that kappa on its call's page, linking to the metric's row.
    tool_kappa = _kappa(pairs["tool_call_success"])
    call_id = next(c for c, m in labelled if m == "tool_call_success")
    page.goto(f"/calls/{call_id}")
    row = page.locator("#score-table tr.score", has=page.locator("button", has_text="tool_call_success"))
    badge = row.locator(".calibration a")
    compared = len(pairs["tool_call_success"])
    expect(badge).to_contain_text(f"kappa {tool_kappa:.2f} vs people ({compared} labels)")
    expect(badge).to_have_attribute("href", "/review/calibration#metric-tool_call_success")

    # A second label of the same call and metric is refused, through the API and through the page.
    call_id, metric = labelled[0]
    auth = {"Authorization": f"Bearer {ui.key}"}
    again = page.request.post(
        f"{ui.url}/api/v1/reviews/labels",
        headers=auth,
        data={"call_id": call_id, "metric": metric, "verdict": "fail"},
    )
    assert again.status == 409 and "already has your label" in again.json()["error"]["message"]
    csrf = page.locator("form.logout input[name=csrf]").input_value()
    form = {"csrf": csrf, "call_id": call_id, "metric": metric, f"verdict:{metric}": "fail"}
    refused = page.request.post(f"{ui.url}/review/labels", form=form)
    assert refused.status == 409 and "already has your label" in refused.text()
    assert len(meta.list_review_labels(project_id)) == len(labels)

    # The JSONL export holds every label with its reviewer, time, the metric's result and the transcript.
    export = page.request.get(f"{ui.url}/review/labels.jsonl")
    assert export.status == 200
    rows = [json.loads(line) for line in export.text().splitlines()]
    assert sorted((r["call_id"], r["metric"]) for r in rows) == sorted(labelled)
    first = next(r for r in rows if (r["call_id"], r["metric"]) == labelled[0])
    assert first["label"] == "pass" and first["note"] == "pf: the agent did say it"
    assert first["reviewer"] == {"id": key.id, "name": "init"} and first["labelled_at"]
    assert "passed" in first["judge"] and first["transcript"]
