"""The post-ingest job queue, raw vendor events and project settings in the metadata store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.errors import InputError, NotFound
from convoscope.store.jobqueue import JobFailure, NewSourceEvent
from convoscope.store.metadata import JobSpec, MetadataStore, ProjectInfo, setting_at


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    store = MetadataStore(metadata_url)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def project(meta: MetadataStore) -> ProjectInfo:
    return meta.ensure_project("default")


def test_a_job_runs_once_per_claim_and_its_outcome_is_recorded_on_the_call(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(
        project.id, [JobSpec("audio.analyze", "c1", {"vad": "silero"}), JobSpec("evals.run", "c1")]
    )
    claimed = meta.claim_jobs({"audio.analyze"}, 10)
    assert [(job.kind, job.call_id, job.params, job.attempts) for job in claimed] == [
        ("audio.analyze", "c1", {"vad": "silero"}, 1)
    ]
    assert meta.claim_jobs({"audio.analyze"}, 10) == []  # running: not handed out twice
    meta.fail_job(claimed[0].id, "recording is not audio")
    statuses = {status.kind: status for status in meta.jobs_for_call(project.id, "c1")}
    assert statuses["audio.analyze"].status == "failed"
    assert statuses["audio.analyze"].error == "recording is not audio"
    assert statuses["evals.run"].status == "pending"
    assert meta.job_counts() == {"pending": 1, "running": 0, "failed": 1}


def test_enqueuing_again_replaces_params_and_revives_a_failed_job(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(project.id, [JobSpec("audio.analyze", "c1", {"gap": 1})])
    (job,) = meta.claim_jobs({"audio.analyze"}, 10)
    meta.fail_job(job.id, "boom")
    meta.enqueue_jobs(project.id, [JobSpec("audio.analyze", "c1", {"gap": 2})])
    (again,) = meta.claim_jobs({"audio.analyze"}, 10)
    assert again.id == job.id and again.params == {"gap": 2} and again.attempts == 1
    meta.finish_job(again.id)
    (status,) = meta.jobs_for_call(project.id, "c1")
    assert (status.status, status.error) == ("done", None)


def test_a_job_queued_while_running_runs_again_after_it_finishes(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", "c1", {"v": 1})])
    (running,) = meta.claim_jobs({"evals.run"}, 10)
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", "c1", {"v": 2})])
    meta.finish_job(running.id)  # finishes the old parameters; the newer request must not be lost
    (rerun,) = meta.claim_jobs({"evals.run"}, 10)
    assert rerun.params == {"v": 2}


def test_retry_waits_until_its_time_and_run_after_is_respected(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    now = datetime.now(UTC)
    meta.enqueue_jobs(project.id, [JobSpec("otlp.assemble", "conv-1", run_after=now + timedelta(seconds=30))])
    assert meta.claim_jobs({"otlp.assemble"}, 10, now=now) == []
    (job,) = meta.claim_jobs({"otlp.assemble"}, 10, now=now + timedelta(seconds=31))
    meta.fail_job(job.id, "server slow", retry_at=now + timedelta(seconds=60))
    assert meta.claim_jobs({"otlp.assemble"}, 10, now=now + timedelta(seconds=59)) == []
    (retried,) = meta.claim_jobs({"otlp.assemble"}, 10, now=now + timedelta(seconds=61))
    assert retried.attempts == 2
    (status,) = meta.jobs_for_call(project.id, "conv-1")
    assert status.status == "running" and status.error == "server slow"


def test_recover_hands_back_jobs_of_a_dead_process(
    metadata_url: str, meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", "c1"), JobSpec("evals.run", "c2")])
    brief = MetadataStore(metadata_url, claim_lease_s=0.5)  # a process whose lease will lapse
    try:
        (lapsed,) = brief.claim_jobs({"evals.run"}, 1)
    finally:
        brief.close()
    (live,) = meta.claim_jobs({"evals.run"}, 1)
    assert live.call_id != lapsed.call_id
    time.sleep(0.6)
    if meta.backend == "sqlite":
        # One process runs jobs per SQLite database: whatever runs at its start was left by its last run.
        assert meta.recover_jobs() == 2
        assert {job.call_id for job in meta.claim_jobs({"evals.run"}, 10)} == {"c1", "c2"}
    else:
        # Other workers share a PostgreSQL queue: a job whose lease is alive is theirs, not abandoned.
        assert meta.recover_jobs() == 1
        assert [job.call_id for job in meta.claim_jobs({"evals.run"}, 10)] == [lapsed.call_id]


def test_a_job_whose_lease_lapsed_is_taken_over_and_only_its_new_claimer_settles_it(
    metadata_url: str,
) -> None:
    first, second = (MetadataStore(metadata_url, claim_lease_s=0.6) for _ in range(2))
    try:
        project = first.ensure_project("default")
        first.enqueue_jobs(project.id, [JobSpec("audio.analyze", "c1")])
        (job,) = first.claim_jobs({"audio.analyze"}, 10)
        assert second.claim_jobs({"audio.analyze"}, 10) == []  # leased to the first
        time.sleep(0.4)
        assert first.renew_jobs([job.id]) == 1  # the first is alive and working: the lease goes on
        time.sleep(0.4)
        assert second.claim_jobs({"audio.analyze"}, 10) == []
        time.sleep(0.8)  # the first stops renewing, as a killed worker does
        (taken,) = second.claim_jobs({"audio.analyze"}, 10)
        assert (taken.id, taken.attempts) == (job.id, 2)
        assert first.renew_jobs([job.id]) == 0  # no longer the first's
        first.finish_job(job.id)  # a late outcome from the first changes nothing
        (status,) = first.jobs_for_call(project.id, "c1")
        assert status.status == "running"
        second.finish_job(taken.id)
        (status,) = first.jobs_for_call(project.id, "c1")
        assert status.status == "done"
    finally:
        first.close()
        second.close()


def test_concurrent_claims_never_share_a_job(meta: MetadataStore, project: ProjectInfo) -> None:
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", f"c{i}") for i in range(60)])
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while jobs := meta.claim_jobs({"evals.run"}, 5):
            with lock:
                seen.extend(job.call_id for job in jobs)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(f"c{i}" for i in range(60))


def test_a_batch_larger_than_one_statement_queues_new_jobs_and_resets_known_ones(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(
        project.id, [JobSpec("evals.run", "c0", {"v": 1}), JobSpec("evals.run", "c1", {"v": 1})]
    )
    (running, failed) = meta.claim_jobs({"evals.run"}, 10)
    meta.fail_job(failed.id, "boom")
    later = datetime.now(UTC) + timedelta(hours=1)
    batch = [JobSpec("evals.run", f"c{i}", {"v": 2}) for i in range(1_200)]
    batch.append(JobSpec("evals.run", "c5", {"v": 3}, run_after=later))  # the last of a key wins
    meta.enqueue_jobs(project.id, batch)
    assert meta.job_counts() == {"pending": 1_200, "running": 0, "failed": 0}
    meta.finish_job(running.id)  # re-queued meanwhile: stays pending
    claimed = meta.claim_jobs({"evals.run"}, 2_000)
    assert len(claimed) == 1_199
    assert {job.params["v"] for job in claimed} == {2}
    assert all(job.attempts == 1 for job in claimed)
    assert {job.id for job in claimed} >= {running.id, failed.id}  # the same rows, reset
    meta.finish_jobs([job.id for job in claimed])  # else their leases would have lapsed an hour later
    (waiting,) = meta.claim_jobs({"evals.run"}, 10, now=later)
    assert (waiting.call_id, waiting.params) == ("c5", {"v": 3})
    (status,) = [s for s in meta.jobs_for_call(project.id, "c1") if s.kind == "evals.run"]
    assert status.error is None


def test_job_errors(meta: MetadataStore, project: ProjectInfo) -> None:
    with pytest.raises(NotFound):
        meta.finish_job(12345)
    with pytest.raises(InputError):
        meta.enqueue_jobs(project.id, [JobSpec("evals.run", "c1", run_after=datetime(2026, 1, 1))])  # noqa: DTZ001


def test_source_events_keep_order_and_ignore_replays(meta: MetadataStore, project: ProjectInfo) -> None:
    assert meta.add_source_event(project.id, "retell", "call-1", "call_started", b'{"a": 1}')
    assert meta.add_source_event(project.id, "retell", "call-1", "call_ended", b'{"a": 2}')
    assert not meta.add_source_event(project.id, "retell", "call-1", "call_started", b'{"a": 1}')
    assert meta.add_source_event(project.id, "retell", "call-2", "call_started", b'{"b": 1}')
    assert meta.source_events(project.id, "retell", "call-1") == [b'{"a": 1}', b'{"a": 2}']
    assert meta.source_events(project.id, "vapi", "call-1") == []


def test_a_batch_of_source_events_is_kept_at_once_and_says_which_were_new(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    assert meta.add_source_event(project.id, "retell", "call-1", "call_started", b"s")
    fresh = meta.add_source_events(
        [
            NewSourceEvent(project.id, "retell", "call-1", "call_started", b"s"),  # stored before
            NewSourceEvent(project.id, "retell", "call-1", "call_ended", b"e"),
            NewSourceEvent(project.id, "retell", "call-2", "call_started", b"t"),
            NewSourceEvent(project.id, "retell", "call-1", "call_ended", b"e"),  # twice in the batch
        ]
    )
    assert fresh == [False, True, True, False]
    assert meta.add_source_events([]) == []
    assert meta.source_events(project.id, "retell", "call-1") == [b"s", b"e"]
    assert meta.source_events(project.id, "retell", "call-2") == [b"t"]


def test_project_settings_paths(meta: MetadataStore, project: ProjectInfo) -> None:
    meta.update_project_settings(project.id, ("sources", "retell", "webhook_secret"), "s3cret")
    meta.update_project_settings(project.id, ("sources", "retell", "channel_map"), ["user", "agent"])
    settings = meta.project_settings(project.id)
    assert setting_at(settings, ("sources", "retell")) == {
        "webhook_secret": "s3cret",
        "channel_map": ["user", "agent"],
    }
    meta.update_project_settings(project.id, ("sources", "retell", "webhook_secret"), None)
    assert setting_at(meta.project_settings(project.id), ("sources", "retell", "webhook_secret")) is None
    assert setting_at(meta.project_settings(project.id), ("missing", "x"), "default") == "default"
    with pytest.raises(NotFound):
        meta.project_settings("nope")
    with pytest.raises(InputError):
        meta.update_project_settings(project.id, (), 1)


def test_a_batch_of_jobs_is_settled_at_once_and_an_unknown_id_records_nothing(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", f"c{n}") for n in range(4)])
    jobs = {job.call_id: job for job in meta.claim_jobs({"evals.run"}, 10)}
    retry_at = datetime.now(UTC) + timedelta(seconds=60)
    with pytest.raises(NotFound, match="job 999999 not found"):
        meta.settle_jobs([jobs["c0"].id, 999_999])
    assert meta.job_counts()["running"] == 4, "nothing settled when one id is unknown"
    meta.enqueue_jobs(project.id, [JobSpec("evals.run", "c1", {"v": 2})])  # queued again while running
    meta.settle_jobs(
        [jobs["c0"].id, jobs["c1"].id],
        [JobFailure(jobs["c2"].id, "judge 429", retry_at), JobFailure(jobs["c3"].id, "no transcript")],
    )
    found = meta.jobs_for_calls(project.id, ["c0", "c1", "c2", "c3", "c9"])
    assert {call: [(s.status, s.error) for s in statuses] for call, statuses in found.items()} == {
        "c0": [("done", None)],
        "c1": [("pending", None)],
        "c2": [("pending", "judge 429")],
        "c3": [("failed", "no transcript")],
    }
    assert [job.call_id for job in meta.claim_jobs({"evals.run"}, 10)] == ["c1"]
    assert [job.call_id for job in meta.claim_jobs({"evals.run"}, 10, now=retry_at)] == ["c2"]


def test_jobs_of_many_calls_are_read_at_once_by_kind(meta: MetadataStore, project: ProjectInfo) -> None:
    other = meta.ensure_project("other")
    calls = [f"c{n}" for n in range(1_200)]  # more than one IN (...) chunk
    meta.enqueue_jobs(
        project.id, [JobSpec(kind, c) for c in calls for kind in ("audio.analyze", "evals.run")]
    )
    meta.enqueue_jobs(other.id, [JobSpec("audio.analyze", "c1")])
    found = meta.jobs_for_calls(project.id, calls, kinds={"audio.analyze"})
    assert sorted(found) == sorted(calls)
    assert all([s.kind for s in statuses] == ["audio.analyze"] for statuses in found.values())
    both = meta.jobs_for_calls(project.id, ["c1", "c7"])
    for call in ("c1", "c7"):
        assert both[call] == meta.jobs_for_call(project.id, call)
    assert meta.jobs_for_calls(other.id, ["c1", "c2"]).keys() == {"c1"}
