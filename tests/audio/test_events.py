"""Heldner & Edlund events on hand-built segment lists, and the classification rules as properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from convoscope.audio.events import (
    TURN_TAKING_PARAMS_VERSION,
    Gap,
    Overlap,
    Pause,
    TurnTakingEvents,
    TurnTakingParams,
    WithinOverlap,
    extract_events,
)
from convoscope.audio.segments import Segment
from convoscope.model import Role

S = Segment
USER, AGENT = Role.USER, Role.AGENT


def test_gap_of_0_7_s_is_a_positive_floor_transfer_offset() -> None:
    events = extract_events([S(0.0, 2.0)], [S(2.7, 5.0)])
    assert events.gaps == (Gap(2.0, 2.7, USER, AGENT, S(0.0, 2.0), S(2.7, 5.0)),)
    assert events.gaps[0].fto_s == pytest.approx(0.7)
    assert events.overlaps == () and events.pauses == () and events.interruptions == ()


def test_agent_interrupting_user_at_3_s_with_half_a_second_of_overlap() -> None:
    events = extract_events([S(0.0, 3.5)], [S(3.0, 6.0)])
    assert events.overlaps == (Overlap(3.0, 3.5, USER, AGENT, S(0.0, 3.5), S(3.0, 6.0)),)
    assert events.overlaps[0].fto_s == pytest.approx(-0.5)
    (interruption,) = events.interruptions
    assert interruption.interrupter is AGENT and interruption.interrupted is USER
    assert interruption.onset_s == 3.0 and interruption.overlap == S(3.0, 3.5)
    assert interruption.floor_taken
    assert events.talk_over == (S(3.0, 3.5),)


def test_short_overlap_at_a_floor_change_is_latching_not_an_interruption() -> None:
    events = extract_events([S(0.0, 3.1)], [S(3.0, 6.0)])
    assert len(events.overlaps) == 1
    assert events.interruptions == ()


def test_backchannel_inside_agent_turn_is_not_an_interruption() -> None:
    events = extract_events([S(2.0, 2.4)], [S(0.0, 6.0)])
    (within,) = events.within_overlaps
    assert (within.start_s, within.end_s) == (2.0, 2.4)
    assert within.holder_role is AGENT and within.inner_role is USER and within.is_backchannel
    assert within.holder_segment == S(0.0, 6.0) and within.inner_segment == S(2.0, 2.4)
    assert events.interruptions == () and events.gaps == () and events.overlaps == ()


def test_long_within_overlap_is_an_interruption_that_did_not_take_the_floor() -> None:
    events = extract_events([S(4.0, 6.0)], [S(0.0, 10.0)])
    (within,) = events.within_overlaps
    assert not within.is_backchannel
    (interruption,) = events.interruptions
    assert interruption.interrupter is USER and not interruption.floor_taken
    assert interruption.overlap == S(4.0, 6.0)


def test_pause_and_turn_merging() -> None:
    events = extract_events([S(0.0, 1.0), S(1.5, 3.0), S(5.0, 6.0)], [])
    assert events.pauses == (
        Pause(1.0, 1.5, USER, S(0.0, 1.0), S(1.5, 3.0)),
        Pause(3.0, 5.0, USER, S(1.5, 3.0), S(5.0, 6.0)),
    )
    assert [(t.start_s, t.end_s) for t in events.user_turns] == [(0.0, 3.0), (5.0, 6.0)]
    assert events.user_turns[0].segments == (S(0.0, 1.0), S(1.5, 3.0))


def test_turns_do_not_merge_across_the_other_partys_speech() -> None:
    # The agent yields to a barge-in and resumes 0.5 s later: two agent turns, not one.
    events = extract_events([S(3.0, 4.0)], [S(0.0, 3.35), S(4.3, 6.0)])
    assert [(t.start_s, t.end_s) for t in events.agent_turns] == [(0.0, 3.35), (4.3, 6.0)]


def test_exact_hand_over_is_a_zero_gap() -> None:
    events = extract_events([S(0.0, 2.0)], [S(2.0, 3.0)])
    assert events.gaps == (Gap(2.0, 2.0, USER, AGENT, S(0.0, 2.0), S(2.0, 3.0)),)
    assert events.gaps[0].fto_s == 0.0


def test_both_stopping_at_once_puts_the_earlier_stretch_to_the_holder() -> None:
    # Agent speaks, user joins at 2, both stop at 3, user resumes at 4: one change (a gap), one within.
    events = extract_events([S(2.0, 3.0), S(4.0, 5.0)], [S(0.0, 3.0)])
    assert [(g.start_s, g.end_s, g.from_role) for g in events.gaps] == [(3.0, 4.0, AGENT)]
    assert [(w.start_s, w.end_s, w.holder_role) for w in events.within_overlaps] == [(2.0, 3.0, AGENT)]


def test_unsorted_and_zero_length_input_is_cleaned() -> None:
    events = extract_events([S(3.0, 4.0), S(0.0, 1.0), S(2.0, 2.0)], [])
    assert events.user_segments == (S(0.0, 1.0), S(3.0, 4.0))


def test_params_are_frozen_versioned_and_documented() -> None:
    params = TurnTakingParams()
    assert params.version == TURN_TAKING_PARAMS_VERSION
    assert params.backchannel_max_s == 1.0 and params.yield_window_s == 2.0
    assert params.long_silence_s == 10.0 and params.unanswered_after_s == 10.0
    with pytest.raises(ValidationError):
        params.backchannel_max_s = 2.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        TurnTakingParams(unknown=1.0)  # type: ignore[call-arg]
    for name, field in TurnTakingParams.model_fields.items():
        assert field.description and len(field.description) > 30, name


# --- properties ----------------------------------------------------------------------------------------

_SPANS = st.lists(st.tuples(st.integers(0, 30), st.integers(1, 30)), max_size=12)


def _segments(spans: list[tuple[int, int]]) -> list[Segment]:
    """Sorted, disjoint segments on a 0.1 s grid (so both channels share exact boundaries and ties)."""
    out: list[Segment] = []
    t = 0
    for silence, speech in spans:
        start = t + silence
        out.append(Segment(start / 10, (start + speech) / 10))
        t = start + speech
    return out


def _state_runs(user: list[Segment], agent: list[Segment]) -> list[tuple[str, float, float]]:
    """Brute-force joint states at the midpoint of every elementary interval, collapsed into runs."""

    def active(segments: list[Segment], t: float) -> bool:
        return any(s.start_s < t < s.end_s for s in segments)

    bounds = sorted({b for s in user + agent for b in (s.start_s, s.end_s)})
    runs: list[tuple[str, float, float]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        mid = (a + b) / 2
        u, g = active(user, mid), active(agent, mid)
        state = "both" if u and g else "user" if u else "agent" if g else "silence"
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1], b)
        else:
            runs.append((state, a, b))
    return runs


def _overlaps_speech(start_s: float, end_s: float, segments: list[Segment]) -> bool:
    return any(s.start_s < end_s and s.end_s > start_s for s in segments)


def _all_intervals(events: TurnTakingEvents) -> list[tuple[float, float]]:
    return [
        *((e.start_s, e.end_s) for e in events.gaps),
        *((e.start_s, e.end_s) for e in events.pauses),
        *((e.start_s, e.end_s) for e in events.overlaps),
        *((e.start_s, e.end_s) for e in events.within_overlaps),
        *((e.start_s, e.end_s) for e in events.talk_over),
        *((t.start_s, t.end_s) for t in (*events.user_turns, *events.agent_turns)),
    ]


def test_a_breath_under_talk_over_does_not_split_the_speaker_or_invent_an_interruption() -> None:
    # The agent talks 0-10 s with a 0.21 s breath at 3.4 s while the caller talks 2.5-4.2 s over it and gives
    # up: one barge-in by the user that the agent did not yield to, and no agent interruption at 3.61 s.
    agent = [Segment(0.0, 3.4), Segment(3.61, 10.0)]
    user = [Segment(2.5, 4.2)]
    events = extract_events(user, agent)
    assert events.agent_segments == (Segment(0.0, 10.0),)
    assert [(i.interrupter, i.onset_s, i.floor_taken) for i in events.interruptions] == [(USER, 2.5, False)]
    # The same breath in mutual silence is a pause of the agent, not bridged.
    quiet = extract_events([Segment(11.0, 12.0)], agent)
    assert [(p.start_s, p.end_s) for p in quiet.pauses] == [(3.4, 3.61)]


@settings(max_examples=300, deadline=None)
@given(_SPANS, _SPANS)
def test_events_are_well_formed(
    user_spans: list[tuple[int, int]], agent_spans: list[tuple[int, int]]
) -> None:
    user, agent = _segments(user_spans), _segments(agent_spans)
    events = extract_events(user, agent)

    for start_s, end_s in _all_intervals(events):
        assert end_s >= start_s
    silences: list[Gap | Pause] = [*events.gaps, *events.pauses]
    for silence in silences:
        assert not _overlaps_speech(silence.start_s, silence.end_s, user + agent)
    doubles: list[Overlap | WithinOverlap | Segment] = [
        *events.overlaps,
        *events.within_overlaps,
        *events.talk_over,
    ]
    for both in doubles:
        # Touching input segments are one stretch of speech once cleaned.
        assert any(s.start_s <= both.start_s and both.end_s <= s.end_s for s in events.user_segments)
        assert any(s.start_s <= both.start_s and both.end_s <= s.end_s for s in events.agent_segments)
    for w in events.within_overlaps:
        assert w.is_backchannel == (w.duration_s <= TurnTakingParams().backchannel_max_s)

    # Short breaks inside the other party's speech are bridged (see test_a_breath_under_talk_over_...),
    # so the floor changes are those of the segments the events report.
    runs = _state_runs(list(events.user_segments), list(events.agent_segments))
    floors = [r for r in runs if r[0] in ("user", "agent")]
    changes = [(x, y) for x, y in zip(floors, floors[1:], strict=False) if x[0] != y[0]]
    changers: list[Gap | Overlap] = [*events.gaps, *events.overlaps]
    transitions = [(e.start_s, e.end_s, e.from_role, e.to_role) for e in changers]
    assert len(transitions) == len(changes)
    for before, after in changes:
        matching = [t for t in transitions if t[1] == after[1] and t[0] >= before[2]]
        assert len(matching) == 1
        assert matching[0][2].value == before[0] and matching[0][3].value == after[0]

    for role, segments in ((USER, user), (AGENT, agent)):
        turns = events.turns(role)
        assert [s for t in turns for s in t.segments] == list(events.segments(role))
        cleaned = events.segments(role)
        assert all(a.end_s < b.start_s for a, b in zip(cleaned, cleaned[1:], strict=False))
        assert all(a.end_s <= b.start_s for a, b in zip(turns, turns[1:], strict=False))
        other = events.segments(AGENT if role is USER else USER)
        for segment in segments:
            assert any(c.start_s <= segment.start_s and segment.end_s <= c.end_s for c in cleaned)
        for joined in cleaned:
            inside = sorted(s for s in segments if joined.start_s <= s.start_s and s.end_s <= joined.end_s)
            for a, b in zip(inside, inside[1:], strict=False):
                if b.start_s > a.end_s:  # a bridged break: short, and the other party spoke throughout
                    assert b.start_s - a.end_s < TurnTakingParams().yield_silence_s
                    assert any(o.start_s <= a.end_s and b.start_s <= o.end_s for o in other)
