"""The ``evals.run`` job as a batch: one handler call evaluates many calls, each with its own outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from convoscope.errors import ConvoscopeError
from convoscope.evals.jobs import EvalsJob, evaluate_stored
from convoscope.evals.profiles import profile_for
from convoscope.runtime.jobs import Batched, JobRunner
from convoscope.runtime.kinds import AUDIO_ANALYZE, EVALS_RUN
from convoscope.server.services import Services
from convoscope.store.metadata import Job, JobSpec
from convoscope.testing import make_call

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
LEAK = "Sure, it's 4111 1111 1111 1111. I've booked you for Tuesday."


def _turns(agent_text: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "text": "Can you help me with my booking?", "start_s": 0.0, "end_s": 2.0},
        {"role": "agent", "text": agent_text, "start_s": 2.6, "end_s": 6.0},
    ]


def _store(services: Services, project_id: str, external_id: str, **overrides: Any) -> str:
    call = make_call(external_id=external_id, started_at=T0.isoformat(), **overrides)
    (call_id,) = services.store_calls(project_id, [call])
    return call_id


def _expected(services: Services, project_id: str, call_id: str, only: list[str] | None) -> dict[str, Any]:
    """What evaluating the call on its own gives: (value, error) by metric."""
    stored = services.store.get_call(project_id, call_id)
    assert stored is not None
    profile = profile_for(stored.call.agent_id, services.meta.project_settings(project_id))
    results = evaluate_stored(stored.call, stored.scores, profile, judge=None, only=only)
    return {result.metric: (result.value, result.error) for result in results}


def _stored_scores(services: Services, project_id: str, call_id: str) -> dict[str, Any]:
    stored = services.store.get_call(project_id, call_id)
    assert stored is not None
    return {score.metric: (score.value, score.error) for score in stored.scores}


def test_one_batch_evaluates_each_call_as_alone_and_keeps_every_outcome_apart(services: Services) -> None:
    default = services.default_project.id
    other = services.meta.ensure_project("other").id
    services.meta.update_project_settings(
        default, ("agents", "picky"), {"judge_model": "m", "judge_api_key_env": "CONVOSCOPE_TEST_UNSET_KEY"}
    )
    plain = _store(services, default, "plain", turns=_turns("Booked for Tuesday."))
    leaky = _store(services, default, "leaky", turns=_turns(LEAK))
    waiting = _store(services, default, "waiting", turns=_turns(LEAK))
    picky = _store(services, default, "picky", agent_id="picky", turns=_turns(LEAK))
    elsewhere = _store(services, other, "elsewhere", turns=_turns(LEAK))
    later = datetime.now(UTC) + timedelta(hours=1)
    services.meta.enqueue_jobs(default, [JobSpec(AUDIO_ANALYZE, waiting, run_after=later)])
    services.meta.enqueue_jobs(
        default,
        [JobSpec(EVALS_RUN, leaky, params={"metrics": ["pii_leakage"]}), JobSpec(EVALS_RUN, "no-such-call")],
    )
    expected = {
        plain: _expected(services, default, plain, None),
        leaky: _expected(services, default, leaky, ["pii_leakage"]),
        elsewhere: _expected(services, other, elsewhere, None),
    }

    handler = EvalsJob.of(services)
    batches: list[int] = []

    def observed(jobs: Sequence[Job]) -> Mapping[int, ConvoscopeError]:
        batches.append(len(jobs))
        return handler.run_batch(jobs)

    runner = JobRunner(services.meta, {EVALS_RUN: Batched(observed, size=64)})
    assert runner.run_once() == 6
    assert batches == [6], "every due evaluation went to the handler at once"

    for project_id, call_id in ((default, plain), (default, leaky), (other, elsewhere)):
        assert _stored_scores(services, project_id, call_id) == expected[call_id]
    assert set(expected[leaky]) == {"pii_leakage"} and expected[leaky]["pii_leakage"][0] == 1.0
    assert _stored_scores(services, default, waiting) == {}, "no transcript estimates before the audio"
    assert _stored_scores(services, default, picky) == {}

    states = services.meta.jobs_for_calls(default, [plain, waiting, picky, "no-such-call"], kinds={EVALS_RUN})
    outcome = {call: (s[0].status, s[0].attempts, s[0].error) for call, s in states.items()}
    assert outcome[plain] == ("done", 1, None)
    assert outcome[waiting] == ("pending", 0, None), "waiting for audio is not a failed attempt"
    assert outcome["no-such-call"] == ("failed", 1, "call no-such-call not found")
    status, _, error = outcome[picky]
    assert status == "failed" and "CONVOSCOPE_TEST_UNSET_KEY" in (error or "")
    (again,) = services.meta.claim_jobs({EVALS_RUN}, 10, now=later)
    assert (again.call_id, again.params) == (waiting, {"audio_waits": 1})
    handler.close()


def test_a_failing_project_fails_only_its_own_jobs(services: Services) -> None:
    default = services.default_project.id
    kept = _store(services, default, "kept", turns=_turns(LEAK))
    services.meta.enqueue_jobs("gone-project", [JobSpec(EVALS_RUN, "call-of-a-gone-project")])
    handler = EvalsJob.of(services)
    runner = JobRunner(services.meta, {EVALS_RUN: handler.batched()})
    assert runner.run_once() == 2
    assert set(_stored_scores(services, default, kept)) == set(_expected(services, default, kept, None))
    (gone,) = services.meta.jobs_for_call("gone-project", "call-of-a-gone-project")
    assert (gone.status, gone.error) == ("failed", "project gone-project not found")
    assert runner.failed_jobs == 1 and runner.done_jobs == 1
    handler.close()
