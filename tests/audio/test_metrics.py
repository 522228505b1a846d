"""Turn-taking metrics on hand-built calls with exact expected values, evidence and echoed parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from convoscope.audio.events import TurnTakingParams
from convoscope.audio.load import load_recording
from convoscope.audio.metrics import (
    AGENT_INTERRUPTIONS,
    AGENT_INTERRUPTIONS_PER_MIN,
    AGENT_INTERRUPTIONS_PER_TURN,
    AGENT_TALK_RATIO,
    AGENT_WORDS_PER_MIN,
    BACKCHANNELS,
    ECHO_SELF_INTERRUPTIONS,
    EVIDENCE_CAP,
    FIRST_RESPONSE,
    LONG_SILENCES,
    LONGEST_SILENCE,
    MISSED_BARGE_INS,
    OVERLAP_METRICS,
    RESPONSE_GAP_P50,
    RESPONSE_GAP_P90,
    RESPONSE_GAP_P95,
    RESPONSE_GAP_P99,
    STOP_TIME,
    TALK_OVER,
    TIME_TO_FIRST_AUDIO,
    UNANSWERED_USER_TURNS,
    UNATTRIBUTED_LATENCY,
    USER_INTERRUPTIONS,
    USER_INTERRUPTIONS_PER_MIN,
    USER_WORDS_PER_MIN,
    VENDOR_E2E_MINUS_AUDIO_GAP,
    not_scorable,
    turn_taking_metrics,
)
from convoscope.audio.segments import ChannelActivity, Segment, VadParams
from convoscope.audio.vad import detect_speech
from convoscope.demo import DemoRecording, demo_recordings
from convoscope.errors import InputError
from convoscope.model import Call, CallSource, MetricResult, MetricSource, Role, Turn

S = Segment
USER, AGENT = Role.USER, Role.AGENT


def _run(
    user: Sequence[Segment],
    agent: Sequence[Segment],
    duration_s: float,
    **kwargs: object,
) -> dict[str, MetricResult]:
    results = turn_taking_metrics(
        {USER: list(user), AGENT: list(agent)},
        call_id="call-1",
        call_duration_s=duration_s,
        **kwargs,  # type: ignore[arg-type]
    )
    by_name = {r.metric: r for r in results}
    assert len(by_name) == len(results), "metric names are unique"
    return by_name


def test_every_metric_is_named_versioned_and_echoes_its_params() -> None:
    params = TurnTakingParams(long_silence_s=8.0)
    vad = VadParams()
    results = _run([S(0.0, 2.0)], [S(2.7, 5.0)], 10.0, params=params, vad_params=vad)
    assert set(results) == set(OVERLAP_METRICS)
    for result in results.values():
        assert result.metric.startswith("turn_taking.")
        assert result.version == params.version
        assert result.source is MetricSource.AUDIO
        assert result.call_id == "call-1"
        assert result.params["long_silence_s"] == 8.0
        assert result.params["backchannel_max_s"] == 1.0
        assert result.params["call_duration_s"] == 10.0
        assert result.params["vad"] == vad.model_dump(mode="json")
        assert result.evidence, result.metric


def test_response_gap_of_0_7_s() -> None:
    results = _run([S(0.0, 2.0)], [S(2.7, 5.0)], 10.0)
    gap = results[RESPONSE_GAP_P50]
    assert gap.value == pytest.approx(0.7)
    assert gap.passed is True
    assert gap.evidence["responses"] == [{"user_turn": [0.0, 2.0], "agent_turn": [2.7, 5.0], "gap_s": 0.7}]
    assert results[TIME_TO_FIRST_AUDIO].value == pytest.approx(0.7)
    assert results[FIRST_RESPONSE].value == 2.7
    assert results[FIRST_RESPONSE].evidence["agent_spoke_first"] is False


def test_response_gap_percentiles_match_numpy() -> None:
    gaps_s = [0.3, 0.5, 0.8, 1.1, 1.4, 2.5, 0.9, 0.6, 3.2, 0.4]
    user, agent = [], []
    t = 0.0
    for gap_s in gaps_s:
        user.append(S(t, t + 2.0))
        agent.append(S(t + 2.0 + gap_s, t + 4.0 + gap_s))
        t += 6.0 + gap_s
    results = _run(user, agent, t)
    for metric, q in (
        (RESPONSE_GAP_P50, 50),
        (RESPONSE_GAP_P90, 90),
        (RESPONSE_GAP_P95, 95),
        (RESPONSE_GAP_P99, 99),
    ):
        assert results[metric].value == pytest.approx(float(np.percentile(gaps_s, q)), abs=1e-6)
        assert results[metric].evidence["responses_count"] == len(gaps_s)
    assert results[RESPONSE_GAP_P95].passed is True
    assert results[RESPONSE_GAP_P90].passed is None
    assert results[TIME_TO_FIRST_AUDIO].value == pytest.approx(max(gaps_s))


def test_slow_agent_fails_the_response_gap_threshold() -> None:
    results = _run([S(0.0, 2.0)], [S(5.0, 6.0)], 10.0)
    assert results[RESPONSE_GAP_P50].value == pytest.approx(3.0)
    assert results[RESPONSE_GAP_P50].passed is False


def test_agent_interrupts_user_at_3_s_with_half_a_second_of_overlap() -> None:
    results = _run([S(0.0, 3.5)], [S(3.0, 6.0)], 60.0)
    assert results[AGENT_INTERRUPTIONS].value == 1.0
    assert results[AGENT_INTERRUPTIONS].evidence["interruptions"] == [
        {
            "onset_s": 3.0,
            "overlap": [3.0, 3.5],
            "floor_taken": True,
            "interrupter_segment": [3.0, 6.0],
            "interrupted_segment": [0.0, 3.5],
        }
    ]
    assert results[AGENT_INTERRUPTIONS_PER_TURN].value == 1.0
    assert results[AGENT_INTERRUPTIONS_PER_MIN].value == 1.0
    assert results[USER_INTERRUPTIONS].value == 0.0
    assert results[TALK_OVER].value == pytest.approx(0.5)
    assert results[TALK_OVER].evidence["talk_over"] == [[3.0, 3.5]]
    # The agent started before the user finished: a negative floor-transfer offset.
    assert results[RESPONSE_GAP_P50].value == pytest.approx(-0.5)


def test_user_barge_in_where_the_agent_yields_after_0_35_s() -> None:
    results = _run([S(5.0, 7.0)], [S(0.0, 5.35), S(7.5, 9.0)], 30.0)
    assert results[USER_INTERRUPTIONS].value == 1.0
    assert results[USER_INTERRUPTIONS_PER_MIN].value == 2.0
    stop = results[STOP_TIME]
    assert stop.value == pytest.approx(0.35)
    assert stop.passed is True
    assert stop.evidence["barge_ins"] == [
        {
            "onset_s": 5.0,
            "agent_stop_s": 5.35,
            "stop_time_s": 0.35,
            "yielded": True,
            "user_segment": [5.0, 7.0],
            "agent_segment": [0.0, 5.35],
        }
    ]
    assert results[MISSED_BARGE_INS].value == 0.0 and results[MISSED_BARGE_INS].passed is True
    assert results[ECHO_SELF_INTERRUPTIONS].value == 0.0
    assert results[AGENT_INTERRUPTIONS].value == 0.0


def test_barge_in_where_the_agent_talks_on_is_missed() -> None:
    results = _run([S(4.0, 6.0)], [S(0.0, 10.0)], 20.0)
    assert results[USER_INTERRUPTIONS].value == 1.0
    missed = results[MISSED_BARGE_INS]
    assert missed.value == 1.0 and missed.passed is False
    barge_ins = missed.evidence["barge_ins"]
    assert isinstance(barge_ins, list)
    (barge_in,) = barge_ins
    assert barge_in == {
        "onset_s": 4.0,
        "agent_stop_s": 10.0,
        "stop_time_s": 6.0,
        "yielded": False,
        "user_segment": [4.0, 6.0],
        "agent_segment": [0.0, 10.0],
    }
    assert results[STOP_TIME].value is None and results[STOP_TIME].passed is None


def test_a_breath_is_not_a_yield() -> None:
    # The agent breaks for 0.1 s (< yield_silence_s) and goes on past the 2 s window: missed.
    results = _run([S(4.0, 8.0)], [S(0.0, 4.3), S(4.4, 7.0)], 20.0)
    assert results[MISSED_BARGE_INS].value == 1.0
    barge_ins = results[MISSED_BARGE_INS].evidence["barge_ins"]
    assert isinstance(barge_ins, list) and len(barge_ins) == 1
    assert isinstance(barge_ins[0], dict) and barge_ins[0]["agent_stop_s"] == 7.0


def test_backchannel_inside_agent_turn_is_not_an_interruption() -> None:
    results = _run([S(2.0, 2.4)], [S(0.0, 6.0)], 10.0)
    assert results[BACKCHANNELS].value == 1.0
    assert results[BACKCHANNELS].evidence["backchannels"] == [{"role": "user", "segment": [2.0, 2.4]}]
    assert results[BACKCHANNELS].evidence["by_user"] == 1
    assert results[USER_INTERRUPTIONS].value == 0.0
    assert results[MISSED_BARGE_INS].value == 0.0
    assert results[TALK_OVER].value == pytest.approx(0.4)


def test_12_s_of_dead_air() -> None:
    results = _run([S(0.0, 2.0), S(16.0, 18.0)], [S(2.5, 4.0)], 20.0)
    long_silences = results[LONG_SILENCES]
    assert long_silences.value == 1.0 and long_silences.passed is False
    assert long_silences.evidence["silences"] == [{"segment": [4.0, 16.0], "kind": "gap"}]
    assert results[LONGEST_SILENCE].value == pytest.approx(12.0)
    assert results[LONGEST_SILENCE].passed is False


def test_unanswered_user_turn() -> None:
    results = _run([S(1.5, 3.0)], [S(0.0, 1.0)], 20.0)
    unanswered = results[UNANSWERED_USER_TURNS]
    assert unanswered.value == 1.0 and unanswered.passed is False
    assert unanswered.evidence["unanswered"] == [{"user_turn": [1.5, 3.0], "window": [3.0, 13.0]}]
    assert results[FIRST_RESPONSE].evidence["agent_spoke_first"] is True
    assert results[FIRST_RESPONSE].value == 0.0


def test_user_turn_at_the_end_of_the_call_is_not_judged() -> None:
    # "Bye" and hang up: the call ends before the 10 s window does, so the turn is not counted.
    results = _run([S(1.5, 3.0)], [S(0.0, 1.0)], 5.0)
    assert results[UNANSWERED_USER_TURNS].value == 0.0
    assert results[UNANSWERED_USER_TURNS].evidence["judged_user_turns"] == 0


def test_talk_ratio_is_agent_speech_over_call_duration() -> None:
    results = _run([S(0.0, 4.0)], [S(4.5, 7.0), S(8.0, 10.5)], 20.0)
    assert results[AGENT_TALK_RATIO].value == pytest.approx(0.25)
    assert results[AGENT_TALK_RATIO].evidence == {"agent_speech_s": 5.0, "call_duration_s": 20.0}


def test_echo_self_interruption_candidate() -> None:
    # The agent's own voice bleeds onto the user channel at 4.0; the agent stops at 4.5, the "user" speech
    # dies with it, and the agent speaks next.
    results = _run([S(4.0, 4.55)], [S(0.0, 4.5), S(5.5, 8.0)], 10.0)
    echo = results[ECHO_SELF_INTERRUPTIONS]
    assert echo.value == 1.0
    assert echo.evidence["candidates"] == [
        {
            "user_onset_s": 4.0,
            "agent_stop_s": 4.5,
            "user_turn": [4.0, 4.55],
            "agent_segment": [0.0, 4.5],
            "agent_resumed_s": 5.5,
        }
    ]


def test_a_user_who_speaks_next_is_not_echo() -> None:
    results = _run([S(4.0, 4.55), S(5.0, 6.0)], [S(0.0, 4.5), S(7.0, 8.0)], 10.0)
    assert results[ECHO_SELF_INTERRUPTIONS].value == 0.0


def test_evidence_is_capped_with_a_count() -> None:
    user = [S(i * 2.0, i * 2.0 + 1.0) for i in range(250)]
    agent = [S(i * 2.0 + 1.2, i * 2.0 + 1.8) for i in range(250)]
    results = _run(user, agent, 500.0)
    responses = results[RESPONSE_GAP_P50].evidence["responses"]
    assert isinstance(responses, list) and len(responses) == EVIDENCE_CAP
    assert results[RESPONSE_GAP_P50].evidence["responses_count"] == 250
    assert results[RESPONSE_GAP_P50].value == pytest.approx(0.2)


def test_channel_activity_input_is_accepted() -> None:
    speech = {
        USER: ChannelActivity(USER, (S(0.0, 2.0),), 0.01),
        AGENT: ChannelActivity(AGENT, (S(2.7, 5.0),), 0.01),
    }
    results = turn_taking_metrics(speech, call_id="c", call_duration_s=10.0)
    assert next(r for r in results if r.metric == RESPONSE_GAP_P50).value == pytest.approx(0.7)


def test_missing_party_is_an_input_error() -> None:
    with pytest.raises(InputError, match="agent"):
        turn_taking_metrics({USER: [S(0.0, 1.0)]}, call_id="c", call_duration_s=5.0)


def test_empty_call_gives_none_not_zero_for_undefined_values() -> None:
    results = _run([], [], 0.0)
    assert results[RESPONSE_GAP_P50].value is None and results[RESPONSE_GAP_P50].passed is None
    assert results[AGENT_TALK_RATIO].value is None
    assert results[AGENT_INTERRUPTIONS_PER_MIN].value is None
    assert results[FIRST_RESPONSE].value is None
    assert results[LONGEST_SILENCE].value is None


def _call(turns: list[Turn], duration_s: float) -> Call:
    return Call(
        source=CallSource.GENERIC,
        external_id="ext-1",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=duration_s,
        turns=turns,
    )


def test_transcript_adds_words_per_minute_and_unattributed_latency() -> None:
    transcript = _call(
        [
            Turn(index=0, role=USER, text="I want to check my order", start_s=0.0, end_s=2.0),
            Turn(
                index=1,
                role=AGENT,
                text="Sure, what is the order number?",
                start_s=2.6,
                end_s=5.0,
                e2e_s=0.9,
                eou_s=0.2,
                stt_s=0.1,
                llm_ttft_s=0.3,
                tts_ttfb_s=0.1,
            ),
        ],
        10.0,
    )
    results = _run([S(0.0, 2.0)], [S(3.0, 5.0)], 10.0, transcript=transcript)
    assert results[USER_WORDS_PER_MIN].value == pytest.approx(6 / (2.0 / 60))
    assert results[AGENT_WORDS_PER_MIN].value == pytest.approx(6 / (2.0 / 60))
    # Audio gap 1.0 s; the components sum to 0.7 s, so 0.3 s is unexplained; the vendor said 0.9 s.
    assert results[UNATTRIBUTED_LATENCY].value == pytest.approx(0.3)
    assert results[VENDOR_E2E_MINUS_AUDIO_GAP].value == pytest.approx(-0.1)
    pairs = results[UNATTRIBUTED_LATENCY].evidence["pairs"]
    assert isinstance(pairs, list)
    (pair,) = pairs
    assert pair == {
        "transcript_turn_index": 1,
        "transcript_turn": [2.6, 5.0],
        "audio_agent_turn": [3.0, 5.0],
        "audio_user_turn": [0.0, 2.0],
        "audio_gap_s": 1.0,
        "components_s": {"eou_s": 0.2, "stt_s": 0.1, "llm_ttft_s": 0.3, "tts_ttfb_s": 0.1},
        "unattributed_s": 0.3,
        "e2e_s": 0.9,
        "e2e_minus_audio_gap_s": -0.1,
    }


def test_transcript_without_components_gives_no_latency_value() -> None:
    transcript = _call([Turn(index=0, role=AGENT, text="", start_s=2.6, end_s=5.0)], 10.0)
    results = _run([S(0.0, 2.0)], [S(3.0, 5.0)], 10.0, transcript=transcript)
    assert results[UNATTRIBUTED_LATENCY].value is None
    assert results[UNATTRIBUTED_LATENCY].evidence["pairs_count"] == 0
    assert results[AGENT_WORDS_PER_MIN].value is None


def test_not_scorable_reports_every_overlap_metric_without_a_value() -> None:
    results = not_scorable("mono recording", call_id="c")
    assert [r.metric for r in results] == list(OVERLAP_METRICS)
    for result in results:
        assert result.value is None and result.passed is None
        assert result.evidence == {"not_scorable": "mono recording"}
        assert result.params["yield_window_s"] == 2.0
        assert result.source is MetricSource.AUDIO


@pytest.mark.parametrize("demo", demo_recordings(), ids=lambda demo: demo.file)
def test_shipped_recordings_agree_with_their_script(demo: DemoRecording) -> None:
    """VAD on the shipped stereo recordings, then the metrics, against the times the audio was placed at."""
    audio = load_recording(demo.read_bytes(), channel_map=demo.channel_map)
    measured = turn_taking_metrics(
        detect_speech(audio), call_id=demo.file, call_duration_s=demo.duration_s, vad_params=VadParams()
    )
    truth = turn_taking_metrics(
        {
            role: [S(t.start_s, t.end_s) for t in demo.turns if t.role is role]
            for role in (Role.USER, Role.AGENT)
        },
        call_id=demo.file,
        call_duration_s=demo.duration_s,
    )
    by_name = {r.metric: r for r in measured}
    for expected in truth:
        got = by_name[expected.metric]
        if isinstance(expected.value, float) and expected.metric not in (AGENT_TALK_RATIO, TALK_OVER):
            assert got.value == pytest.approx(expected.value, abs=0.05), expected.metric
        else:
            assert type(got.value) is type(expected.value), expected.metric
    interrupted = sum(1 for t in demo.turns if t.interrupted)
    assert by_name[USER_INTERRUPTIONS].value == interrupted
    assert by_name[MISSED_BARGE_INS].value == 0.0
