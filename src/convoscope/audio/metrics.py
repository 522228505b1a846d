"""Turn-taking metrics of one call, from per-party speech segments.

Each metric is a :class:`~convoscope.model.MetricResult` named ``turn_taking.<name>``, carrying the rules
that produced it (every :class:`~convoscope.audio.events.TurnTakingParams` field, the VAD parameters when
given, the call duration) and the segments or events behind the value as ``[start_s, end_s]`` lists, so a
person can replay any number. The same code serves stereo audio (``source=audio``) and transcript timing
(``source=transcript``, see :mod:`convoscope.audio.transcript`). A recording whose channels cannot be told
apart is never guessed at: :func:`not_scorable` says so, metric by metric.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import JsonValue

from ..errors import InputError
from ..model import Call, MetricResult, MetricSource, Role
from .events import Interruption, TalkTurn, TurnTakingEvents, TurnTakingParams, extract_events
from .segments import ChannelActivity, Segment, VadParams

__all__ = [
    "AGENT_INTERRUPTIONS",
    "AGENT_INTERRUPTIONS_PER_MIN",
    "AGENT_INTERRUPTIONS_PER_TURN",
    "AGENT_TALK_RATIO",
    "AGENT_WORDS_PER_MIN",
    "BACKCHANNELS",
    "ECHO_SELF_INTERRUPTIONS",
    "EVIDENCE_CAP",
    "FIRST_RESPONSE",
    "LONGEST_SILENCE",
    "LONG_SILENCES",
    "MISSED_BARGE_INS",
    "OVERLAP_METRICS",
    "RESPONSE_GAP_P50",
    "RESPONSE_GAP_P90",
    "RESPONSE_GAP_P95",
    "RESPONSE_GAP_P99",
    "STOP_TIME",
    "TALK_OVER",
    "TIME_TO_FIRST_AUDIO",
    "UNANSWERED_USER_TURNS",
    "UNATTRIBUTED_LATENCY",
    "USER_INTERRUPTIONS",
    "USER_INTERRUPTIONS_PER_MIN",
    "USER_WORDS_PER_MIN",
    "VENDOR_E2E_MINUS_AUDIO_GAP",
    "not_scorable",
    "turn_taking_metrics",
]

RESPONSE_GAP_P50 = "turn_taking.response_gap_p50_s"
RESPONSE_GAP_P90 = "turn_taking.response_gap_p90_s"
RESPONSE_GAP_P95 = "turn_taking.response_gap_p95_s"
RESPONSE_GAP_P99 = "turn_taking.response_gap_p99_s"
TIME_TO_FIRST_AUDIO = "turn_taking.time_to_first_audio_s"
AGENT_INTERRUPTIONS = "turn_taking.agent_interruptions"
AGENT_INTERRUPTIONS_PER_TURN = "turn_taking.agent_interruptions_per_turn"
AGENT_INTERRUPTIONS_PER_MIN = "turn_taking.agent_interruptions_per_min"
USER_INTERRUPTIONS = "turn_taking.user_interruptions"
USER_INTERRUPTIONS_PER_MIN = "turn_taking.user_interruptions_per_min"
STOP_TIME = "turn_taking.stop_time_s"
MISSED_BARGE_INS = "turn_taking.missed_barge_ins"
TALK_OVER = "turn_taking.talk_over_s"
BACKCHANNELS = "turn_taking.backchannels"
LONG_SILENCES = "turn_taking.long_silences"
LONGEST_SILENCE = "turn_taking.longest_silence_s"
UNANSWERED_USER_TURNS = "turn_taking.unanswered_user_turns"
AGENT_TALK_RATIO = "turn_taking.agent_talk_ratio"
FIRST_RESPONSE = "turn_taking.first_response_s"
ECHO_SELF_INTERRUPTIONS = "turn_taking.echo_self_interruptions"
USER_WORDS_PER_MIN = "turn_taking.user_words_per_min"
AGENT_WORDS_PER_MIN = "turn_taking.agent_words_per_min"
UNATTRIBUTED_LATENCY = "turn_taking.unattributed_latency_s"
VENDOR_E2E_MINUS_AUDIO_GAP = "turn_taking.vendor_e2e_minus_audio_gap_s"

OVERLAP_METRICS: tuple[str, ...] = (
    RESPONSE_GAP_P50,
    RESPONSE_GAP_P90,
    RESPONSE_GAP_P95,
    RESPONSE_GAP_P99,
    TIME_TO_FIRST_AUDIO,
    AGENT_INTERRUPTIONS,
    AGENT_INTERRUPTIONS_PER_TURN,
    AGENT_INTERRUPTIONS_PER_MIN,
    USER_INTERRUPTIONS,
    USER_INTERRUPTIONS_PER_MIN,
    STOP_TIME,
    MISSED_BARGE_INS,
    TALK_OVER,
    BACKCHANNELS,
    LONG_SILENCES,
    LONGEST_SILENCE,
    UNANSWERED_USER_TURNS,
    AGENT_TALK_RATIO,
    FIRST_RESPONSE,
    ECHO_SELF_INTERRUPTIONS,
)
"""Every metric that needs to know which party spoke when: all of them are not scorable on a mono
recording or one whose channel map is unknown (a silence on a mixed channel cannot be split into a gap and
a pause either)."""

EVIDENCE_CAP = 200
"""Evidence lists keep at most this many items (with the full count beside), so one long call cannot
bloat a stored result; the value is always computed over all items."""

_DIGITS = 3
"""Evidence times are rounded to milliseconds: the detector works on 10 ms frames."""

SpeechInput = Mapping[Role, ChannelActivity] | Mapping[Role, Sequence[Segment]]


def _r(value: float) -> float:
    return round(value, _DIGITS)


def _span(start_s: float, end_s: float) -> list[JsonValue]:
    return [_r(start_s), _r(end_s)]


def _seg(segment: Segment) -> list[JsonValue]:
    return _span(segment.start_s, segment.end_s)


def _turn(turn: TalkTurn) -> list[JsonValue]:
    return _span(turn.start_s, turn.end_s)


def _capped(name: str, items: Sequence[JsonValue]) -> dict[str, JsonValue]:
    """``{name: first EVIDENCE_CAP items, name_count: all}``."""
    return {name: list(items[:EVIDENCE_CAP]), f"{name}_count": len(items)}


@dataclass(frozen=True, slots=True)
class _Response:
    """An agent turn answering a user turn: the floor-transfer offset at turn level."""

    user_turn: TalkTurn
    agent_turn: TalkTurn

    @property
    def gap_s(self) -> float:
        return self.agent_turn.start_s - self.user_turn.end_s

    def evidence(self) -> dict[str, JsonValue]:
        return {
            "user_turn": _turn(self.user_turn),
            "agent_turn": _turn(self.agent_turn),
            "gap_s": _r(self.gap_s),
        }


def _responses(events: TurnTakingEvents) -> list[_Response]:
    """Each agent turn that answers a user turn, with that user turn.

    The answered user turn is the last one starting before the agent turn; an agent turn that ends inside
    it (a backchannel or talk-over) answers nothing, and only the first agent turn after a user turn
    answers it. A negative gap means the agent started before the user finished.
    """
    user_starts = [t.start_s for t in events.user_turns]
    used: set[int] = set()
    responses: list[_Response] = []
    for agent_turn in events.agent_turns:
        k = bisect.bisect_left(user_starts, agent_turn.start_s) - 1
        if k < 0 or k in used:
            continue
        user_turn = events.user_turns[k]
        if agent_turn.end_s <= user_turn.end_s:
            continue
        used.add(k)
        responses.append(_Response(user_turn, agent_turn))
    return responses


def _agent_stop_s(agent: tuple[Segment, ...], onset_s: float, yield_silence_s: float) -> float:
    """When the agent speech running at ``onset_s`` stops: its end, bridged over breaks < yield_silence_s."""
    i = max(bisect.bisect_right(agent, onset_s, key=lambda s: s.start_s) - 1, 0)
    stop_s = agent[i].end_s
    for segment in agent[i + 1 :]:
        if segment.start_s - stop_s >= yield_silence_s:
            break
        stop_s = segment.end_s
    return stop_s


def _active_near(segments: tuple[Segment, ...], t_s: float, tolerance_s: float) -> bool:
    return any(s.start_s <= t_s + tolerance_s and s.end_s >= t_s - tolerance_s for s in segments)


@dataclass(frozen=True, slots=True)
class _BargeIn:
    interruption: Interruption
    stop_s: float
    yielded: bool

    @property
    def stop_time_s(self) -> float:
        return self.stop_s - self.interruption.onset_s

    def evidence(self) -> dict[str, JsonValue]:
        return {
            "onset_s": _r(self.interruption.onset_s),
            "agent_stop_s": _r(self.stop_s),
            "stop_time_s": _r(self.stop_time_s),
            "yielded": self.yielded,
            "user_segment": _seg(self.interruption.interrupter_segment),
            "agent_segment": _seg(self.interruption.interrupted_segment),
        }


def _barge_ins(events: TurnTakingEvents, p: TurnTakingParams) -> list[_BargeIn]:
    """User interruptions of the agent, with when the agent stopped and whether that was a yield."""
    result: list[_BargeIn] = []
    for interruption in events.interruptions:
        if interruption.interrupter is not Role.USER:
            continue
        stop_s = _agent_stop_s(events.agent_segments, interruption.onset_s, p.yield_silence_s)
        yielded = stop_s - interruption.onset_s <= p.yield_window_s and _active_near(
            events.user_segments, stop_s, p.yield_floor_tolerance_s
        )
        result.append(_BargeIn(interruption, stop_s, yielded))
    return result


def _echo_candidates(events: TurnTakingEvents, p: TurnTakingParams) -> list[dict[str, JsonValue]]:
    """User-channel onsets during agent speech that the agent stopped for, but that no user turn follows.

    Echo or bleed of the agent's own voice on the user channel starts while the agent talks and dies
    with it; a real caller keeps talking after the agent stops. So: the agent stops within
    ``echo_window_s`` of the onset, the user turn holding the onset ends within ``yield_silence_s`` of
    that stop, and the next speech after it is the agent's (or nobody's).
    """
    agent = events.agent_segments
    candidates: list[dict[str, JsonValue]] = []
    for turn in events.user_turns:
        onset_s = turn.start_s
        active = [s for s in agent if s.start_s < onset_s < s.end_s]
        if not active:
            continue
        stop_s = _agent_stop_s(agent, onset_s, p.yield_silence_s)
        if stop_s - onset_s > p.echo_window_s or turn.end_s > stop_s + p.yield_silence_s:
            continue
        next_user = next((t.start_s for t in events.user_turns if t.start_s > turn.end_s), None)
        next_agent = next((s.start_s for s in agent if s.start_s >= stop_s), None)
        if next_user is not None and (next_agent is None or next_user < next_agent):
            continue
        candidates.append(
            {
                "user_onset_s": _r(onset_s),
                "agent_stop_s": _r(stop_s),
                "user_turn": _turn(turn),
                "agent_segment": _seg(active[0]),
                "agent_resumed_s": None if next_agent is None else _r(next_agent),
            }
        )
    return candidates


def _words(transcript: Call, role: Role) -> int:
    return sum(
        len(turn.words) if turn.words else len(turn.text.split())
        for turn in transcript.turns
        if turn.role is role
    )


_COMPONENTS = ("eou_s", "stt_s", "llm_ttft_s", "tts_ttfb_s")


def _latency_pairs(transcript: Call, responses: list[_Response]) -> list[dict[str, JsonValue]]:
    """Transcript agent turns with latency components, matched to the audio agent turn they overlap most."""
    pairs: list[dict[str, JsonValue]] = []
    for turn in transcript.turns:
        if turn.role is not Role.AGENT:
            continue
        components = {name: getattr(turn, name) for name in _COMPONENTS if getattr(turn, name) is not None}
        if not components and turn.e2e_s is None:
            continue
        best: _Response | None = None
        best_overlap_s = 0.0
        for response in responses:
            overlap_s = min(turn.end_s, response.agent_turn.end_s) - max(
                turn.start_s, response.agent_turn.start_s
            )
            if overlap_s > best_overlap_s:
                best, best_overlap_s = response, overlap_s
        if best is None:
            continue
        gap_s = best.gap_s
        pair: dict[str, JsonValue] = {
            "transcript_turn_index": turn.index,
            "transcript_turn": _span(turn.start_s, turn.end_s),
            "audio_agent_turn": _turn(best.agent_turn),
            "audio_user_turn": _turn(best.user_turn),
            "audio_gap_s": _r(gap_s),
            "components_s": {name: _r(value) for name, value in components.items()},
            "unattributed_s": _r(gap_s - sum(components.values())) if components else None,
            "e2e_s": None if turn.e2e_s is None else _r(turn.e2e_s),
            "e2e_minus_audio_gap_s": None if turn.e2e_s is None else _r(turn.e2e_s - gap_s),
        }
        pairs.append(pair)
    return pairs


def _to_segments(speech: SpeechInput) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    lists: dict[Role, tuple[Segment, ...]] = {}
    for role in (Role.USER, Role.AGENT):
        if role not in speech:
            raise InputError(f"turn-taking metrics need speech for both parties; {role.value!r} is missing")
        value = speech[role]
        lists[role] = value.segments if isinstance(value, ChannelActivity) else tuple(value)
    return lists[Role.USER], lists[Role.AGENT]


def _median(values: Sequence[float]) -> float | None:
    return float(np.percentile(values, 50)) if values else None


def turn_taking_metrics(
    speech: SpeechInput,
    *,
    call_id: str,
    call_duration_s: float,
    params: TurnTakingParams | None = None,
    transcript: Call | None = None,
    vad_params: VadParams | None = None,
    source: MetricSource = MetricSource.AUDIO,
) -> list[MetricResult]:
    """Every turn-taking metric of one call, from user and agent speech.

    ``speech`` is the detector's :data:`~convoscope.audio.segments.Speech` or plain per-role segment
    lists. ``transcript``, when given, adds words per minute (from its text) and, for agent turns with
    reported latency components, the time those components leave unexplained. ``vad_params`` are echoed
    so a result names the detector settings too. Rates per minute use ``call_duration_s``; with a
    zero-length call they are None.
    """
    p = params or TurnTakingParams()
    if call_duration_s < 0.0:
        raise InputError(f"call_duration_s must be >= 0, got {call_duration_s!r}")
    user, agent = _to_segments(speech)
    events = extract_events(user, agent, params=p)
    echoed: dict[str, JsonValue] = {**p.model_dump(mode="json"), "call_duration_s": _r(call_duration_s)}
    if vad_params is not None:
        echoed["vad"] = vad_params.model_dump(mode="json")
    minutes = call_duration_s / 60.0
    results: list[MetricResult] = []

    def emit(
        metric: str,
        value: float | bool | None,
        evidence: dict[str, JsonValue],
        passed: bool | None = None,
    ) -> None:
        if isinstance(value, float):
            value = round(value, 6)
        results.append(
            MetricResult(
                call_id=call_id,
                metric=metric,
                version=p.version,
                value=value,
                passed=passed,
                params=echoed,
                evidence=evidence,
                source=source,
            )
        )

    # Response gap (turn-level floor-transfer offset) and time to first audio.
    responses = _responses(events)
    gaps_s = [r.gap_s for r in responses]
    gap_evidence = _capped("responses", [r.evidence() for r in responses])
    for metric, q in (
        (RESPONSE_GAP_P50, 50),
        (RESPONSE_GAP_P90, 90),
        (RESPONSE_GAP_P95, 95),
        (RESPONSE_GAP_P99, 99),
    ):
        value = float(np.percentile(gaps_s, q)) if gaps_s else None
        passed: bool | None = None
        if value is not None and q == 50:
            passed = value <= p.response_gap_max_s
        elif value is not None and q == 95:
            passed = value <= p.response_gap_p95_max_s
        emit(metric, value, {**gap_evidence, "percentile": q}, passed)
    emit(
        TIME_TO_FIRST_AUDIO,
        max(gaps_s) if gaps_s else None,
        {
            **_capped(
                "agent_turns",
                [
                    {
                        "agent_onset_s": _r(r.agent_turn.start_s),
                        "user_turn_end_s": _r(r.user_turn.end_s),
                        "time_to_first_audio_s": _r(r.gap_s),
                    }
                    for r in responses
                ],
            ),
            "aggregate": "max",
        },
    )

    # Interruptions, each way.
    by_agent = [i for i in events.interruptions if i.interrupter is Role.AGENT]
    by_user = [i for i in events.interruptions if i.interrupter is Role.USER]

    def interruption_evidence(items: list[Interruption]) -> dict[str, JsonValue]:
        return _capped(
            "interruptions",
            [
                {
                    "onset_s": _r(i.onset_s),
                    "overlap": _seg(i.overlap),
                    "floor_taken": i.floor_taken,
                    "interrupter_segment": _seg(i.interrupter_segment),
                    "interrupted_segment": _seg(i.interrupted_segment),
                }
                for i in items
            ],
        )

    agent_evidence = interruption_evidence(by_agent)
    emit(AGENT_INTERRUPTIONS, float(len(by_agent)), agent_evidence)
    emit(
        AGENT_INTERRUPTIONS_PER_TURN,
        len(by_agent) / len(events.agent_turns) if events.agent_turns else None,
        {**agent_evidence, "agent_turns": len(events.agent_turns)},
    )
    emit(AGENT_INTERRUPTIONS_PER_MIN, len(by_agent) / minutes if minutes > 0 else None, agent_evidence)
    user_evidence = interruption_evidence(by_user)
    emit(USER_INTERRUPTIONS, float(len(by_user)), user_evidence)
    emit(USER_INTERRUPTIONS_PER_MIN, len(by_user) / minutes if minutes > 0 else None, user_evidence)

    # Barge-in handling: stop time and missed barge-ins.
    barge_ins = _barge_ins(events, p)
    barge_evidence = _capped("barge_ins", [b.evidence() for b in barge_ins])
    stop_times_s = [b.stop_time_s for b in barge_ins if b.yielded]
    stop_time_s = _median(stop_times_s)
    emit(
        STOP_TIME,
        stop_time_s,
        {**barge_evidence, "aggregate": "median over yielded barge-ins"},
        None if stop_time_s is None else stop_time_s <= p.stop_time_max_s,
    )
    missed = sum(1 for b in barge_ins if not b.yielded)
    emit(MISSED_BARGE_INS, float(missed), barge_evidence, missed == 0)

    # Talk-over and backchannels.
    emit(
        TALK_OVER,
        sum(s.duration_s for s in events.talk_over),
        _capped("talk_over", [_seg(s) for s in events.talk_over]),
    )
    backchannels = [w for w in events.within_overlaps if w.is_backchannel]
    emit(
        BACKCHANNELS,
        float(len(backchannels)),
        {
            **_capped(
                "backchannels",
                [{"role": w.inner_role.value, "segment": _span(w.start_s, w.end_s)} for w in backchannels],
            ),
            "by_user": sum(1 for w in backchannels if w.inner_role is Role.USER),
            "by_agent": sum(1 for w in backchannels if w.inner_role is Role.AGENT),
        },
    )

    # Mutual silence.
    silences = sorted(
        [(g.start_s, g.end_s, "gap") for g in events.gaps]
        + [(q.start_s, q.end_s, "pause") for q in events.pauses]
    )
    long_ones = [s for s in silences if s[1] - s[0] > p.long_silence_s]
    emit(
        LONG_SILENCES,
        float(len(long_ones)),
        _capped("silences", [{"segment": _span(a, b), "kind": kind} for a, b, kind in long_ones]),
        not long_ones,
    )
    longest = max(silences, key=lambda s: s[1] - s[0], default=None)
    emit(
        LONGEST_SILENCE,
        None if longest is None else longest[1] - longest[0],
        {"silence": None if longest is None else _span(longest[0], longest[1])},
        None if longest is None else longest[1] - longest[0] <= p.long_silence_s,
    )

    # Unanswered user turns: judged only when the call lasted the whole window after the turn.
    unanswered: list[JsonValue] = []
    judged = 0
    for turn in events.user_turns:
        window_end_s = turn.end_s + p.unanswered_after_s
        if window_end_s > call_duration_s:
            continue
        judged += 1
        if not any(s.start_s <= window_end_s and s.end_s >= turn.end_s for s in agent):
            unanswered.append({"user_turn": _turn(turn), "window": _span(turn.end_s, window_end_s)})
    emit(
        UNANSWERED_USER_TURNS,
        float(len(unanswered)),
        {**_capped("unanswered", unanswered), "judged_user_turns": judged},
        not unanswered,
    )

    # Talk ratio and first response.
    agent_speech_s = sum(s.duration_s for s in events.agent_segments)
    emit(
        AGENT_TALK_RATIO,
        agent_speech_s / call_duration_s if call_duration_s > 0 else None,
        {"agent_speech_s": _r(agent_speech_s), "call_duration_s": _r(call_duration_s)},
    )
    first_agent = events.agent_segments[0] if events.agent_segments else None
    first_user = events.user_segments[0] if events.user_segments else None
    emit(
        FIRST_RESPONSE,
        None if first_agent is None else first_agent.start_s,
        {
            "first_agent_segment": None if first_agent is None else _seg(first_agent),
            "first_user_segment": None if first_user is None else _seg(first_user),
            "agent_spoke_first": first_agent is not None
            and (first_user is None or first_agent.start_s <= first_user.start_s),
        },
    )

    # Echo self-interruption candidates.
    echoes = _echo_candidates(events, p)
    emit(ECHO_SELF_INTERRUPTIONS, float(len(echoes)), _capped("candidates", list(echoes)))

    if transcript is not None:
        _transcript_metrics(transcript, events, responses, emit)
    return results


class _Emit(Protocol):
    """The result builder of one :func:`turn_taking_metrics` call, handed to its helpers."""

    def __call__(
        self,
        metric: str,
        value: float | bool | None,
        evidence: dict[str, JsonValue],
        passed: bool | None = None,
    ) -> None: ...


def _transcript_metrics(
    transcript: Call,
    events: TurnTakingEvents,
    responses: list[_Response],
    emit: _Emit,
) -> None:
    """Words per minute and unattributed latency: the metrics that need a transcript beside the timing."""
    for metric, role in ((USER_WORDS_PER_MIN, Role.USER), (AGENT_WORDS_PER_MIN, Role.AGENT)):
        words = _words(transcript, role)
        speech_s = sum(s.duration_s for s in events.segments(role))
        emit(
            metric,
            words / (speech_s / 60.0) if words and speech_s > 0 else None,
            {"words": words, "speech_s": _r(speech_s)},
        )
    pairs = _latency_pairs(transcript, responses)
    unattributed = [float(v) for pair in pairs if isinstance(v := pair["unattributed_s"], float | int)]
    e2e_diffs = [float(v) for pair in pairs if isinstance(v := pair["e2e_minus_audio_gap_s"], float | int)]
    evidence = {**_capped("pairs", list(pairs)), "aggregate": "median over matched turns"}
    emit(UNATTRIBUTED_LATENCY, _median(unattributed), evidence)
    emit(VENDOR_E2E_MINUS_AUDIO_GAP, _median(e2e_diffs), evidence)


def not_scorable(
    reason: str,
    *,
    call_id: str,
    params: TurnTakingParams | None = None,
    source: MetricSource = MetricSource.AUDIO,
) -> list[MetricResult]:
    """One result per metric in :data:`OVERLAP_METRICS` saying why it cannot be measured, never a guess.

    For a mono recording, a channel map that does not name both parties, or anything else that makes
    "who spoke when" unknowable: value and passed are None and the evidence is ``{"not_scorable": reason}``.
    """
    p = params or TurnTakingParams()
    echoed: dict[str, JsonValue] = p.model_dump(mode="json")
    return [
        MetricResult(
            call_id=call_id,
            metric=metric,
            version=p.version,
            value=None,
            passed=None,
            params=echoed,
            evidence={"not_scorable": reason},
            source=source,
        )
        for metric in OVERLAP_METRICS
    ]
