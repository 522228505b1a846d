"""The call page's content, shaped for its templates: turn rows with their tools and latency, scores with
what they cite, the recording to play, and the data handed to the page script.

Everything a template prints from a call is text it escapes; JSON values (tool arguments, results,
evidence, metadata) are turned into indented text here rather than with Jinja's ``tojson``, which escapes
``<`` and ``&`` as ``\\u003c`` for scripts and would show a transcript's markup as escape codes. The data the
page script needs (turn times, timeline marks, what each score cites) is small and numeric or from
closed sets (roles, mark kinds); it goes through ``tojson`` into a ``<script type="application/json">``
block, never into code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...model import Call, MetricResult, Recording, ToolCall, Turn
from ...model.blob_ref import stored_sha
from ...recordings.fetch import unstored_reason
from ...store.base import StoredCall
from ...store.jobqueue import JobStatus
from .definitions import Definition
from .evidence import Citations, Mark, audio_gaps, citations, timeline_marks

__all__ = [
    "CalibrationBadge",
    "PAGE_TURNS",
    "CallView",
    "PlayerView",
    "ScoreView",
    "TurnRow",
    "call_view",
    "json_text",
    "turn_rows",
]

PAGE_TURNS = 200
"""Transcript rows rendered at once; the rest come a page at a time (a call can have thousands)."""

_JSON_TEXT_CHARS = 200_000
"""The most characters of one JSON value printed on the page (a payload can be megabytes)."""


def json_text(value: Any, *, limit: int = _JSON_TEXT_CHARS) -> str:
    """``value`` as indented JSON text, cut at ``limit`` characters with a note saying so."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > limit:
        return f"{text[:limit]}\n… (cut: {len(text):,} characters in all)"
    return text


@dataclass(frozen=True, slots=True)
class ToolView:
    """A tool call with its arguments and result as text."""

    tool: ToolCall
    arguments: str
    result: str


@dataclass(frozen=True, slots=True)
class TurnRow:
    """A transcript row: the turn, the tools it called, and the audio-truth gap before it."""

    turn: Turn
    tools: tuple[ToolView, ...]
    audio_gap_s: float | None
    unattributed_s: float | None


@dataclass(frozen=True, slots=True)
class ScoreView:
    """A score as listed: its id on the page (``key``), texts, definition and what it cites."""

    key: str
    result: MetricResult
    value_text: str
    params_text: str
    evidence_text: str
    definition: Definition | None
    cites: Citations
    calibration: CalibrationBadge | None = None


@dataclass(frozen=True, slots=True)
class CalibrationBadge:
    """How far people's labels agree with a metric (every result of it shows this).

    ``status`` is ``calibrated`` (``kappa`` set), ``undefined`` (labels exist, but every verdict on both
    sides was the same, so kappa has no value) or ``uncalibrated`` (a judge nobody has labelled).
    """

    status: str
    kappa: float | None
    labels: int


def calibration_badge(
    metric: str, definition: Definition | None, calibrations: Mapping[str, Any]
) -> CalibrationBadge | None:
    """The badge for ``metric`` from the project's stored agreements; None for a metric that is neither
    a judge nor calibrated (a deterministic metric nobody labelled has nothing to report)."""
    agreement = calibrations.get(metric)
    if not isinstance(agreement, Mapping):
        judge = definition is not None and definition.judge
        return CalibrationBadge("uncalibrated", None, 0) if judge else None
    kappa = agreement.get("kappa")
    labels = agreement.get("n")
    count = labels if isinstance(labels, int) else 0
    if isinstance(kappa, int | float):
        return CalibrationBadge("calibrated", float(kappa), count)
    return CalibrationBadge("undefined" if count else "uncalibrated", None, count)


@dataclass(frozen=True, slots=True)
class Lane:
    """One channel of the recording and the party heard on it (None: the channel map does not say)."""

    channel: int
    role: str | None


@dataclass(frozen=True, slots=True)
class PlayerView:
    """The recording the page plays: which one, its duration and its channels."""

    index: int
    recording: Recording
    duration_s: float | None
    lanes: tuple[Lane, ...]


@dataclass(frozen=True, slots=True)
class RecordingNote:
    """One of the call's recordings: playable here, or why not."""

    index: int
    recording: Recording
    reason: str | None


@dataclass
class CallView:
    """Everything the call page shows of one stored call."""

    stored: StoredCall
    rows: list[TurnRow]
    next_turns: int | None
    unplaced_tools: list[ToolView]
    scores: list[ScoreView]
    marks: list[Mark]
    player: PlayerView | None
    recordings: list[RecordingNote]
    texts: dict[str, str]
    """The call's free-form JSON (metadata, vendor analysis, usage and cost) as text."""
    cost_totals: list[tuple[str, float]]
    script_data: dict[str, Any] = field(default_factory=dict)


def _value_text(result: MetricResult) -> str:
    value = result.value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


def _tool_view(tool: ToolCall) -> ToolView:
    return ToolView(tool, json_text(tool.arguments, limit=20_000), json_text(tool.result, limit=20_000))


def _tools_by_turn(call: Call) -> tuple[dict[int, list[ToolView]], list[ToolView]]:
    """Tool calls under the turn that made them: by ``turn_index``, else the last turn started before
    the tool; tools placed nowhere are listed after the transcript."""
    indices = {t.index for t in call.turns}
    starts = sorted((t.start_s, t.index) for t in call.turns)
    placed: dict[int, list[ToolView]] = {}
    unplaced: list[ToolView] = []
    for tool in call.tool_calls:
        index = tool.turn_index if tool.turn_index in indices else None
        if index is None and tool.start_s is not None:
            before = [i for s, i in starts if s <= tool.start_s]
            index = before[-1] if before else None
        if index is None:
            unplaced.append(_tool_view(tool))
        else:
            placed.setdefault(index, []).append(_tool_view(tool))
    return placed, unplaced


def turn_rows(stored: StoredCall, offset: int, limit: int = PAGE_TURNS) -> tuple[list[TurnRow], int | None]:
    """Transcript rows ``offset`` to ``offset + limit``, and the offset of the next page (None: last)."""
    call = stored.call
    placed, _ = _tools_by_turn(call)
    gaps = audio_gaps(stored.scores, call.turns)
    rows = []
    for turn in call.turns[max(offset, 0) : offset + limit]:
        gap, unexplained = gaps.get(turn.index, (None, None))
        rows.append(TurnRow(turn, tuple(placed.get(turn.index, ())), gap, unexplained))
    end = offset + limit
    return rows, end if end < len(call.turns) else None


def _player(call: Call, wanted: int | None) -> PlayerView | None:
    """The recording to play: ``wanted`` if stored here, else the first stored, preferring one that
    holds both parties on their own channels."""
    stored = [(i, r) for i, r in enumerate(call.recordings) if stored_sha(r) is not None]
    if not stored:
        return None
    chosen = next((p for p in stored if p[0] == wanted), None)
    if chosen is None:
        chosen = next((p for p in stored if len(p[1].channel_map) >= 2), stored[0])
    index, recording = chosen
    channels = recording.channels or max(len(recording.channel_map), 1)
    lanes = tuple(
        Lane(c, recording.channel_map[c].value if c in recording.channel_map else None)
        for c in range(channels)
    )
    return PlayerView(index, recording, recording.duration_s, lanes)


def _script_data(view: CallView) -> dict[str, Any]:
    call = view.stored.call
    player = view.player
    call_id = call.id or ""
    return {
        "call_id": call_id,
        "player": None
        if player is None
        else {
            "index": player.index,
            "audio": f"/calls/{call_id}/audio?index={player.index}",
            "peaks": f"/calls/{call_id}/peaks?index={player.index}",
            "duration": player.duration_s,
            "offset": player.recording.offset_s,
            "lanes": [{"channel": lane.channel, "role": lane.role} for lane in player.lanes],
        },
        "turns": [[t.index, t.role.value, round(t.start_s, 3), round(t.end_s, 3)] for t in call.turns],
        "marks": [[m.kind, round(m.start_s, 3), round(m.end_s, 3), m.role, m.label] for m in view.marks],
        "scores": {
            s.key: {"turns": list(s.cites.turns), "intervals": [list(i) for i in s.cites.intervals]}
            for s in view.scores
        },
    }


def call_view(
    stored: StoredCall,
    jobs: Sequence[JobStatus],
    known: Mapping[str, Definition],
    *,
    recording: int | None = None,
    calibrations: Mapping[str, Any] | None = None,
) -> CallView:
    """The page's content for ``stored``; ``recording`` picks which stored recording the player plays;
    ``calibrations`` are the project's stored agreements with people (``calibration`` in its settings)."""
    call = stored.call
    scores = sorted(stored.scores, key=lambda r: (r.metric.startswith("turn_taking."), r.metric))
    cited = citations(scores, call.turns)
    rows, next_turns = turn_rows(stored, 0)
    _, unplaced = _tools_by_turn(call)
    view = CallView(
        stored=stored,
        rows=rows,
        next_turns=next_turns,
        unplaced_tools=unplaced,
        scores=[
            ScoreView(
                key=f"score-{n}",
                result=result,
                value_text=_value_text(result),
                params_text=json_text(result.params, limit=50_000),
                evidence_text=json_text(result.evidence),
                definition=known.get(result.metric),
                cites=cites,
                calibration=calibration_badge(result.metric, known.get(result.metric), calibrations or {}),
            )
            for n, (result, cites) in enumerate(zip(scores, cited, strict=True))
        ],
        marks=timeline_marks(scores),
        player=_player(call, recording),
        recordings=[
            RecordingNote(i, r, None if stored_sha(r) is not None else unstored_reason(r, jobs))
            for i, r in enumerate(call.recordings)
        ],
        texts=_texts(call),
        cost_totals=_cost_totals(call),
    )
    view.script_data = _script_data(view)
    return view


def _texts(call: Call) -> dict[str, str]:
    usage = {
        "usage": call.usage.model_dump(mode="json", exclude_none=True),
        "cost": [line.model_dump(mode="json", exclude_none=True) for line in call.cost],
    }
    return {
        "metadata": json_text(call.metadata),
        "vendor_analysis": json_text(call.vendor_analysis),
        "usage": json_text(usage),
    }


def _cost_totals(call: Call) -> list[tuple[str, float]]:
    """The call's cost per currency (lines in different units are never added up)."""
    totals: dict[str, float] = {}
    for line in call.cost:
        totals[line.currency] = totals.get(line.currency, 0.0) + line.amount
    return sorted(totals.items())
