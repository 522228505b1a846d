"""The API docs render offline under their content security policy (Swagger UI's inline start script is
allowed on the docs pages only), with no console errors and no failed requests."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_swagger_ui_renders_the_api_under_its_policy(page: Page) -> None:
    answer = page.goto("/docs")
    assert answer is not None and answer.status == 200
    assert "unsafe-inline" in (answer.headers.get("content-security-policy") or "")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15_000)
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/calls")
