"""Request rate limits (429 with ``Retry-After``, per key and per sign-in address) and the security headers
every answer carries, with the content security policy of the HTML pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from convoscope.config import Settings
from convoscope.server.app import create_app
from convoscope.server.security_headers import PAGE_POLICY
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import ClickHouseStore

KEY = "cvs_test_key_project_default_0001"


@pytest.fixture
def limited(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[tuple[TestClient, Services]]:
    settings = Settings(
        data_dir=tmp_path / "data", init_api_key=KEY, rate_limit="5/minute", login_rate_limit="3/minute"
    )
    services = open_services(settings, store=clickhouse_store)
    try:
        yield TestClient(create_app(services, run_worker=False)), services
    finally:
        services.meta.close()


def test_a_key_past_its_rate_gets_429_with_retry_after_and_other_keys_go_on(
    limited: tuple[TestClient, Services],
) -> None:
    client, services = limited
    other = services.meta.create_api_key(services.default_project.id, name="other")
    mine = {"Authorization": f"Bearer {KEY}"}
    assert [client.get("/api/v1/calls", headers=mine).status_code for _ in range(5)] == [200] * 5
    refused = client.get("/api/v1/calls", headers=mine)
    assert refused.status_code == 429
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 60
    error = refused.json()["error"]
    assert error["type"] == "RateLimited"
    assert error["message"] == f"more than 5 requests with this API key per minute; retry in {retry} s"
    # The OTLP receiver counts against the same key; another key has its own window.
    assert client.post("/v1/traces", headers=mine, content=b"").status_code == 429
    assert client.get("/api/v1/calls", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    # Unauthenticated requests are not counted against a key: they get 401 from authentication.
    assert client.get("/api/v1/calls").status_code == 401


def test_sign_in_attempts_from_one_address_are_bounded(limited: tuple[TestClient, Services]) -> None:
    client, _ = limited
    answers = [client.post("/login", data={"key": "wrong", "csrf": "x"}).status_code for _ in range(4)]
    assert 429 not in answers[:3] and answers[3] == 429
    page = client.get("/login")  # reading the form is not an attempt
    assert page.status_code == 200


@pytest.mark.parametrize("rate", ["5", "5/fortnight", "0/minute", "-1/second", "5 per minute"])
def test_a_malformed_rate_is_refused_naming_the_setting(tmp_path: Path, rate: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit"):
        Settings(data_dir=tmp_path, rate_limit=rate)


def test_every_answer_carries_the_security_headers_and_pages_their_policy(
    client: TestClient, key: str
) -> None:
    api = client.get("/api/v1/calls", headers={"Authorization": f"Bearer {key}"})
    login = client.get("/login")
    docs = client.get("/docs")
    for answer in (api, login, docs, client.get("/healthz")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in api.headers  # JSON is never rendered as a page
    assert login.headers["content-security-policy"] == PAGE_POLICY
    assert "script-src 'self';" in PAGE_POLICY and "frame-ancestors 'none'" in PAGE_POLICY
    # Swagger UI starts with an inline script: the docs pages, and only they, allow one.
    assert "script-src 'self' 'unsafe-inline'" in docs.headers["content-security-policy"]
    page_scripts = login.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert "unsafe-inline" not in page_scripts
