"""A real server on a loopback port over real stores, and a scan of everything it keeps.

The app is served by uvicorn in a thread (``serve_app``) over services whose chDB database and data
directory belong to the test, so after ingest the test can read every table of both stores and every
file of the data directory, and the log records the server emitted, and look for personal data there.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.testing.live_app import serve_app

KEY = "cvs_redaction_test_key_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}

# What a caller says in the tests, written and spoken, and what of it must never be stored.
WRITTEN = "Hi, my number is 555-867-5309 and my email is jane@example.com."
CARD = "The card is 4111 1111 1111 1111, expiring next year."
SPOKEN = "Again, that is five five five, eight six seven, five three oh nine."
SPELLED = "My national insurance number is Q Q one two three four five six C."
SPOKEN_EMAIL = "Or write to jane dot doe at example dot com."
AGENT = "Thanks, your appointment is booked for Tuesday."
PII_NEEDLES = (
    "555-867-5309",
    "5558675309",
    "8675309",
    "jane@example.com",
    "4111 1111 1111 1111",
    "4111111111111111",
    "eight six seven",
    "five three oh nine",
    "one two three four five six",
    "QQ123456C",
    "jane dot doe",
)
CONTROL = "appointment"
"""Words every test call holds that are no personal data: the scan must find them, or it reads nothing."""

REDACT_ON = {"enabled": True, "kinds": ["phone", "email", "card", "national_id"], "recordings": "mute"}


@dataclass
class Live:
    """The served app, its services and what the test needs to drive and inspect them."""

    services: Services
    url: str
    data_dir: Path
    store: ClickHouseStore
    logs: pytest.LogCaptureFixture

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        return httpx.post(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=AUTH, timeout=30, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.put(f"{self.url}{path}", headers=AUTH, timeout=30, **kwargs)

    def redact(self, setting: dict[str, Any]) -> None:
        response = self.put("/api/v1/settings/redaction", json=setting)
        assert response.status_code == 200, response.text

    def process(self, *, settle_s: float = 0.0) -> None:
        """Store what the outbox holds and run the follow-up jobs, until nothing is left to do."""
        deadline = time.monotonic() + settle_s
        while True:
            while self.services.worker.drain_once():
                pass
            ran = self.services.jobs.run_until_idle()
            if not ran and time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def calls(self) -> list[dict[str, Any]]:
        items = self.get("/api/v1/calls", params={"limit": 100}).json()["items"]
        return [self.get(f"/api/v1/calls/{item['id']}").json() for item in items]

    def kept_text(self) -> dict[str, str]:
        """Every place the server keeps data, as text: each chDB table, each metadata table (compressed
        payloads decompressed), each file of the data directory but the metadata database, and the log."""
        found: dict[str, str] = {}
        db = self.store.database
        for (table,) in self.store.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db}
        ):
            rows = self.store.query(f"SELECT * FROM `{db}`.`{table}`")
            found[f"chdb:{table}"] = "\n".join(repr(row) for row in rows)
        engine = self.services.meta.engine
        with engine.connect() as connection:
            for table in inspect(engine).get_table_names():
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
                found[f"sqlite:{table}"] = "\n".join(_row_text(row) for row in rows)
        for path in self.data_dir.rglob("*"):
            if path.is_file() and not path.name.startswith("metadata.db"):
                found[f"file:{path.relative_to(self.data_dir)}"] = path.read_bytes().decode("latin-1")
        found["log"] = self.logs.text
        return found


def _row_text(row: Any) -> str:
    parts = []
    for value in row:
        if isinstance(value, bytes | memoryview):
            raw = bytes(value)
            try:
                raw = zlib.decompress(raw)
            except zlib.error:
                pass
            parts.append(raw.decode("utf-8", "replace"))
        else:
            parts.append(repr(value))
    return " | ".join(parts)


def leaks(kept: dict[str, str]) -> list[tuple[str, str]]:
    """(place, needle) for every personal value found anywhere the server keeps data."""
    return [
        (place, needle)
        for place, content in kept.items()
        for needle in PII_NEEDLES
        if needle.lower() in content.lower()
    ]


def holds(kept: dict[str, str], needle: str) -> list[str]:
    return [place for place, content in kept.items() if needle.lower() in content.lower()]


def live_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        init_api_key=KEY,
        otlp_settle_s=0.0,
        otlp_idle_s=0.3,
        otlp_chat_idle_s=0.3,
    )


@pytest.fixture
def live(
    tmp_path: Path, clickhouse_store: ClickHouseStore, caplog: pytest.LogCaptureFixture
) -> Iterator[Live]:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="convoscope")
    settings = live_settings(tmp_path)
    services = open_services(settings, store=clickhouse_store)
    try:
        with serve_app(create_app(services, run_worker=False)) as url:
            yield Live(services, url, settings.data_dir, clickhouse_store, caplog)
    finally:
        services.meta.close()
