"""A/B: two runs of one suite, compared metric by metric with the uncertainty their sizes allow.

Two pass rates measured on 20 conversations each can differ by 15 points by chance alone, so a bare
difference says nothing. Each metric's pass rate gets its Wilson score interval, and the difference
(candidate − baseline) gets Newcombe's hybrid score interval (method 10 of Newcombe 1998, built from
the two Wilson intervals), which keeps its coverage near the nominal level for small samples and rates
near 0 or 1, where the normal approximation fails. The verdict follows the interval: *better* when it
lies entirely above 0, *worse* when entirely below, otherwise *no detectable difference* at these sizes
(with the interval's half width, the smallest difference the runs could have shown).

The overall verdict of a conversation (passed among completed) and the share of errored conversations
are compared the same way, so a version that breaks its connection is not read as one that fails less.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

__all__ = [
    "Comparison",
    "MetricComparison",
    "Proportion",
    "compare_runs",
    "newcombe_interval",
    "wilson_interval",
]

Verdict = Literal["better", "worse", "no detectable difference"]
OVERALL = "(conversation passed)"
ERRORED = "(conversation errored)"


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when nothing was observed."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must be within 0..n ({n})")
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    baseline: tuple[int, int], candidate: tuple[int, int], *, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p_candidate − p_baseline``; each argument is (successes, n)."""
    (s1, n1), (s2, n2) = baseline, candidate
    p1 = s1 / n1 if n1 else 0.0
    p2 = s2 / n2 if n2 else 0.0
    l1, u1 = wilson_interval(s1, n1, confidence=confidence)
    l2, u2 = wilson_interval(s2, n2, confidence=confidence)
    delta = p2 - p1
    lower = delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return max(-1.0, lower), min(1.0, upper)


@dataclass(frozen=True)
class Proportion:
    """Passed of scored (conversations where the metric gave no verdict are not counted)."""

    passed: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.n if self.n else None


@dataclass(frozen=True)
class MetricComparison:
    """One metric across the two runs."""

    metric: str
    baseline: Proportion
    candidate: Proportion
    delta: float | None
    ci_low: float
    ci_high: float
    verdict: Verdict
    higher_is_better: bool = True

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["baseline"]["rate"] = self.baseline.rate
        out["candidate"]["rate"] = self.candidate.rate
        return out


@dataclass(frozen=True)
class Comparison:
    """The side-by-side of two runs."""

    baseline_run: str
    candidate_run: str
    baseline_version: str
    candidate_version: str
    confidence: float
    metrics: list[MetricComparison]

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.verdict == "worse"]

    def as_json(self) -> dict[str, Any]:
        return {
            "baseline_run": self.baseline_run,
            "candidate_run": self.candidate_run,
            "baseline_version": self.baseline_version,
            "candidate_version": self.candidate_version,
            "confidence": self.confidence,
            "metrics": [m.as_json() for m in self.metrics],
            "regressions": [m.metric for m in self.regressions],
        }


def _verdict(low: float, high: float, higher_is_better: bool) -> Verdict:
    if low > 0.0:
        return "better" if higher_is_better else "worse"
    if high < 0.0:
        return "worse" if higher_is_better else "better"
    return "no detectable difference"


def _tally(conversations: Iterable[Mapping[str, Any]]) -> dict[str, Proportion]:
    counts: dict[str, list[int]] = {}

    def add(name: str, passed: bool | None) -> None:
        if passed is None:
            return
        slot = counts.setdefault(name, [0, 0])
        slot[0] += int(passed)
        slot[1] += 1

    for conversation in conversations:
        verdict = conversation.get("verdict")
        add(ERRORED, verdict == "errored")
        if verdict == "errored":
            continue
        add(OVERALL, verdict == "passed")
        scores = conversation.get("scores") or {}
        for metric, passed in scores.items():
            add(str(metric), passed if isinstance(passed, bool) else None)
    return {name: Proportion(passed, n) for name, (passed, n) in counts.items()}


def _compared(name: str, base: Proportion, cand: Proportion, confidence: float) -> MetricComparison:
    higher_is_better = name != ERRORED
    low, high = newcombe_interval((base.passed, base.n), (cand.passed, cand.n), confidence=confidence)
    delta = None if base.rate is None or cand.rate is None else cand.rate - base.rate
    verdict = _verdict(low, high, higher_is_better) if base.n and cand.n else "no detectable difference"
    return MetricComparison(name, base, cand, delta, low, high, verdict, higher_is_better)


def compare_runs(
    baseline: Mapping[str, Any], candidate: Mapping[str, Any], *, confidence: float = 0.95
) -> Comparison:
    """Compare two run results (``RunReport.to_json()``) of the same suite.

    Runs of different suites are refused: their pass rates measure different things.
    """
    if baseline.get("suite") != candidate.get("suite"):
        suites = f"{baseline.get('suite')!r} and {candidate.get('suite')!r}"
        raise ValueError(f"runs of different suites cannot be compared: {suites}")
    base = _tally(baseline.get("conversations", []))
    cand = _tally(candidate.get("conversations", []))
    names = sorted(set(base) | set(cand), key=lambda n: (n not in (OVERALL, ERRORED), n))
    empty = Proportion(0, 0)
    metrics = [_compared(n, base.get(n, empty), cand.get(n, empty), confidence) for n in names]
    return Comparison(
        baseline_run=str(baseline.get("run_id")),
        candidate_run=str(candidate.get("run_id")),
        baseline_version=str(baseline.get("agent_version", "")),
        candidate_version=str(candidate.get("agent_version", "")),
        confidence=confidence,
        metrics=metrics,
    )
