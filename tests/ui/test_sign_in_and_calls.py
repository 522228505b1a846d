"""Signing in, the calls table and its filters, in the browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from convoscope.store.base import CallFilter

from .conftest import UiServer


def test_signing_in_with_a_key_lands_on_the_calls_and_never_keeps_the_key(
    anonymous: Page, ui: UiServer
) -> None:
    anonymous.goto("/calls")
    assert urlsplit(anonymous.url).path == "/login"  # not signed in: to the form, coming back after
    anonymous.fill("#key", "cvs_not_a_key")
    anonymous.click("form.login button")
    expect(anonymous.get_by_role("alert")).to_contain_text("not valid")
    anonymous.fill("#key", ui.key)
    anonymous.click("form.login button")
    assert urlsplit(anonymous.url).path == "/calls"
    expect(anonymous.locator("#calls tbody tr")).to_have_count(ui.services.store.count_calls(ui.project_id))
    cookies = {c["name"]: c for c in anonymous.context.cookies()}
    session = cookies["convoscope_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert ui.key not in session["value"] and all(ui.key not in c["value"] for c in cookies.values())
    anonymous.click("form.logout button")
    assert urlsplit(anonymous.url).path == "/login"
    anonymous.goto("/calls")
    assert urlsplit(anonymous.url).path == "/login"


def test_a_revoked_key_ends_its_session(anonymous: Page, ui: UiServer) -> None:
    meta = ui.services.meta
    key = meta.create_api_key(ui.project_id, name="revoked-in-test")
    anonymous.goto(f"/?key={key}")
    assert urlsplit(anonymous.url).path == "/"  # signed in: the start page (the overview)
    (listed,) = [k for k in meta.list_api_keys(ui.project_id) if k.name == "revoked-in-test"]
    meta.revoke_api_key(listed.id)
    anonymous.goto("/calls")
    assert urlsplit(anonymous.url).path == "/login"


def test_a_sign_in_form_from_elsewhere_is_refused(anonymous: Page, ui: UiServer) -> None:
    """Without the form's own token (a page on another site posting the key), nothing signs in."""
    response = anonymous.request.post(f"{ui.url}/login", form={"key": ui.key, "csrf": "forged", "next": "/"})
    assert response.status == 403
    assert not any(c["name"] == "convoscope_session" for c in anonymous.context.cookies())


def test_filters_change_the_table_and_the_url(page: Page, ui: UiServer) -> None:
    page.goto("/calls")
    everything = page.locator("#calls tbody tr").count()
    page.select_option("select[name=end_reason]", "error")
    page.click("#filters button")
    query = parse_qs(urlsplit(page.url).query)
    assert query["end_reason"] == ["error"]
    rows = page.locator("#calls tbody tr")
    assert 0 < rows.count() < everything
    for text in rows.locator("td:nth-child(7)").all_inner_texts():
        assert text == "error"
    shared = page.url
    page.goto("/calls")
    page.goto(shared)  # the URL alone gives the same view
    expect(page.locator("select[name=end_reason]")).to_have_value("error")
    assert page.locator("#calls tbody tr").count() == rows.count()


def _listed(ui: UiServer, **fields: object) -> int:
    page = ui.services.store.list_calls(ui.project_id, CallFilter(**fields), limit=500, cursor=None)
    return len(page.items)


def test_a_failing_metric_and_transcript_text_narrow_the_table(page: Page, ui: UiServer) -> None:
    names = ui.services.store.metric_names(ui.project_id)
    failing = next(name for name in names if _listed(ui, failing_metric=name) > 0)
    page.goto("/calls")
    page.select_option("select[name=failing]", failing)
    page.click("#filters button")
    assert parse_qs(urlsplit(page.url).query)["failing"] == [failing]
    expect(page.locator("#calls tbody tr")).to_have_count(_listed(ui, failing_metric=failing))

    href = page.locator("#calls tbody a").first.get_attribute("href")
    assert href is not None
    stored = ui.services.store.get_call(ui.project_id, href.split("/")[-1])
    assert stored is not None
    word = max(stored.call.turns[0].text.split(), key=len).strip(".,!?")
    page.goto("/calls")
    page.fill("input[name=text]", word.upper())
    page.press("input[name=text]", "Enter")
    expected = _listed(ui, text=word)
    assert expected >= 1
    expect(page.locator("#calls tbody tr")).to_have_count(expected)
