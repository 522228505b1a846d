"""Turn-taking metrics from transcript timing: same definitions, ``source=transcript``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from convoscope.audio.metrics import (
    AGENT_WORDS_PER_MIN,
    OVERLAP_METRICS,
    RESPONSE_GAP_P50,
    USER_INTERRUPTIONS,
    turn_taking_metrics,
)
from convoscope.audio.segments import Segment
from convoscope.audio.transcript import transcript_metrics, transcript_segments
from convoscope.model import Call, CallSource, MetricSource, Role, Turn, Word

S = Segment
USER, AGENT = Role.USER, Role.AGENT


def _call(turns: list[Turn], duration_s: float | None = 20.0, call_id: str | None = None) -> Call:
    return Call(
        id=call_id,
        source=CallSource.GENERIC,
        external_id="ext-7",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=duration_s,
        turns=turns,
    )


def _words(text: str, start_s: float, step_s: float = 0.3, length_s: float = 0.25) -> list[Word]:
    return [
        Word(word=w, start_s=round(start_s + i * step_s, 3), end_s=round(start_s + i * step_s + length_s, 3))
        for i, w in enumerate(text.split())
    ]


def test_segments_come_from_turn_spans_and_skip_tool_turns() -> None:
    call = _call(
        [
            Turn(index=0, role=AGENT, text="Hello", start_s=0.0, end_s=1.0),
            Turn(index=1, role=USER, text="Hi", start_s=1.5, end_s=2.0),
            Turn(index=2, role=Role.TOOL, text="lookup", start_s=2.0, end_s=2.5),
            Turn(index=3, role=AGENT, text="How can I help", start_s=2.7, end_s=4.0),
        ]
    )
    assert transcript_segments(call) == {USER: (S(1.5, 2.0),), AGENT: (S(0.0, 1.0), S(2.7, 4.0))}


def test_word_timestamps_keep_pauses_inside_a_turn() -> None:
    words = [*_words("my order", 1.0), *_words("is four five two", 3.0)]
    call = _call(
        [Turn(index=0, role=USER, text="my order is four five two", start_s=1.0, end_s=4.15, words=words)]
    )
    # Words 0.05 s apart are bridged (< 0.2 s); the 1.45 s pause between the phrases stays.
    assert transcript_segments(call)[USER] == (S(1.0, 1.55), S(3.0, 4.15))
    assert transcript_segments(call, use_words=False)[USER] == (S(1.0, 4.15),)


def test_transcript_metrics_are_marked_transcript_and_match_the_audio_code() -> None:
    turns = [
        Turn(index=0, role=USER, text="I need to reschedule", start_s=0.0, end_s=2.0),
        Turn(index=1, role=AGENT, text="Of course, which day suits you", start_s=2.7, end_s=5.0),
        Turn(index=2, role=USER, text="Friday please", start_s=4.5, end_s=6.5),
        Turn(index=3, role=AGENT, text="Friday it is", start_s=7.0, end_s=8.5),
    ]
    call = _call(turns, call_id="call-42")
    results = transcript_metrics(call)
    assert all(r.source is MetricSource.TRANSCRIPT for r in results)
    assert all(r.call_id == "call-42" for r in results)
    by_name = {r.metric: r for r in results}
    assert set(OVERLAP_METRICS) <= set(by_name)
    assert by_name[RESPONSE_GAP_P50].value == pytest.approx(0.6)  # median of 0.7 and 0.5
    assert by_name[USER_INTERRUPTIONS].value == 1.0  # "Friday please" came in 0.5 s before the agent ended
    assert by_name[AGENT_WORDS_PER_MIN].value == pytest.approx(9 / (3.8 / 60))

    audio = turn_taking_metrics(
        {USER: [S(0.0, 2.0), S(4.5, 6.5)], AGENT: [S(2.7, 5.0), S(7.0, 8.5)]},
        call_id="call-42",
        call_duration_s=20.0,
        transcript=call,
    )
    for result in audio:
        twin = by_name[result.metric]
        assert twin.value == result.value and twin.evidence == result.evidence, result.metric


def test_call_id_falls_back_to_the_external_id_and_duration_to_the_last_turn() -> None:
    call = _call([Turn(index=0, role=USER, text="hello", start_s=0.0, end_s=1.0)], duration_s=None)
    results = transcript_metrics(call)
    assert {r.call_id for r in results} == {"ext-7"}
    assert {r.params["call_duration_s"] for r in results} == {1.0}
