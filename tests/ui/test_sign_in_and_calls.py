"""Signing in, the calls table and its filters, in the browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

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
    assert urlsplit(anonymous.url).path == "/calls"
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
