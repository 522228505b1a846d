"""Turn-taking events from two parties' speech segments (Heldner & Edlund 2010).

Heldner & Edlund's taxonomy (*Pauses, gaps and overlaps in conversations*, J. Phonetics 38(4)) cuts a
two-party conversation into four kinds of interval, and every turn-taking metric is a count or a length
of one of them:

- **gap**: mutual silence *with* a speaker change; its length is the positive floor-transfer offset (FTO);
- **pause**: mutual silence *without* a speaker change;
- **between-speaker overlap**: both talk and the floor changes during it; its length is the negative FTO,
  and the party who came in took the floor from the other (an interruption when long enough);
- **within-speaker overlap**: the other party's speech lies entirely inside one party's speech; a short
  one is a backchannel ("uh-huh"), not an interruption.

The extraction works on the timeline of joint states (silence, one party, both): every maximal run of a
single speaker is a "floor", and what lies between two consecutive floors decides the event. The code
reads only :class:`~convoscope.audio.segments.Segment` lists, so the same events come from VAD on a stereo
recording or from transcript timing. Every threshold is a field of :class:`TurnTakingParams`, a frozen,
versioned model that metric results echo.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ..model import Role
from .segments import Segment

__all__ = [
    "TURN_TAKING_PARAMS_VERSION",
    "Gap",
    "Interruption",
    "Overlap",
    "Pause",
    "TalkTurn",
    "TurnTakingEvents",
    "TurnTakingParams",
    "WithinOverlap",
    "extract_events",
]

TURN_TAKING_PARAMS_VERSION = "tt-3"
"""Bumped whenever a field's meaning or an event rule changes, so stored results say which rules made them.

tt-2: an agent stop needs ``yield_silence_s`` of quiet, and a breath inside the other party's speech is
bridged. tt-3: the segments the events are built on come from the adaptive bleed rule and the sub-frame
boundaries of :mod:`convoscope.audio.vad` (``VadParams.bleed_*``, ``boundary_gap_s``, ``edge_ms``), which
moved barge-in onsets over the agent's speech, and so every stop time, by up to 60 ms."""


class TurnTakingParams(BaseModel):
    """Every threshold of the turn-taking events and metrics, with the reason for its default.

    Frozen and echoed into each metric result with ``version``, so two numbers computed under different
    rules are never silently compared.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backchannel_max_s: float = Field(
        default=1.0,
        gt=0.0,
        description=(
            "Default 1.0 s: speech of one party entirely inside the other's speech and no longer than this "
            "is a backchannel ('uh-huh', 'mm'), not an interruption. Backchannels are short; the Voice "
            "Activity Projection event definitions (Ekstedt) cap them at 1.0 s."
        ),
    )
    min_overlap_s: float = Field(
        default=0.2,
        ge=0.0,
        description=(
            "Default 0.2 s: a floor change whose overlap is shorter than this is latching or VAD boundary "
            "noise (a next speaker coming in on the last syllable), not an interruption. 0.2 s is ten 20 ms "
            "frames, well above the ~20 ms onset error of the detector, and the upper end of a micropause."
        ),
    )
    turn_merge_s: float = Field(
        default=1.0,
        ge=0.0,
        description=(
            "Default 1.0 s: one party's segments separated by a pause (mutual silence, no speech of the "
            "other party in between) shorter than this form one turn. Pauses up to about 1 s are ordinary "
            "inside a turn (the 'large pause' boundary of conversation-analysis transcription), and VAP "
            "asks for 1 s of one speaker before a shift or hold is called."
        ),
    )
    yield_window_s: float = Field(
        default=2.0,
        gt=0.0,
        description=(
            "Default 2.0 s: after a user barge-in onset, the agent must stop within this many seconds to "
            "count as having yielded; otherwise it is a missed barge-in. hotato searches 3 s; 2 s is "
            "already ten times the human gap, so a slower stop is heard as talking over the caller."
        ),
    )
    yield_silence_s: float = Field(
        default=0.35,
        gt=0.0,
        description=(
            "Default 0.35 s: the agent has stopped only when it stays silent at least this long; a shorter "
            "break is a breath or a comma pause inside continued speech. Synthetic and recorded agent "
            "speech pauses 0.20-0.25 s at commas, so the VAD's 0.2 s min_silence_s would count those as "
            "yields; hotato effectively asks for about 0.35 s of quiet too."
        ),
    )
    yield_floor_tolerance_s: float = Field(
        default=0.5,
        ge=0.0,
        description=(
            "Default 0.5 s: a stop counts as a yield only if the user is speaking within this many seconds "
            "of it, i.e. the user held the floor (hotato's +-0.5 s). An agent that stops long after the "
            "caller gave up did not yield, it outlasted them."
        ),
    )
    stop_time_max_s: float = Field(
        default=0.5,
        gt=0.0,
        description=(
            "Default 0.5 s: the median stop time after user barge-ins passes when at most this. Cekura "
            "flags stop times above 500 ms; humans stop within a few hundred ms of being cut in on."
        ),
    )
    response_gap_max_s: float = Field(
        default=2.0,
        gt=0.0,
        description=(
            "Default 2.0 s: the median response gap (p50) passes when at most this. Cekura flags latency "
            "above 2000 ms and Hamming targets p50 1.5-1.7 s; the human gap is ~0.2 s, so this is a "
            "ceiling for today's voice agents, not a goal."
        ),
    )
    response_gap_p95_max_s: float = Field(
        default=5.0,
        gt=0.0,
        description=(
            "Default 5.0 s: the p95 response gap passes when at most this (Hamming's p95 < 5 s): a tail "
            "beyond it is heard as the line having dropped."
        ),
    )
    long_silence_s: float = Field(
        default=10.0,
        gt=0.0,
        description=(
            "Default 10 s: mutual silence (a gap or a pause) longer than this is dead air. Cekura's silence "
            "threshold; callers start asking 'hello?' well before it."
        ),
    )
    unanswered_after_s: float = Field(
        default=10.0,
        gt=0.0,
        description=(
            "Default 10 s: a user turn with no agent speech within this many seconds after its end is "
            "unanswered, an infrastructure issue (Cekura's 10 s timeout). Only judged when the call lasts "
            "that long after the turn, so a caller saying goodbye and hanging up is not counted."
        ),
    )
    clipping_level: float = Field(
        default=0.95,
        gt=0.0,
        le=1.0,
        description=(
            "Default 0.95 of full scale: an agent speech sample at least this loud counts as clipped. "
            "Speech rendered with headroom peaks well below it (espeak-ng near 0.8); a saturated path "
            "sits at the top code (0.98 in μ-law) for whole runs of samples."
        ),
    )
    clipping_max_share: float = Field(
        default=0.005,
        ge=0.0,
        le=1.0,
        description=(
            "Default 0.5 %: the agent's clipping passes when at most this share of its speech samples is "
            "clipped. A hot but clean voice touches full scale on a few peaks; a saturated one on several "
            "per cent of its samples."
        ),
    )
    echo_window_s: float = Field(
        default=1.0,
        gt=0.0,
        description=(
            "Default 1.0 s: an agent stop within this many seconds of a user-channel onset during agent "
            "speech, where that user speech dies with the agent's voice (ends within yield_silence_s of "
            "the stop), is an echo self-interruption candidate: the agent yielded to its own bleed. A real "
            "barge-in keeps talking after the agent stops; echo cannot."
        ),
    )
    version: str = Field(
        default=TURN_TAKING_PARAMS_VERSION,
        description="Version of these rules; stored with every result so changed rules are not mixed up.",
    )


class Floor(StrEnum):
    """Joint state of the two channels over an interval."""

    SILENCE = "silence"
    USER = "user"
    AGENT = "agent"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Gap:
    """Mutual silence with a speaker change: ``from_role`` stopped, ``to_role`` started after it.

    ``fto_s`` (the floor-transfer offset) equals the duration and is never negative. A zero-length gap is
    an exact hand-over (latching on the frame grid).
    """

    start_s: float
    end_s: float
    from_role: Role
    to_role: Role
    prev_segment: Segment
    next_segment: Segment

    @property
    def duration_s(self) -> float:
        """Length of the gap in seconds."""
        return self.end_s - self.start_s

    @property
    def fto_s(self) -> float:
        """Floor-transfer offset: next start minus previous end, positive for a gap."""
        return self.duration_s


@dataclass(frozen=True, slots=True)
class Pause:
    """Mutual silence without a speaker change: ``role`` stops and resumes."""

    start_s: float
    end_s: float
    role: Role
    prev_segment: Segment
    next_segment: Segment

    @property
    def duration_s(self) -> float:
        """Length of the pause in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Overlap:
    """Between-speaker overlap: ``to_role`` came in while ``from_role`` spoke, and kept the floor."""

    start_s: float
    end_s: float
    from_role: Role
    to_role: Role
    prev_segment: Segment
    next_segment: Segment

    @property
    def duration_s(self) -> float:
        """Length of the overlap in seconds."""
        return self.end_s - self.start_s

    @property
    def fto_s(self) -> float:
        """Floor-transfer offset: next start minus previous end, negative (or zero) for an overlap."""
        return -self.duration_s


@dataclass(frozen=True, slots=True)
class WithinOverlap:
    """Within-speaker overlap: ``inner_role`` spoke entirely inside ``holder_role``'s speech."""

    start_s: float
    end_s: float
    holder_role: Role
    inner_role: Role
    holder_segment: Segment
    inner_segment: Segment
    is_backchannel: bool

    @property
    def duration_s(self) -> float:
        """Length of the overlap (the inner speech) in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class TalkTurn:
    """One party's turn: its segments joined across pauses shorter than ``turn_merge_s``."""

    role: Role
    start_s: float
    end_s: float
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        """Length of the turn, pauses included, in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Interruption:
    """``interrupter`` started speaking while ``interrupted`` spoke, and it was not a backchannel.

    ``floor_taken`` says whether the interrupted party stopped first (a between-speaker overlap of at
    least ``min_overlap_s``) or talked on until the interrupter gave up (a within-speaker overlap longer
    than ``backchannel_max_s``). ``overlap`` is the stretch both spoke.
    """

    interrupter: Role
    interrupted: Role
    onset_s: float
    overlap: Segment
    floor_taken: bool
    interrupter_segment: Segment
    interrupted_segment: Segment


@dataclass(frozen=True, slots=True)
class TurnTakingEvents:
    """Everything extracted from one call's two segment lists, each list in time order.

    ``talk_over`` holds every interval in which both spoke (the overlaps above plus any both-start or
    both-stop ties at the edges), so talk-over seconds never depend on how an overlap was classified.
    """

    user_segments: tuple[Segment, ...]
    agent_segments: tuple[Segment, ...]
    gaps: tuple[Gap, ...]
    pauses: tuple[Pause, ...]
    overlaps: tuple[Overlap, ...]
    within_overlaps: tuple[WithinOverlap, ...]
    interruptions: tuple[Interruption, ...]
    talk_over: tuple[Segment, ...]
    user_turns: tuple[TalkTurn, ...]
    agent_turns: tuple[TalkTurn, ...]

    def segments(self, role: Role) -> tuple[Segment, ...]:
        """The segments of ``role`` (user or agent)."""
        return self.user_segments if role is Role.USER else self.agent_segments

    def turns(self, role: Role) -> tuple[TalkTurn, ...]:
        """The turns of ``role`` (user or agent)."""
        return self.user_turns if role is Role.USER else self.agent_turns


def _clean(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """Sorted, zero-length segments dropped, overlapping or touching ones merged (continuous speech)."""
    merged: list[Segment] = []
    for segment in sorted(s for s in segments if s.end_s > s.start_s):
        if merged and segment.start_s <= merged[-1].end_s:
            last = merged.pop()
            merged.append(Segment(last.start_s, max(last.end_s, segment.end_s)))
        else:
            merged.append(segment)
    return tuple(merged)


def _bridge(own: tuple[Segment, ...], other: tuple[Segment, ...], max_break_s: float) -> tuple[Segment, ...]:
    """Join a speaker's breaks shorter than ``max_break_s`` that fall wholly inside the other's speech.

    A speaker who pauses for a breath while the other talks over them has not stopped: without this, the
    break splits one utterance into two and the resumption reads as a fresh interruption of the person
    who barged in. Breaks in mutual silence are left alone; they are pauses and are reported as such.
    """
    if len(own) < 2 or max_break_s <= 0.0:
        return own
    joined: list[Segment] = [own[0]]
    for segment in own[1:]:
        last = joined[-1]
        if segment.start_s - last.end_s < max_break_s and any(
            o.start_s <= last.end_s and o.end_s >= segment.start_s for o in other
        ):
            joined[-1] = Segment(last.start_s, segment.end_s)
        else:
            joined.append(segment)
    return tuple(joined)


@dataclass(frozen=True, slots=True)
class _Run:
    state: Floor
    start_s: float
    end_s: float


def _timeline(user: tuple[Segment, ...], agent: tuple[Segment, ...]) -> list[_Run]:
    """Maximal runs of one joint state between the first and the last boundary."""
    bounds = sorted({b for s in (*user, *agent) for b in (s.start_s, s.end_s)})
    runs: list[_Run] = []
    iu = ia = 0
    for a, b in zip(bounds, bounds[1:], strict=False):
        while iu < len(user) and user[iu].end_s <= a:
            iu += 1
        while ia < len(agent) and agent[ia].end_s <= a:
            ia += 1
        u = iu < len(user) and user[iu].start_s <= a
        g = ia < len(agent) and agent[ia].start_s <= a
        state = Floor.BOTH if u and g else Floor.USER if u else Floor.AGENT if g else Floor.SILENCE
        if runs and runs[-1].state is state:
            runs[-1] = _Run(state, runs[-1].start_s, b)
        else:
            runs.append(_Run(state, a, b))
    return runs


def _role(state: Floor) -> Role:
    return Role.USER if state is Floor.USER else Role.AGENT


def _other(role: Role) -> Role:
    return Role.AGENT if role is Role.USER else Role.USER


def _start(segment: Segment) -> float:
    return segment.start_s


def _end(segment: Segment) -> float:
    return segment.end_s


def _covering(segments: tuple[Segment, ...], start_s: float) -> Segment:
    """The segment active at ``start_s`` (the last one starting at or before it)."""
    index = bisect.bisect_right(segments, start_s, key=_start) - 1
    return segments[max(index, 0)]


def _ending_at(segments: tuple[Segment, ...], end_s: float) -> Segment:
    """The last segment ending at or before ``end_s``."""
    index = bisect.bisect_right(segments, end_s, key=_end) - 1
    return segments[max(index, 0)]


def _starting_at(segments: tuple[Segment, ...], start_s: float) -> Segment:
    """The segment active at or first starting after ``start_s``."""
    index = bisect.bisect_right(segments, start_s, key=_end)
    return segments[min(index, len(segments) - 1)]


def _merge_turns(
    role: Role, own: tuple[Segment, ...], other: tuple[Segment, ...], turn_merge_s: float
) -> tuple[TalkTurn, ...]:
    """Join ``own`` segments across pauses shorter than ``turn_merge_s`` with no ``other`` speech in them."""
    groups: list[list[Segment]] = []
    for segment in own:
        if groups:
            prev_end = groups[-1][-1].end_s
            # Other speech in (prev_end, segment.start_s): an other segment starting before our restart
            # and ending after our stop. They are sorted and disjoint, so the last such start has the
            # latest end.
            i = bisect.bisect_left(other, segment.start_s, key=_start)
            other_in_gap = i > 0 and other[i - 1].end_s > prev_end
            if segment.start_s - prev_end < turn_merge_s and not other_in_gap:
                groups[-1].append(segment)
                continue
        groups.append([segment])
    return tuple(TalkTurn(role, g[0].start_s, g[-1].end_s, tuple(g)) for g in groups)


def extract_events(
    user_segments: Sequence[Segment],
    agent_segments: Sequence[Segment],
    *,
    params: TurnTakingParams | None = None,
) -> TurnTakingEvents:
    """Classify every silence and overlap of a two-party call (Heldner & Edlund 2010).

    Consecutive single-speaker runs ("floors") X and Y are separated by silence, double talk, or nothing.
    Between X and a different Y lies exactly one speaker change, classified once: a gap if the last
    stretch before Y is silence (or X hands straight over, a zero gap), else a between-speaker overlap.
    Between two runs of the same X, silence is X's pause and double talk is the other's within-speaker
    overlap (a backchannel when short). Exact ties (both start or stop on the same frame) put any earlier
    stretch between two floors to the holder X. Double talk before the first or after the last floor is
    a within-speaker overlap inside that floor; double talk with no floor at all is only talk-over.
    """
    p = params or TurnTakingParams()
    user_clean = _clean(user_segments)
    agent_clean = _clean(agent_segments)
    user = _bridge(user_clean, agent_clean, p.yield_silence_s)
    agent = _bridge(agent_clean, user_clean, p.yield_silence_s)
    by_role = {Role.USER: user, Role.AGENT: agent}
    runs = _timeline(user, agent)

    gaps: list[Gap] = []
    pauses: list[Pause] = []
    overlaps: list[Overlap] = []
    withins: list[WithinOverlap] = []

    def within(run: _Run, holder: Role) -> None:
        inner = _other(holder)
        inner_segment = _covering(by_role[inner], run.start_s)
        withins.append(
            WithinOverlap(
                start_s=run.start_s,
                end_s=run.end_s,
                holder_role=holder,
                inner_role=inner,
                holder_segment=_covering(by_role[holder], run.start_s),
                inner_segment=inner_segment,
                is_backchannel=run.end_s - run.start_s <= p.backchannel_max_s,
            )
        )

    def pause(run: _Run, holder: Role) -> None:
        pauses.append(
            Pause(
                start_s=run.start_s,
                end_s=run.end_s,
                role=holder,
                prev_segment=_ending_at(by_role[holder], run.start_s),
                next_segment=_starting_at(by_role[holder], run.end_s),
            )
        )

    floors = [i for i, run in enumerate(runs) if run.state in (Floor.USER, Floor.AGENT)]
    if floors:
        for run in runs[: floors[0]]:
            if run.state is Floor.BOTH:
                within(run, _role(runs[floors[0]].state))
        for run in runs[floors[-1] + 1 :]:
            if run.state is Floor.BOTH:
                within(run, _role(runs[floors[-1]].state))
    for i, j in zip(floors, floors[1:], strict=False):
        x, y = _role(runs[i].state), _role(runs[j].state)
        between = runs[i + 1 : j]
        holds = between if x is y else between[:-1]
        for run in holds:
            if run.state is Floor.SILENCE:
                pause(run, x)
            else:
                within(run, x)
        if x is y:
            continue
        last = between[-1] if between else _Run(Floor.SILENCE, runs[j].start_s, runs[j].start_s)
        prev_segment = _ending_at(by_role[x], last.end_s if last.state is Floor.BOTH else last.start_s)
        next_segment = _starting_at(by_role[y], last.start_s if last.state is Floor.BOTH else last.end_s)
        if last.state is Floor.SILENCE:
            gaps.append(Gap(last.start_s, last.end_s, x, y, prev_segment, next_segment))
        else:
            overlaps.append(Overlap(last.start_s, last.end_s, x, y, prev_segment, next_segment))

    interruptions: list[Interruption] = []
    for overlap in overlaps:
        if overlap.duration_s >= p.min_overlap_s and overlap.duration_s > 0.0:
            interruptions.append(
                Interruption(
                    interrupter=overlap.to_role,
                    interrupted=overlap.from_role,
                    onset_s=overlap.start_s,
                    overlap=Segment(overlap.start_s, overlap.end_s),
                    floor_taken=True,
                    interrupter_segment=overlap.next_segment,
                    interrupted_segment=overlap.prev_segment,
                )
            )
    for w in withins:
        if not w.is_backchannel and w.duration_s >= p.min_overlap_s:
            interruptions.append(
                Interruption(
                    interrupter=w.inner_role,
                    interrupted=w.holder_role,
                    onset_s=w.start_s,
                    overlap=Segment(w.start_s, w.end_s),
                    floor_taken=False,
                    interrupter_segment=w.inner_segment,
                    interrupted_segment=w.holder_segment,
                )
            )
    interruptions.sort(key=lambda item: item.onset_s)

    return TurnTakingEvents(
        user_segments=user,
        agent_segments=agent,
        gaps=tuple(gaps),
        pauses=tuple(sorted(pauses, key=lambda item: item.start_s)),
        overlaps=tuple(overlaps),
        within_overlaps=tuple(sorted(withins, key=lambda item: item.start_s)),
        interruptions=tuple(interruptions),
        talk_over=tuple(Segment(r.start_s, r.end_s) for r in runs if r.state is Floor.BOTH),
        user_turns=_merge_turns(Role.USER, user, agent, p.turn_merge_s),
        agent_turns=_merge_turns(Role.AGENT, agent, user, p.turn_merge_s),
    )
