"""Schedules in the metadata database: written, replaced with their last run kept, listed across
projects, claimed once per fire time, and their outcomes recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.store.metadata import MetadataStore

BODY = {"name": "nightly", "cron": "0 3 * * *", "action": {"kind": "reevaluate"}}


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(metadata_url)
    yield store
    store.close()


def test_a_schedule_is_written_replaced_listed_and_deleted(meta: MetadataStore) -> None:
    project = meta.ensure_project("a").id
    created = meta.put_schedule(project, "nightly", BODY, True)
    assert created.created and created.last_run_at is None and created.body == BODY
    at = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    assert meta.record_schedule_run(project, "nightly", at, {"trigger": "manual", "queued": 3})

    replaced = meta.put_schedule(project, "nightly", {**BODY, "cron": "0 4 * * *"}, False)
    assert not replaced.created and not replaced.enabled
    assert replaced.last_run_at == at and replaced.last_result == {"trigger": "manual", "queued": 3}
    assert [s.id for s in meta.list_schedules(project)] == ["nightly"]
    got = meta.get_schedule(project, "nightly")
    assert got is not None and got.body["cron"] == "0 4 * * *"

    assert meta.delete_schedule(project, "nightly")
    assert not meta.delete_schedule(project, "nightly")
    assert meta.get_schedule(project, "nightly") is None
    assert not meta.record_schedule_run(project, "nightly", at, {"queued": 0})


def test_enabled_schedules_span_every_project(meta: MetadataStore) -> None:
    first, second = meta.ensure_project("a").id, meta.ensure_project("b").id
    meta.put_schedule(first, "on", BODY, True)
    meta.put_schedule(first, "off", BODY, False)
    meta.put_schedule(second, "on", BODY, True)
    assert sorted((s.project_id, s.id) for s in meta.enabled_schedules()) == sorted(
        [(first, "on"), (second, "on")]
    )
    assert meta.list_schedules(second)[0].project_id == second


def test_a_fire_time_is_claimed_once_and_only_forward(meta: MetadataStore) -> None:
    project = meta.ensure_project("a").id
    meta.put_schedule(project, "s", BODY, True)
    fire = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    assert meta.claim_schedule_fire(project, "s", fire)
    assert not meta.claim_schedule_fire(project, "s", fire)  # a second server over the same database
    assert not meta.claim_schedule_fire(project, "s", fire - timedelta(days=1))
    assert meta.claim_schedule_fire(project, "s", fire + timedelta(days=1))
    stored = meta.get_schedule(project, "s")
    assert stored is not None and stored.last_fire_at == fire + timedelta(days=1)

    meta.put_schedule(project, "s", BODY, False)
    assert not meta.claim_schedule_fire(project, "s", fire + timedelta(days=2))  # disabled
    assert not meta.claim_schedule_fire(project, "gone", fire)


def test_schedules_go_with_their_project_and_stay_apart_between_projects(meta: MetadataStore) -> None:
    first, second = meta.ensure_project("a").id, meta.ensure_project("b").id
    meta.put_schedule(first, "s", BODY, True)
    assert meta.get_schedule(second, "s") is None
    assert not meta.delete_schedule(second, "s")
    assert meta.get_schedule(first, "s") is not None
