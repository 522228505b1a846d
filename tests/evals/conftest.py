"""Fixtures for evaluator tests that go through the server; each module opens its own ``services``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from convoscope.server.app import create_app
from convoscope.server.services import Services


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services, run_worker=False), raise_server_exceptions=True)


@pytest.fixture
def settle(services: Services) -> Callable[[], None]:
    """Store what the outbox holds, then run every due job."""

    def run() -> None:
        while services.worker.drain_once():
            pass
        services.jobs.run_until_idle()

    return run
