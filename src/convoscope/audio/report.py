"""The turn-taking analysis of one recording as one document: segments, events, metrics and parameters.

The CLI prints it (``convoscope audio analyze --json``), the post-ingest job stores its metrics, and its
JSON Schema is published (``docs/schema/turn-taking.json``), so a consumer can check what it reads. The
document is built only from the library's own shapes (segments, :class:`TurnTakingEvents`, metric
results), and every knob that shaped it travels in ``params``: two documents made under different
settings say so. :class:`AnalysisParams` is also the one way settings are overridden, from a command line
(``name=value``) or a job's JSON, so both paths validate the same fields with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..model import Call, MetricResult, Role
from .events import TurnTakingEvents, TurnTakingParams, extract_events
from .load import LoadedAudio
from .metrics import not_scorable, turn_taking_metrics
from .quality import agent_clipping
from .segments import Segment, Speech, VadParams
from .vad import VoiceActivityDetector, detect_speech

__all__ = [
    "ANALYSIS_VERSION",
    "MONO_REASON",
    "AnalysisParams",
    "EventsDocument",
    "Interval",
    "TurnTakingAnalysis",
    "analysis_json_schema",
    "analyze_audio",
    "parse_overrides",
]

ANALYSIS_VERSION = "turn-taking-analysis-1"
"""Version of the document's shape; bumped when a field changes meaning or disappears."""

Interval = tuple[float, float]
"""``[start_s, end_s]`` in call seconds."""

_DIGITS = 3
"""Document times are rounded to milliseconds, like metric evidence: the detector works on 10 ms frames."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")

MONO_REASON = "one mixed track: not scorable for overlap metrics (needs stereo or a pair of mono files)"
"""Why a single-track recording gets no overlap metrics: who spoke when cannot be told apart."""


def _iv(start_s: float, end_s: float) -> Interval:
    return (round(start_s, _DIGITS), round(end_s, _DIGITS))


def _seg(segment: Segment) -> Interval:
    return _iv(segment.start_s, segment.end_s)


class AnalysisParams(BaseModel):
    """Every setting of one analysis: the voice detector's and the turn-taking rules'.

    Field names of the two groups are distinct (apart from ``version``), so a flat ``name=value``
    override finds its group by name (see :meth:`with_overrides`).
    """

    model_config = _FROZEN

    vad: VadParams = Field(default_factory=VadParams, description="Voice activity detection settings.")
    turn_taking: TurnTakingParams = Field(
        default_factory=TurnTakingParams, description="Event and metric thresholds."
    )

    def with_overrides(self, overrides: Mapping[str, Any]) -> AnalysisParams:
        """A copy with ``overrides`` applied: flat field names (``long_silence_s``, ``backend``) or
        dotted ones (``vad.threshold``), or nested ``{"vad": {...}, "turn_taking": {...}}`` mappings.

        Raises :class:`InputError` naming the unknown field or the invalid value.
        """
        groups: dict[str, dict[str, Any]] = {
            "vad": self.vad.model_dump(exclude={"neg_threshold"} if self._derived_neg() else set()),
            "turn_taking": self.turn_taking.model_dump(),
        }
        for name, value in overrides.items():
            if name in groups and isinstance(value, Mapping):
                for inner, inner_value in value.items():
                    _assign(groups, f"{name}.{inner}", inner_value)
            else:
                _assign(groups, name, value)
        _check_threshold(groups["vad"].get("threshold"))
        try:
            return AnalysisParams(
                vad=VadParams.model_validate(groups["vad"]),
                turn_taking=TurnTakingParams.model_validate(groups["turn_taking"]),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}"
                for error in exc.errors()
            )
            raise InputError(f"invalid analysis parameter: {problems}") from None

    def _derived_neg(self) -> bool:
        """Whether ``neg_threshold`` is still the default derived from ``threshold`` (so a new threshold
        moves it too)."""
        return self.vad.neg_threshold == VadParams(threshold=self.vad.threshold).neg_threshold


def _check_threshold(value: Any) -> None:
    """VadParams derives ``neg_threshold`` from ``threshold`` before validating it, so a value that is not a
    number would escape as a bare TypeError there; refuse it here with the field's name."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError
        float(value)
    except ValueError:
        raise InputError(f"invalid analysis parameter: threshold: expected a number, got {value!r}") from None


_GROUP_FIELDS: dict[str, frozenset[str]] = {
    "vad": frozenset(VadParams.model_fields) - {"version"},
    "turn_taking": frozenset(TurnTakingParams.model_fields) - {"version"},
}


def _assign(groups: dict[str, dict[str, Any]], name: str, value: Any) -> None:
    """Put one override into its group; the group is named (``vad.x``) or found from the field name."""
    group, _, field = name.rpartition(".")
    if group:
        if group not in _GROUP_FIELDS or field not in _GROUP_FIELDS[group]:
            raise InputError(f"unknown analysis parameter {name!r}")
    else:
        owners = [g for g, fields in _GROUP_FIELDS.items() if field in fields]
        if not owners:
            known = ", ".join(sorted(_GROUP_FIELDS["vad"] | _GROUP_FIELDS["turn_taking"]))
            raise InputError(f"unknown analysis parameter {name!r}; known: {known}")
        group = owners[0]
    groups[group][field] = value


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["long_silence_s=5", "vad.threshold=0.6"]`` → a mapping for :meth:`AnalysisParams.with_overrides`.

    Values stay strings; the models convert and check them.
    """
    overrides: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise InputError(f"parameter {item!r} is not NAME=VALUE (e.g. long_silence_s=5)")
        overrides[name.strip()] = value.strip()
    return overrides


class GapEvent(BaseModel):
    """Mutual silence with a speaker change (positive floor-transfer offset)."""

    model_config = _FROZEN

    interval: Interval
    from_role: Role
    to_role: Role


class PauseEvent(BaseModel):
    """Mutual silence without a speaker change."""

    model_config = _FROZEN

    interval: Interval
    role: Role


class OverlapEvent(BaseModel):
    """Between-speaker overlap: ``to_role`` came in while ``from_role`` spoke, and kept the floor."""

    model_config = _FROZEN

    interval: Interval
    from_role: Role
    to_role: Role


class WithinOverlapEvent(BaseModel):
    """Within-speaker overlap: ``inner_role`` spoke entirely inside ``holder_role``'s speech."""

    model_config = _FROZEN

    interval: Interval
    holder_role: Role
    inner_role: Role
    backchannel: bool


class InterruptionEvent(BaseModel):
    """``interrupter`` came in on ``interrupted``; ``floor_taken``: the interrupted party stopped first."""

    model_config = _FROZEN

    onset_s: float
    interrupter: Role
    interrupted: Role
    overlap: Interval
    floor_taken: bool


class EventsDocument(BaseModel):
    """The Heldner & Edlund events of one call, every list in time order."""

    model_config = _FROZEN

    gaps: list[GapEvent]
    pauses: list[PauseEvent]
    overlaps: list[OverlapEvent]
    within_overlaps: list[WithinOverlapEvent]
    interruptions: list[InterruptionEvent]
    talk_over: list[Interval] = Field(description="Every stretch in which both parties spoke.")
    turns: dict[Role, list[Interval]] = Field(
        description="Each party's turns (segments joined across pauses)."
    )

    @classmethod
    def from_events(cls, events: TurnTakingEvents) -> EventsDocument:
        """The document form of the extracted events."""
        return cls(
            gaps=[
                GapEvent(interval=_iv(g.start_s, g.end_s), from_role=g.from_role, to_role=g.to_role)
                for g in events.gaps
            ],
            pauses=[PauseEvent(interval=_iv(p.start_s, p.end_s), role=p.role) for p in events.pauses],
            overlaps=[
                OverlapEvent(interval=_iv(o.start_s, o.end_s), from_role=o.from_role, to_role=o.to_role)
                for o in events.overlaps
            ],
            within_overlaps=[
                WithinOverlapEvent(
                    interval=_iv(w.start_s, w.end_s),
                    holder_role=w.holder_role,
                    inner_role=w.inner_role,
                    backchannel=w.is_backchannel,
                )
                for w in events.within_overlaps
            ],
            interruptions=[
                InterruptionEvent(
                    onset_s=round(i.onset_s, _DIGITS),
                    interrupter=i.interrupter,
                    interrupted=i.interrupted,
                    overlap=_seg(i.overlap),
                    floor_taken=i.floor_taken,
                )
                for i in events.interruptions
            ],
            talk_over=[_seg(s) for s in events.talk_over],
            turns={
                role: [_iv(t.start_s, t.end_s) for t in events.turns(role)]
                for role in (Role.USER, Role.AGENT)
            },
        )


class TurnTakingAnalysis(BaseModel):
    """The whole analysis of one recording: what ``convoscope audio analyze --json`` prints.

    ``events`` is None when the recording is not scorable for overlap metrics (one mixed track); the
    metrics then say why, one by one.
    """

    model_config = _FROZEN

    version: str = ANALYSIS_VERSION
    call_id: str
    sources: list[str] = Field(description="The file (or pair of files) analysed.")
    duration_s: float = Field(ge=0.0, description="Length on the call clock, after the clock offset.")
    sample_rate_hz: int = Field(gt=0, description="The recording's own rate (analysis runs resampled).")
    offset_s: float = Field(description="Call time of the recording's first sample.")
    overlap_scorable: bool
    segments: dict[Role, list[Interval]] = Field(description="Speech per party, [start_s, end_s] seconds.")
    events: EventsDocument | None
    metrics: list[MetricResult]
    params: AnalysisParams


def analysis_json_schema() -> dict[str, Any]:
    """The JSON Schema of the document as printed (``docs/schema/turn-taking.json`` is generated from it)."""
    return TurnTakingAnalysis.model_json_schema(mode="serialization")


def analyze_audio(
    audio: LoadedAudio,
    *,
    call_id: str,
    params: AnalysisParams | None = None,
    transcript: Call | None = None,
    detector: VoiceActivityDetector | None = None,
) -> TurnTakingAnalysis:
    """Detect speech, extract events and compute every turn-taking metric of ``audio``.

    ``transcript`` (the call's turns) adds words per minute and, where turns carry vendor latency, the
    per-turn difference between vendor and audio-truth latency and the unattributed time. ``detector``
    lets a caller scoring many calls reuse one VAD instance. A single-track analysis (``audio`` loaded
    with ``mono_role``) yields its speech segments and the "not scorable" results, never a guess.
    """
    p = params or AnalysisParams()
    speech: Speech = detect_speech(audio, p.vad, backend=detector)
    segments = {role: [_seg(s) for s in activity.segments] for role, activity in speech.items()}
    scorable = audio.overlap_scorable and {Role.USER, Role.AGENT} <= set(speech)
    events: EventsDocument | None = None
    if scorable:
        extracted = extract_events(
            speech[Role.USER].segments, speech[Role.AGENT].segments, params=p.turn_taking
        )
        events = EventsDocument.from_events(extracted)
        metrics = turn_taking_metrics(
            speech,
            call_id=call_id,
            call_duration_s=audio.duration_s,
            params=p.turn_taking,
            transcript=transcript,
            vad_params=p.vad,
        )
        metrics.append(
            agent_clipping(
                audio, speech[Role.AGENT].segments, call_id=call_id, params=p.turn_taking, vad_params=p.vad
            )
        )
    else:
        metrics = not_scorable(MONO_REASON, call_id=call_id, params=p.turn_taking)
    return TurnTakingAnalysis(
        call_id=call_id,
        sources=list(audio.sources),
        duration_s=round(audio.duration_s, 6),
        sample_rate_hz=audio.original_rate_hz,
        offset_s=audio.offset_s,
        overlap_scorable=scorable,
        segments=segments,
        events=events,
        metrics=metrics,
        params=p,
    )
