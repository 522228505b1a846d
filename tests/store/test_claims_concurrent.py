"""Several stores (as several processes would open them) claiming from one queue at once take disjoint rows.

The outbox claim is PostgreSQL's case (SQLite has one writing process per data directory): rows are read
``FOR UPDATE SKIP LOCKED`` and leased to their claimer. The job queue claim marks jobs running, so it is
checked on both backends.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.store.metadata import JobSpec, MetadataStore
from pg import PostgresCluster

CLAIMERS = 4


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    url = postgres.database()
    try:
        yield url
    finally:
        postgres.drop(url)


def _concurrently(url: str, work: Callable[[MetadataStore], list[int]]) -> list[list[int]]:
    """Run ``work`` in ``CLAIMERS`` threads at once, each on a store of its own; what each claimed."""
    stores = [MetadataStore(url) for _ in range(CLAIMERS)]
    start = threading.Barrier(CLAIMERS)
    claimed: list[list[int]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            claimed[index] = work(stores[index])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(CLAIMERS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for store in stores:
            store.close()
    assert not errors, errors
    return claimed


def _drain_outbox(store: MetadataStore) -> list[int]:
    taken: list[int] = []
    while items := store.claim(7):
        ids = [item.id for item in items]
        taken.extend(ids)
        store.mark_done(ids)
    return taken


def test_outbox_claims_from_several_stores_are_disjoint_and_take_every_row_once(postgres_url: str) -> None:
    with MetadataStore(postgres_url) as meta:
        projects = [meta.ensure_project(f"p{n}").id for n in range(3)]
        enqueued = [
            meta.enqueue(projects[n % 3], kind="calls", payload=b"%d" % n, content_type="application/json")
            for n in range(300)
        ]
    claimed = _concurrently(postgres_url, _drain_outbox)
    counts = Counter(row_id for taken in claimed for row_id in taken)
    assert sorted(counts) == sorted(enqueued)
    assert set(counts.values()) == {1}, [row_id for row_id, n in counts.items() if n > 1]
    assert sum(1 for taken in claimed if taken) > 1  # the claimers really shared the queue


def test_an_outbox_claim_is_leased_to_its_store_until_the_lease_runs_out(postgres_url: str) -> None:
    with MetadataStore(postgres_url) as first, MetadataStore(postgres_url) as second:
        project = first.ensure_project("p").id
        ids = [first.enqueue(project, kind="calls", payload=b"x", content_type="x") for _ in range(3)]
        assert [item.id for item in first.claim(2)] == ids[:2]
        assert [item.id for item in second.claim(10)] == ids[2:]  # not the rows the first one holds
        assert [item.id for item in first.claim(10)] == ids[:2]  # its own again (at-least-once)
        # The first store died with its claim: once the lease has run out, another takes the rows.
        later = datetime.now(UTC) + timedelta(minutes=6)
        assert [item.id for item in second.claim(10, now=later)] == ids
        # A released row is free for every store at once.
        first.release(ids[0], "try again")
        assert [item.id for item in first.claim(1)] == ids[:1]


def test_job_claims_from_several_stores_are_disjoint_and_take_every_job_once(metadata_url: str) -> None:
    with MetadataStore(metadata_url) as meta:
        project = meta.ensure_project("p").id
        meta.enqueue_jobs(project, [JobSpec("analyse", f"call-{n}") for n in range(200)])

    def drain(store: MetadataStore) -> list[int]:
        taken: list[int] = []
        while jobs := store.claim_jobs({"analyse"}, 5):
            ids = [job.id for job in jobs]
            taken.extend(ids)
            store.finish_jobs(ids)
        return taken

    claimed = _concurrently(metadata_url, drain)
    counts = Counter(job_id for taken in claimed for job_id in taken)
    assert len(counts) == 200
    assert set(counts.values()) == {1}
    with MetadataStore(metadata_url) as meta:
        assert meta.job_counts() == {"pending": 0, "running": 0, "failed": 0}
