"""Calls in the chDB store: round trip, replacement, isolation, pagination and filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from convoscope.errors import PayloadError
from convoscope.model import CallSource, EndReason, MetricResult, MetricSource, Recording, call_id_for
from convoscope.store.base import CallFilter, CallOrder, CallSummary
from convoscope.store.clickhouse import ClickHouseStore

from .factories import make_call, rich_call

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_rich_call_round_trips_whole(store: ClickHouseStore) -> None:
    call = rich_call(T0)
    [call_id] = store.insert_calls("proj", [call], version=7)

    stored = store.get_call("proj", call_id)

    assert stored is not None
    assert call_id == call_id_for("proj", "retell", "rich-1", T0)
    assert stored.call == call.model_copy(update={"id": call_id, "project_id": "proj"})
    assert stored.version == 7
    assert stored.scores == []
    assert abs((stored.ingested_at - datetime.now(UTC)).total_seconds()) < 60


def test_summary_columns_are_derived_from_the_call(store: ClickHouseStore) -> None:
    call = rich_call(T0)
    store.insert_calls("proj", [call], version=1)

    [item] = store.list_calls("proj", CallFilter(), limit=10, cursor=None).items

    assert item.turn_count == 3
    assert item.tool_call_count == 2
    assert item.tool_error_count == 0
    assert item.cost_usd == pytest.approx(0.17)
    assert item.has_recording is True
    assert item.duration_s == 42.5
    assert item.started_at == T0
    assert item.tags == ["prod", "vip"]


def test_duration_falls_back_to_the_last_turn_but_reads_back_unset(store: ClickHouseStore) -> None:
    call = make_call("no-duration", started_at=T0, turns=4, duration_s=None)
    [call_id] = store.insert_calls("proj", [call], version=1)

    stored = store.get_call("proj", call_id)
    [item] = store.list_calls("proj", CallFilter(), limit=1, cursor=None).items

    assert stored is not None and stored.call.duration_s is None
    assert item.duration_s == pytest.approx(call.effective_duration_s)


def test_reingest_same_key_keeps_one_call_and_newest_version_wins(store: ClickHouseStore) -> None:
    first = make_call("k1", started_at=T0, agent_id="old-agent", turns=6)
    second = make_call("k1", started_at=T0, agent_id="new-agent", turns=6, tags=["updated"])
    [id1] = store.insert_calls("proj", [first], version=1)
    [id2] = store.insert_calls("proj", [second], version=2)

    stored = store.get_call("proj", id2)

    assert id1 == id2
    assert store.count_calls("proj") == 1
    assert stored is not None and stored.version == 2
    assert stored.call.agent_id == "new-agent"
    assert [c.agent_id for c in store.list_calls("proj", CallFilter(), limit=10, cursor=None).items] == [
        "new-agent"
    ]


def test_older_version_replayed_later_does_not_win(store: ClickHouseStore) -> None:
    newer = make_call("k1", started_at=T0, agent_id="new-agent", turns=4)
    older = make_call("k1", started_at=T0, agent_id="old-agent", turns=8)
    [call_id] = store.insert_calls("proj", [newer], version=5)
    store.insert_calls("proj", [older], version=3)

    stored = store.get_call("proj", call_id)

    assert stored is not None and stored.version == 5
    assert stored.call == newer.model_copy(update={"id": call_id, "project_id": "proj"})
    assert store.list_calls("proj", CallFilter(agent_id="old-agent"), limit=10, cursor=None).items == []


def test_reingest_with_fewer_turns_hides_the_old_extra_turns(store: ClickHouseStore) -> None:
    long = make_call("k1", started_at=T0, turns=10, tools=4)
    short = make_call("k1", started_at=T0, turns=3, tools=1)
    [call_id] = store.insert_calls("proj", [long], version=1)
    store.insert_calls("proj", [short], version=2)

    stored = store.get_call("proj", call_id)

    assert stored is not None
    assert [t.index for t in stored.call.turns] == [0, 1, 2]
    assert stored.call.turns == short.turns
    assert stored.call.tool_calls == short.tool_calls


def test_replay_of_the_same_version_reads_back_once(store: ClickHouseStore) -> None:
    call = make_call("k1", started_at=T0, turns=6, tools=3)
    [call_id] = store.insert_calls("proj", [call], version=5)
    store.insert_calls("proj", [call], version=5)  # the outbox replays a batch after a crash

    stored = store.get_call("proj", call_id)

    assert stored is not None and stored.version == 5
    assert stored.call == call.model_copy(update={"id": call_id, "project_id": "proj"})
    assert store.count_calls("proj") == 1


def test_started_at_change_moves_the_call_to_a_new_id(store: ClickHouseStore) -> None:
    before = make_call("k1", started_at=T0)
    after = make_call("k1", started_at=T0 + timedelta(minutes=5))
    [old_id] = store.insert_calls("proj", [before], version=1)
    [new_id] = store.insert_calls("proj", [after], version=2)

    assert old_id != new_id
    assert store.get_call("proj", old_id) is None
    moved = store.get_call("proj", new_id)
    assert moved is not None and moved.call.started_at == T0 + timedelta(minutes=5)
    assert store.count_calls("proj") == 1


def test_duplicate_key_within_one_batch_keeps_the_last_payload(store: ClickHouseStore) -> None:
    a = make_call("dup", started_at=T0, turns=8, agent_id="first")
    b = make_call("dup", started_at=T0, turns=2, agent_id="second")
    ids = store.insert_calls("proj", [a, b], version=1)

    stored = store.get_call("proj", ids[0])

    assert ids[0] == ids[1]
    assert stored is not None and stored.call.agent_id == "second"
    assert len(stored.call.turns) == 2


def test_projects_are_isolated(store: ClickHouseStore) -> None:
    [id_a] = store.insert_calls("A", [make_call("x", started_at=T0)], version=1)
    id_b, _ = store.insert_calls(
        "B", [make_call("x", started_at=T0), make_call("y", started_at=T0)], version=1
    )

    assert id_a != id_b
    assert store.get_call("A", id_b) is None
    assert store.get_call("B", id_a) is None
    assert store.count_calls("A") == 1
    assert store.count_calls("B") == 2
    assert [c.id for c in store.list_calls("A", CallFilter(), limit=10, cursor=None).items] == [id_a]
    assert store.count_calls("nobody") == 0


def test_project_id_with_sql_metacharacters_is_a_plain_value(store: ClickHouseStore) -> None:
    hostile = "x' OR 1=1 --"
    store.insert_calls("A", [make_call("x", started_at=T0)], version=1)

    assert store.count_calls(hostile) == 0
    store.insert_calls(hostile, [make_call("x", started_at=T0)], version=1)
    assert store.count_calls(hostile) == 1


def test_pagination_visits_every_call_once_newest_first(store: ClickHouseStore) -> None:
    # Several calls share a start time, so the id must break ties for keyset pagination.
    calls = [
        make_call(f"c{i}", started_at=T0 + timedelta(minutes=i // 3), turns=2, tools=0) for i in range(53)
    ]
    ids = store.insert_calls("proj", calls, version=1)

    seen: list[tuple[datetime, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.list_calls("proj", CallFilter(), limit=10, cursor=cursor)
        pages += 1
        seen += [(item.started_at, item.id) for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == 6
    assert len(seen) == 53
    assert sorted(i for _, i in seen) == sorted(ids)
    assert seen == sorted(seen, reverse=True)


def test_exact_last_page_has_no_next_cursor(store: ClickHouseStore) -> None:
    store.insert_calls(
        "proj", [make_call(f"c{i}", started_at=T0, turns=1, tools=0) for i in range(10)], version=1
    )

    page = store.list_calls("proj", CallFilter(), limit=10, cursor=None)

    assert len(page.items) == 10
    assert page.next_cursor is None


def test_bad_cursor_and_limit_are_payload_errors(store: ClickHouseStore) -> None:
    with pytest.raises(PayloadError):
        store.list_calls("proj", CallFilter(), limit=10, cursor="not-a-cursor!!")
    with pytest.raises(PayloadError):
        store.list_calls("proj", CallFilter(), limit=0, cursor=None)


def test_each_filter_selects_its_calls(store: ClickHouseStore) -> None:
    rec = [Recording(uri=f"blob:{'b' * 64}"), Recording(source_url="https://vendor.example/r.wav")]
    calls = {
        "base": make_call("base", started_at=T0, turns=2),
        "agent": make_call("agent", started_at=T0 + timedelta(hours=1), agent_id="agent-b", turns=2),
        "source": make_call("source", started_at=T0 + timedelta(hours=2), source=CallSource.PIPECAT, turns=2),
        "tag": make_call("tag", started_at=T0 + timedelta(hours=3), tags=["vip", "prod"], turns=2),
        "reason": make_call(
            "reason", started_at=T0 + timedelta(hours=4), end_reason=EndReason.VOICEMAIL, turns=2
        ),
        "rec": make_call("rec", started_at=T0 + timedelta(hours=5), recordings=rec, turns=2),
    }
    store.insert_calls("proj", list(calls.values()), version=1)

    def ext(filters: CallFilter) -> set[str]:
        return {c.external_id for c in store.list_calls("proj", filters, limit=100, cursor=None).items}

    assert ext(CallFilter()) == set(calls)
    assert ext(CallFilter(agent_id="agent-b")) == {"agent"}
    assert ext(CallFilter(source=CallSource.PIPECAT)) == {"source"}
    assert ext(CallFilter(tag="vip")) == {"tag"}
    assert ext(CallFilter(end_reason=EndReason.VOICEMAIL)) == {"reason"}
    assert ext(CallFilter(has_recording=True)) == {"rec"}
    assert ext(CallFilter(has_recording=False)) == set(calls) - {"rec"}
    assert ext(CallFilter(since=T0 + timedelta(hours=4))) == {"reason", "rec"}
    assert ext(CallFilter(until=T0 + timedelta(hours=1))) == {"base"}
    assert ext(CallFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))) == {
        "agent",
        "source",
    }
    assert ext(CallFilter(agent_id="agent-a", tag="vip")) == {"tag"}
    linked = make_call("linked", started_at=T0, recordings=rec[1:], turns=2)
    store.insert_calls("proj", [linked], version=1)
    assert ext(CallFilter(has_recording=True)) == {"rec"}, "a link not fetched yet is not a stored recording"


def test_get_calls_reads_many_calls_as_get_call_does_each(store: ClickHouseStore) -> None:
    calls = [rich_call(T0)] + [
        make_call(f"many-{n}", started_at=T0 + timedelta(minutes=n), turns=n) for n in range(5)
    ]
    ids = store.insert_calls("proj", calls, version=1)
    # A replacement with fewer turns, a key moved to a new id, a call of another project, scores.
    store.insert_calls(
        "proj", [make_call("many-4", started_at=T0 + timedelta(minutes=4), turns=1)], version=2
    )
    [moved] = store.insert_calls(
        "proj", [make_call("many-3", started_at=T0 + timedelta(hours=9), turns=2)], version=3
    )
    [foreign] = store.insert_calls("other", [make_call("many-0", started_at=T0)], version=1)
    store.insert_scores(
        "proj",
        [
            MetricResult(
                call_id=ids[1], metric=name, value=value, source=MetricSource.TRANSCRIPT, evaluated_at=T0
            )
            for name, value in (("talk_ratio", 0.4), ("latency", 1.5))
        ],
    )
    asked = [*ids, moved, foreign, "no-such-call"]

    found = store.get_calls("proj", asked)

    expected = {call_id: store.get_call("proj", call_id) for call_id in asked}
    assert found == {call_id: stored for call_id, stored in expected.items() if stored is not None}
    assert ids[4] not in found and foreign not in found and moved in found, (
        "a moved key resolves only to its new id"
    )
    assert len(found[ids[5]].call.turns) == 1, "the replaced call keeps only the newest version's turns"
    assert [score.metric for score in found[ids[1]].scores] == ["latency", "talk_ratio"]
    assert store.get_calls("proj", []) == {}


def test_call_rows_the_engine_refuses_are_named_and_the_others_written(store: ClickHouseStore) -> None:
    from convoscope.errors import CallRefused

    store.command(
        f"ALTER TABLE `{store.database}`.calls ADD CONSTRAINT no_bad CHECK NOT startsWith(external_id, 'bad')"
    )
    start = datetime(2026, 1, 5, tzinfo=UTC)
    calls = [make_call(x, started_at=start) for x in ("ok-1", "bad-1", "ok-2", "bad-2", "ok-3")]
    with pytest.raises(CallRefused) as refused:
        store.insert_calls("p1", calls, version=1)
    assert sorted(refused.value.indexes) == [1, 3]
    assert refused.value.others_written
    assert "no_bad" in str(refused.value)
    page = store.list_calls("p1", CallFilter(), limit=10, cursor=None)
    assert sorted(item.external_id for item in page.items) == ["ok-1", "ok-2", "ok-3"]


def test_filters_through_scores_turns_and_version(store: ClickHouseStore) -> None:
    """A failed metric, a score range, text said in a turn (any case) and the agent version each narrow
    the list to exactly the calls that have them; the project's metric names list what is scored."""
    calls = [
        make_call(f"f{i}", started_at=T0 + timedelta(minutes=i), turns=4, agent_version=f"v{i % 2}")
        for i in range(12)
    ]
    ids = store.insert_calls("proj", calls, version=1)
    results = []
    for i, call_id in enumerate(ids):
        results.append(
            MetricResult(
                call_id=call_id,
                metric="csat",
                value=i / 10,
                passed=i >= 5,
                source=MetricSource.JUDGE,
                evaluated_at=T0,
            )
        )
        if i % 3 == 0:
            results.append(
                MetricResult(
                    call_id=call_id,
                    metric="pii_leak",
                    value=True,
                    passed=False,
                    source=MetricSource.TRANSCRIPT,
                    evaluated_at=T0,
                )
            )
    store.insert_scores("proj", results)

    def listed(**fields: object) -> set[str]:
        return {c.id for c in store.list_calls("proj", CallFilter(**fields), limit=100, cursor=None).items}

    assert listed(failing_metric="csat") == set(ids[:5])
    assert listed(failing_metric="pii_leak") == set(ids[::3])
    assert listed(score_metric="csat", score_min=0.3, score_max=0.6) == set(ids[3:7])
    assert listed(score_metric="csat", score_min=1.5) == set()
    assert listed(text="TURN 2 OF F7") == {ids[7]}  # make_call's turn text, searched in any case
    assert listed(agent_version="v1") == set(ids[1::2])
    assert listed(agent_version="v1", failing_metric="csat") == {ids[1], ids[3]}
    assert store.metric_names("proj") == ["csat", "pii_leak"]
    assert store.metric_names("other") == []


@pytest.mark.parametrize(
    ("order", "key", "descending"),
    [
        (CallOrder.NEWEST, lambda c: c.started_at, True),
        (CallOrder.OLDEST, lambda c: c.started_at, False),
        (CallOrder.LONGEST, lambda c: c.duration_s, True),
        (CallOrder.COSTLIEST, lambda c: c.cost_usd, True),
    ],
)
def test_every_order_pages_through_each_call_once(
    store: ClickHouseStore, order: CallOrder, key: Callable[[CallSummary], object], descending: bool
) -> None:
    """Pages of 7 in each order give every call once, in that order (ties by id), whatever the ties."""
    calls = [
        make_call(
            f"o{i}",
            started_at=T0 + timedelta(minutes=i % 9),  # repeated starts: ties within a page and across pages
            turns=2 + i % 5,
            tools=0,
            duration_s=float(10 + i % 4),
            cost=[{"product": "llm", "amount": round(0.01 * (i % 6), 4)}],
        )
        for i in range(40)
    ]
    store.insert_calls("proj", calls, version=1)
    seen: list[CallSummary] = []
    cursor: str | None = None
    while True:
        page = store.list_calls("proj", CallFilter(order=order), limit=7, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 40 and len({c.id for c in seen}) == 40
    expected = sorted(seen, key=lambda c: (key(c), c.id), reverse=descending)
    assert [c.id for c in seen] == [c.id for c in expected]
