"""What a score's evidence points at, read so the call page can show it on the transcript and the timeline.

Scores keep their evidence as free JSON (``MetricResult.evidence``), each metric in its own shape, and the
page must not need one reader per metric. Two conventions cover what they cite:

- a **turn** is cited by index: ``turn_index`` / ``transcript_turn_index`` (one) or ``turn_indices`` /
  ``run_turn_indices`` (a list), at any depth (the evaluators' quotes, flagged turns, failed tool calls);
- a **stretch of the call** is a ``[start_s, end_s]`` pair of numbers, at any depth (the turn-taking
  metrics' segments, gaps, overlaps and windows, on the call clock).

A stretch cites the transcript turns it overlaps, so selecting an audio score lights up the turns it is
about. The turn-taking scores also give the timeline its marks (gaps, overlaps, interruptions, long
silences, detected speech), read here from their documented evidence keys (``audio/metrics.py``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from ...model import MetricResult, Role, Turn

__all__ = [
    "Citations",
    "Mark",
    "audio_gaps",
    "citations",
    "timeline_marks",
]

_INDEX_KEYS = frozenset({"turn_index", "transcript_turn_index"})
_INDEX_LIST_KEYS = frozenset({"turn_indices", "run_turn_indices"})
_MAX_DEPTH = 12
_MAX_INTERVALS = 2000
"""Stretches kept per score: evidence lists are capped at 200 items by the metrics, a few per item."""
_MIN_OVERLAP_S = 0.05
"""A stretch cites a turn when they share at least this much (or half the stretch, if shorter), so a
silence ending a millisecond into the next turn does not cite it."""

_TT = "turn_taking."


@dataclass(frozen=True, slots=True)
class Citations:
    """The turns (by index) and the stretches of the call (seconds) a score's evidence names."""

    turns: tuple[int, ...]
    intervals: tuple[tuple[float, float], ...]


def _seconds(value: object) -> float | None:
    """A JSON number as a float; None for anything else (a bool is not a number here)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pair(value: object) -> tuple[float, float] | None:
    """``[start_s, end_s]``: two numbers, the first not after the second, neither negative."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    start, end = _seconds(value[0]), _seconds(value[1])
    if start is None or end is None or not 0.0 <= start <= end:
        return None
    return start, end


def _walk(value: JsonValue, depth: int, turns: set[int], intervals: list[tuple[float, float]]) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for name, item in value.items():
            if name in _INDEX_KEYS and isinstance(item, int) and not isinstance(item, bool):
                turns.add(item)
            elif name in _INDEX_LIST_KEYS and isinstance(item, list):
                turns.update(i for i in item if isinstance(i, int) and not isinstance(i, bool))
            else:
                _walk(item, depth + 1, turns, intervals)
    elif isinstance(value, list):
        span = _pair(value)
        if span is not None:
            if len(intervals) < _MAX_INTERVALS:
                intervals.append(span)
            return
        for item in value:
            _walk(item, depth + 1, turns, intervals)


class _TurnIndex:
    """Transcript turns by start time, to find the ones a stretch overlaps without a full scan."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        ordered = sorted(turns, key=lambda t: (t.start_s, t.index))
        self._starts = [t.start_s for t in ordered]
        self._turns = ordered
        self._longest = max((t.end_s - t.start_s for t in ordered), default=0.0)

    def overlapping(self, start: float, end: float) -> Iterable[int]:
        need = min(_MIN_OVERLAP_S, (end - start) / 2)
        i = bisect.bisect_right(self._starts, end) - 1
        while i >= 0 and self._starts[i] >= start - self._longest - 1e-9:
            turn = self._turns[i]
            shared = min(end, turn.end_s) - max(start, turn.start_s)
            if (shared > 0 and shared >= need) or (start == end and turn.start_s <= start <= turn.end_s):
                yield turn.index
            i -= 1


def citations(results: Sequence[MetricResult], turns: Sequence[Turn]) -> list[Citations]:
    """For each result, the turns and stretches its evidence cites (turn indices that name no turn of
    the call are dropped; a stretch adds every turn it overlaps)."""
    index = _TurnIndex(turns)
    known = {t.index for t in turns}
    cited: list[Citations] = []
    for result in results:
        named: set[int] = set()
        intervals: list[tuple[float, float]] = []
        _walk(result.evidence, 0, named, intervals)
        for start, end in intervals:
            named.update(index.overlapping(start, end))
        unique = sorted(set(intervals))
        cited.append(Citations(turns=tuple(sorted(named & known)), intervals=tuple(unique)))
    return cited


@dataclass(frozen=True, slots=True)
class Mark:
    """One mark on the timeline: what it is (``kind``), when (call seconds), whose (``role``), and a label."""

    kind: str
    start_s: float
    end_s: float
    label: str
    role: str | None = None


def _items(result: MetricResult | None, key: str) -> list[dict[str, JsonValue]]:
    """The objects listed under ``key`` in a result's evidence."""
    found = result.evidence.get(key) if result is not None else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _list(result: MetricResult | None, key: str) -> list[JsonValue]:
    found = result.evidence.get(key) if result is not None else None
    return found if isinstance(found, list) else []


def timeline_marks(results: Sequence[MetricResult]) -> list[Mark]:
    """The turn-taking events the audio analysis found, by start time: speech it detected per party,
    gaps before each answer, talk-over, interruptions, backchannels, missed barge-ins, long silences and
    unanswered user turns."""
    by_name: Mapping[str, MetricResult] = {r.metric: r for r in results if r.metric.startswith(_TT)}
    marks: list[Mark] = []
    speech: set[tuple[str, float, float]] = set()
    for item in _items(by_name.get(f"{_TT}response_gap_p50_s"), "responses"):
        user, agent, gap = (
            _pair(item.get("user_turn")),
            _pair(item.get("agent_turn")),
            _seconds(item.get("gap_s")),
        )
        if user is not None:
            speech.add(("user", *user))
        if agent is not None:
            speech.add(("agent", *agent))
        if user is not None and agent is not None and gap is not None and agent[0] > user[1]:
            marks.append(Mark("gap", user[1], agent[0], f"gap {gap:.2f} s before the answer"))
    marks.extend(Mark("speech", a, b, f"{role} speech (audio)", role) for role, a, b in sorted(speech))
    for value in _list(by_name.get(f"{_TT}talk_over_s"), "talk_over"):
        if (span := _pair(value)) is not None:
            marks.append(Mark("overlap", *span, f"both talk for {span[1] - span[0]:.2f} s"))
    for metric, who, whom in (
        ("agent_interruptions", "agent", "user"),
        ("user_interruptions", "user", "agent"),
    ):
        for item in _items(by_name.get(f"{_TT}{metric}"), "interruptions"):
            if (span := _pair(item.get("overlap"))) is not None:
                marks.append(Mark("interruption", *span, f"{who} interrupts {whom}", who))
    for item in _items(by_name.get(f"{_TT}backchannels"), "backchannels"):
        role = item.get("role") if item.get("role") in ("user", "agent") else None
        if (span := _pair(item.get("segment"))) is not None:
            marks.append(
                Mark("backchannel", *span, f"{role or 'a'} backchannel", str(role) if role else None)
            )
    for item in _items(by_name.get(f"{_TT}missed_barge_ins"), "barge_ins"):
        onset, stop = _seconds(item.get("onset_s")), _seconds(item.get("agent_stop_s"))
        if item.get("yielded") is False and onset is not None and stop is not None:
            marks.append(Mark("missed-barge-in", onset, max(onset, stop), "agent talks over a barge-in"))
    for item in _items(by_name.get(f"{_TT}long_silences"), "silences"):
        if (span := _pair(item.get("segment"))) is not None:
            kind = "pause" if item.get("kind") == "pause" else "gap"
            marks.append(Mark("long-silence", *span, f"long {kind}: {span[1] - span[0]:.1f} s"))
    for item in _items(by_name.get(f"{_TT}unanswered_user_turns"), "unanswered"):
        if (span := _pair(item.get("window"))) is not None:
            marks.append(Mark("unanswered", *span, "user turn left unanswered"))
    return sorted(marks, key=lambda m: (m.start_s, m.end_s, m.kind))


def audio_gaps(
    results: Sequence[MetricResult], turns: Sequence[Turn]
) -> dict[int, tuple[float, float | None]]:
    """Per agent turn (by index): the audio-truth gap before it and the time its reported components
    leave unexplained, from the matched pairs of the latency metrics; agent turns the pairs do not cover
    (no reported components) take the gap of the audio answer they overlap most."""
    by_name = {r.metric: r for r in results}
    gaps: dict[int, tuple[float, float | None]] = {}
    for metric in (f"{_TT}unattributed_latency_s", f"{_TT}vendor_e2e_minus_audio_gap_s"):
        for pair in _items(by_name.get(metric), "pairs"):
            index, gap = pair.get("transcript_turn_index"), _seconds(pair.get("audio_gap_s"))
            if isinstance(index, int) and gap is not None and index not in gaps:
                gaps[index] = (gap, _seconds(pair.get("unattributed_s")))
    answers: list[tuple[tuple[float, float], float]] = []
    for item in _items(by_name.get(f"{_TT}response_gap_p50_s"), "responses"):
        agent, gap = _pair(item.get("agent_turn")), _seconds(item.get("gap_s"))
        if agent is not None and gap is not None:
            answers.append((agent, gap))
    for turn in turns if answers else ():
        if turn.role is not Role.AGENT or turn.index in gaps:
            continue
        best, best_shared = None, 0.0
        for (start, end), gap in answers:
            shared = min(end, turn.end_s) - max(start, turn.start_s)
            if shared > best_shared:
                best, best_shared = gap, shared
        if best is not None:
            gaps[turn.index] = (best, None)
    return gaps
