"""Fixtures for evaluator tests that go through the server (the API client is the shared one); each module
opens its own ``services``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from convoscope.server.services import Services


@pytest.fixture
def settle(services: Services) -> Callable[[], None]:
    """Store what the outbox holds, then run every due job."""

    def run() -> None:
        while services.worker.drain_once():
            pass
        services.jobs.run_until_idle()

    return run
