"""Turn-taking metrics from transcript timing, for calls without a usable stereo recording.

A vendor transcript gives each turn a start and an end (and often word times). Those become per-party
segments and go through exactly the same event and metric code as VAD output, marked
``source=transcript``: the numbers are comparable in definition, but they inherit the transcript's
clock (end-of-turn timestamps are often the recogniser's, not the audio's), so they are never mixed with
audio truth.
"""

from __future__ import annotations

from ..model import Call, MetricResult, MetricSource, Role
from .events import TurnTakingParams
from .metrics import turn_taking_metrics
from .segments import Segment

__all__ = ["MIN_SILENCE_S", "transcript_metrics", "transcript_segments"]


MIN_SILENCE_S = 0.2
"""Silences between one party's words shorter than this are bridged, as the VAD's ``min_silence_s``
(default 0.2 s) does for audio, so word timing and VAD segments have the same grain."""


def _merged(spans: list[tuple[float, float]], min_silence_s: float) -> tuple[Segment, ...]:
    """Sorted, disjoint segments: spans of one party closer than ``min_silence_s`` are one stretch."""
    merged: list[tuple[float, float]] = []
    for start_s, end_s in sorted(spans):
        if end_s <= start_s:
            continue
        if merged and start_s - merged[-1][1] < min_silence_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_s))
        else:
            merged.append((start_s, end_s))
    return tuple(Segment(start_s, end_s) for start_s, end_s in merged)


def transcript_segments(
    call: Call, *, use_words: bool = True, min_silence_s: float = MIN_SILENCE_S
) -> dict[Role, tuple[Segment, ...]]:
    """Per-party speech segments from a call's turns.

    With ``use_words`` a turn that has word timestamps contributes one segment per word (merged where
    words are closer than ``min_silence_s``), so pauses inside a turn stay visible as pauses; otherwise
    the turn's own span is used. Overlapping turns of one party are merged.
    System and tool turns are not speech of either party and are skipped.
    """
    spans: dict[Role, list[tuple[float, float]]] = {Role.USER: [], Role.AGENT: []}
    for turn in call.turns:
        if turn.role not in spans:
            continue
        if use_words and turn.words:
            spans[turn.role].extend((word.start_s, word.end_s) for word in turn.words)
        else:
            spans[turn.role].append((turn.start_s, turn.end_s))
    return {role: _merged(items, min_silence_s) for role, items in spans.items()}


def transcript_metrics(
    call: Call,
    *,
    params: TurnTakingParams | None = None,
    use_words: bool = True,
    call_id: str | None = None,
) -> list[MetricResult]:
    """The turn-taking metrics of :func:`~convoscope.audio.metrics.turn_taking_metrics`, from turn timing.

    ``call_id`` defaults to the call's ``id``, else its ``external_id`` (a call not yet stored has no id).
    The call's effective duration is the denominator of rates, and its text gives words per minute.
    """
    segments = transcript_segments(call, use_words=use_words)
    return turn_taking_metrics(
        segments,
        call_id=call_id or call.id or call.external_id,
        call_duration_s=call.effective_duration_s,
        params=params,
        transcript=call,
        source=MetricSource.TRANSCRIPT,
    )
