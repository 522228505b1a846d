"""The queue and labels in the metadata store: idempotent queueing, claims that keep a call with one
reviewer, skips, and one label per (call, metric, reviewer) unless it is replaced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.store.metadata import MetadataStore, ProjectInfo
from convoscope.store.reviews_meta import ITEM_DONE, LabelExists, NewLabel, QueueCandidate, Reviewer
from convoscope.store.users_meta import Role

from .conftest import T0

ALICE = Reviewer("k-alice", "alice")
BOB = Reviewer("k-bob", "bob")
CLAIM = timedelta(minutes=15)


@pytest.fixture
def meta(metadata_url: str) -> Iterator[MetadataStore]:
    """The review store on SQLite and on PostgreSQL."""
    with MetadataStore(metadata_url) as store:
        yield store


def _candidate(
    call_id: str, metric: str = "csat", *, rule: str = "low_score", priority: int = 1
) -> QueueCandidate:
    return QueueCandidate(call_id, metric, rule, "why", priority, "agent", T0)


def _label(call_id: str, metric: str = "csat", verdict: str = "pass", note: str = "") -> NewLabel:
    return NewLabel(call_id, metric, verdict, None, note, {"passed": False, "value": 1.0, "version": "1"})


def test_queueing_the_same_pair_again_adds_nothing(meta: MetadataStore, project: ProjectInfo) -> None:
    assert meta.enqueue_review_items(project.id, [_candidate("c1"), _candidate("c1", "latency")]) == 2
    again = [_candidate("c1", rule="random_sample", priority=2), _candidate("c2"), _candidate("c2")]
    assert meta.enqueue_review_items(project.id, again) == 1
    items = meta.list_review_items(project.id)
    assert [(i.call_id, i.metric, i.rule) for i in items] == [
        ("c1", "csat", "low_score"),
        ("c1", "latency", "low_score"),
        ("c2", "csat", "low_score"),
    ]
    assert meta.count_review_items(project.id) == {"open": 3}


def test_a_claimed_call_is_not_handed_to_another_reviewer_until_the_claim_ends(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_review_items(project.id, [_candidate("c1"), _candidate("c1", "latency"), _candidate("c2")])
    now = datetime.now(UTC)
    first = meta.claim_review_call(project.id, ALICE, claim_for=CLAIM, now=now)
    assert {i.call_id for i in first} == {"c1"} and len(first) == 2
    assert all(i.claimed_by == "k-alice" and i.claimed_until == now + CLAIM for i in first)
    # Alice asking again gets her own call back (a reloaded page), Bob gets the other one.
    assert {i.call_id for i in meta.claim_review_call(project.id, ALICE, claim_for=CLAIM, now=now)} == {"c1"}
    assert {i.call_id for i in meta.claim_review_call(project.id, BOB, claim_for=CLAIM, now=now)} == {"c2"}
    carol = Reviewer("k-carol", "carol")
    assert meta.claim_review_call(project.id, carol, claim_for=CLAIM, now=now + timedelta(minutes=10)) == []
    later = meta.claim_review_call(project.id, carol, claim_for=CLAIM, now=now + timedelta(minutes=16))
    assert {i.call_id for i in later} == {"c1"} and later[0].claimed_by_name == "carol"
    assert {
        i.call_id for i in meta.claim_review_call(project.id, ALICE, claim_for=CLAIM, exclude={"c1"})
    } == set()


def test_a_skipped_call_goes_to_others_but_never_back(meta: MetadataStore, project: ProjectInfo) -> None:
    meta.enqueue_review_items(project.id, [_candidate("c1"), _candidate("c2", priority=2)])
    assert meta.claim_review_call(project.id, ALICE, claim_for=CLAIM)[0].call_id == "c1"
    assert meta.skip_review_call(project.id, "c1", ALICE) == 1
    assert meta.claim_review_call(project.id, ALICE, claim_for=CLAIM)[0].call_id == "c2"
    assert meta.claim_review_call(project.id, BOB, claim_for=CLAIM)[0].call_id == "c1"


def test_one_label_per_call_metric_and_reviewer_unless_replaced(
    meta: MetadataStore, project: ProjectInfo
) -> None:
    meta.enqueue_review_items(project.id, [_candidate("c1")])
    first = meta.put_review_label(project.id, ALICE, _label("c1", note="wrong tool"))
    assert (first.reviewer_id, first.reviewer_name, first.rule, first.replaced) == (
        "k-alice",
        "alice",
        "low_score",
        False,
    )
    assert first.created_at <= datetime.now(UTC) and first.updated_at is None
    (item,) = meta.list_review_items(project.id, state=None)
    assert item.state == ITEM_DONE and item.done_at is not None
    assert meta.claim_review_call(project.id, BOB, claim_for=CLAIM) == []  # labelled: never handed out
    with pytest.raises(LabelExists, match="already has your label for csat"):
        meta.put_review_label(project.id, ALICE, _label("c1", verdict="fail"))
    edited = meta.put_review_label(project.id, ALICE, _label("c1", verdict="fail"), replace=True)
    assert edited.replaced and edited.verdict == "fail" and edited.created_at == first.created_at
    assert edited.updated_at is not None and edited.id == first.id
    second_person = meta.put_review_label(project.id, BOB, _label("c1"))  # another reviewer may, on purpose
    assert [(lb.reviewer_id, lb.verdict) for lb in meta.list_review_labels(project.id)] == [
        ("k-alice", "fail"),
        ("k-bob", "pass"),
    ]
    assert second_person.judge == {"passed": False, "value": 1.0, "version": "1"}


def test_a_reviewer_is_a_keys_user_else_the_keys_name(meta: MetadataStore, project: ProjectInfo) -> None:
    key = meta.create_api_key(project.id, name="alice's laptop")
    (info,) = meta.list_api_keys(project.id)
    principal = meta.resolve_principal(key)
    assert principal is not None and Reviewer.of(principal) == Reviewer(info.id, "alice's laptop")
    meta.add_user(project.id, "alice", Role.MEMBER)
    owned = meta.create_api_key(project.id, name="laptop", role=Role.MEMBER, user="alice")
    principal = meta.resolve_principal(owned)
    assert principal is not None and Reviewer.of(principal).name == "alice"
    meta.revoke_api_key(info.id)
    assert meta.resolve_principal(key) is None
