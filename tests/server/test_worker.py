"""The ingest worker stores what the outbox holds, with or without the handler's parsed calls."""

from __future__ import annotations

import orjson

from convoscope.ingest.canonical import parse_calls
from convoscope.server.services import Services, limits_of
from convoscope.store.base import CallFilter
from convoscope.testing import call_payload


def _enqueue(services: Services, external_ids: list[str], agent: str = "a") -> tuple[int, bytes]:
    body = orjson.dumps([call_payload(external_id=x, agent_id=agent) for x in external_ids])
    row = services.meta.enqueue(
        services.default_project.id, kind="calls", payload=body, content_type="application/json"
    )
    return row, body


def test_rows_without_a_hand_over_are_parsed_from_the_outbox(services: Services) -> None:
    # What a restart looks like: committed rows, no in-memory offers.
    _enqueue(services, ["r1", "r2"])
    _enqueue(services, ["r3"])
    assert services.worker.drain_once() == 2
    assert services.store.count_calls(services.default_project.id) == 3
    assert services.meta.pending_count() == 0


def test_a_late_hand_over_is_forgotten_and_a_later_row_wins(services: Services) -> None:
    first, _ = _enqueue(services, ["same"], agent="old")
    assert services.worker.drain_once() == 1
    # The handler's offer arrives after the worker already stored the row from its payload.
    services.worker.hand_over(
        first, parse_calls(orjson.dumps([call_payload(external_id="x")]), limits_of(services.settings))
    )
    second, body = _enqueue(services, ["same"], agent="new")
    services.worker.hand_over(second, parse_calls(body, limits_of(services.settings)))
    assert services.worker.drain_once() == 1
    project = services.default_project.id
    page = services.store.list_calls(project, CallFilter(), limit=10, cursor=None)
    assert [(c.external_id, c.agent_id) for c in page.items] == [("same", "new")]
    assert services.worker.drain_once() == 0


def test_a_failing_row_is_kept_as_failed_and_the_rest_stored(services: Services) -> None:
    project = services.default_project.id
    services.meta.enqueue(project, kind="calls", payload=b"{broken", content_type="application/json")
    _enqueue(services, ["fine"])
    assert services.worker.drain_once() == 2
    assert services.store.count_calls(project) == 1
    assert services.worker.failed_rows == 1
    assert services.meta.pending_count() == 0


def test_drained_payloads_are_purged_after_the_retention(services: Services) -> None:
    from datetime import UTC, datetime, timedelta

    row, _ = _enqueue(services, ["old"])
    services.worker.drain_once()
    assert services.worker.purge_if_due(now=datetime.now(UTC)) == 0  # younger than the retention
    assert services.worker.purge_if_due(now=datetime.now(UTC) + timedelta(minutes=1)) == 0  # not due yet
    later = datetime.now(UTC) + timedelta(days=services.settings.outbox_retention_days, seconds=1)
    assert services.worker.purge_if_due(now=later) == 1
    assert services.meta.status(row) is None
    assert services.store.count_calls(services.default_project.id) == 1  # the call itself stays
