"""The web UI in a real browser: Debian's chromium driven by Playwright, against a live server on loopback
holding the demo data (its calls, recordings and the jobs' scores).

Every page a test opens is watched: a console error, an uncaught exception or a failed request fails the
test at teardown, so a page that renders but breaks in the browser does not pass.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from convoscope.cli.demo import seed_demo
from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import open_clickhouse_store
from convoscope.testing.live_app import serve_app

KEY = "cvs_ui_test_key_0123456789abcdef0123"
DEMO_CALLS = 40


@dataclass
class UiServer:
    """The live server, its services (to look data up), and the key that signs in."""

    url: str
    services: Services
    key: str = KEY

    @property
    def project_id(self) -> str:
        return self.services.default_project.id


@pytest.fixture(scope="module")
def ui(chdb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """One server per test module, seeded with the demo calls and their jobs run (scores, analysis)."""
    store = open_clickhouse_store(path=chdb_dir, database=f"ui_{uuid.uuid4().hex}")
    data_dir = tmp_path_factory.mktemp("ui-data")
    services = open_services(Settings(data_dir=data_dir, init_api_key=KEY), store=store)
    try:
        seed_demo(services, count=DEMO_CALLS)
        services.jobs.run_until_idle()
        with serve_app(create_app(services, run_worker=False)) as url:
            yield UiServer(url=url, services=services)
    finally:
        services.meta.close()
        store.close()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's chromium (scripts/test installs it); a missing browser fails, it never skips."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "chromium is not installed: run scripts/test, which installs Debian's chromium"
    launched = playwright_driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class Watch:
    """What went wrong in the browser while a test ran."""

    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    def failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED" and urlsplit(request.url).path.endswith("/audio"):
            return  # a streaming player's range request, cancelled by the browser when the page is left
        self.errors.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def response(self, response: Any) -> None:
        if response.status >= 500:
            self.errors.append(f"server error: {response.status} {response.url}")


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, ui: UiServer, watch: Watch) -> Iterator[Page]:
    """A signed-in page at 1280 px; console errors and failed requests fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=ui.url)
    opened = context.new_page()
    opened.on("console", watch.console)
    opened.on("pageerror", watch.page_error)
    opened.on("requestfailed", watch.failed)
    opened.on("response", watch.response)
    opened.goto(f"/?key={ui.key}")
    try:
        yield opened
    finally:
        context.close()
    assert watch.errors == [], "\n".join(watch.errors)


@pytest.fixture
def anonymous(browser: Browser, ui: UiServer, watch: Watch) -> Iterator[Page]:
    """A page that has not signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=ui.url)
    opened = context.new_page()
    opened.on("console", watch.console)
    opened.on("pageerror", watch.page_error)
    try:
        yield opened
    finally:
        context.close()
