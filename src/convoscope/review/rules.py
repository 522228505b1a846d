"""Which calls people should look at: the queue rules, as parameters, and what each picks from a call.

Three rules, each a reason a verdict is worth a person's minute:

* **low score** (:class:`LowScoreRule`): a stored result that failed, or whose number is under a
  threshold given per metric. Failures are where a wrong verdict costs most (an alert, a blocked
  release), so they come first in the queue.
* **split verdict** (:class:`SplitVerdictRule`): a judge asked ``k`` times whose runs disagreed. Judges
  record this themselves (``evals.judges.base.fold_outcomes`` writes ``evidence.spread`` with the
  runs' ``passed`` and ``verdict: "review"``, and the result's ``passed`` is None), so such a result is
  found from its evidence alone; a judge run once (``k=1``) has no spread and is never split.
* **random sample** (:class:`RandomSampleRule`): N calls per agent per day, so calibration is measured
  on calls chosen without looking at their scores (kappa over failures alone over-represents the
  judge's hard cases). The choice is seeded and stable: each call's rank is a hash of the seed and its
  id, so filling the same window twice picks the same calls, and calls arriving later in a day only
  take places that are still free (the rule counts what it already queued for that agent and day).

Every threshold is a field here, never a constant in code: the API, the CLI and the UI pass them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from ..model.enums import MetricSource
from ..model.metric import MetricResult
from ..store.reviews_meta import QueueCandidate

__all__ = [
    "LOW_SCORE",
    "RANDOM_SAMPLE",
    "SPLIT_VERDICT",
    "CallScores",
    "LowScoreRule",
    "QueueRules",
    "RandomSampleRule",
    "SplitVerdictRule",
    "low_score_candidates",
    "random_sample_candidates",
    "sample_rank",
    "split_verdict_candidates",
]

SPLIT_VERDICT = "split_verdict"
LOW_SCORE = "low_score"
RANDOM_SAMPLE = "random_sample"
PRIORITY = {SPLIT_VERDICT: 0, LOW_SCORE: 1, RANDOM_SAMPLE: 2}
"""Queue order: a judge that disagreed with itself first, then failures, then the random sample."""

_STRICT = ConfigDict(extra="forbid", strict=True)
"""Rules are read strictly (no ``0`` for false, no ``"2"`` for 2), as the API's document states them."""


class LowScoreRule(BaseModel):
    """Queue a metric of a call when its result failed or its number is under the metric's threshold."""

    model_config = _STRICT

    enabled: bool = True
    failed: bool = Field(default=True, description="Queue results whose pass/fail is fail.")
    below: dict[str, float] = Field(
        default_factory=dict,
        description="Metric name → threshold: queue results whose numeric value is under it.",
    )
    metrics: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Only these metrics (empty: every metric with a result).",
    )
    judges_only: bool = Field(default=False, description="Only results of LLM judges (source judge).")


class SplitVerdictRule(BaseModel):
    """Queue a judge's result when its k runs disagreed on pass/fail or on the label."""

    model_config = _STRICT

    enabled: bool = True
    metrics: list[str] = Field(default_factory=list, max_length=200, description="Only these (empty: any).")


class RandomSampleRule(BaseModel):
    """Queue N calls per agent per (UTC) day, chosen by a seeded hash of their ids."""

    model_config = _STRICT

    enabled: bool = True
    per_agent_per_day: int = Field(default=2, ge=0, le=1000, description="Calls per agent and day.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Changes which calls are chosen.")
    metrics: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Metrics to review on a sampled call (empty: its LLM-judge results).",
    )


class QueueRules(BaseModel):
    """All rules of one fill, and how many calls it may examine."""

    model_config = _STRICT

    low_score: LowScoreRule = Field(default_factory=LowScoreRule)
    split_verdict: SplitVerdictRule = Field(default_factory=SplitVerdictRule)
    random_sample: RandomSampleRule = Field(default_factory=RandomSampleRule)
    max_calls: int = Field(
        default=20_000, ge=1, le=1_000_000, description="Most calls one fill examines (newest first)."
    )


@dataclass(frozen=True)
class CallScores:
    """What the rules read of one call: who answered, when, and its stored results."""

    call_id: str
    agent_id: str | None
    started_at: datetime
    scores: Sequence[MetricResult]


def _chosen(metric: str, names: Sequence[str]) -> bool:
    return not names or metric in names


def _candidate(call: CallScores, metric: str, rule: str, reason: str) -> QueueCandidate:
    return QueueCandidate(
        call_id=call.call_id,
        metric=metric,
        rule=rule,
        reason=reason,
        priority=PRIORITY[rule],
        agent_id=call.agent_id,
        call_started_at=call.started_at,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def low_score_candidates(rule: LowScoreRule, call: CallScores) -> list[QueueCandidate]:
    """The call's results that failed, or fell under their metric's threshold."""
    if not rule.enabled:
        return []
    found: list[QueueCandidate] = []
    for score in call.scores:
        if score.error is not None or not _chosen(score.metric, rule.metrics):
            continue
        if rule.judges_only and score.source is not MetricSource.JUDGE:
            continue
        threshold = rule.below.get(score.metric)
        number = _number(score.value)
        if rule.failed and score.passed is False:
            found.append(_candidate(call, score.metric, LOW_SCORE, f"failed (value {score.value!r})"))
        elif threshold is not None and number is not None and number < threshold:
            found.append(_candidate(call, score.metric, LOW_SCORE, f"value {number:g} < {threshold:g}"))
    return found


def _split(score: MetricResult) -> str | None:
    """Why a result's judge runs disagree, from the spread the judge recorded; None when they agree."""
    spread = score.evidence.get("spread")
    if not isinstance(spread, Mapping):
        return None
    verdicts = spread.get("passed")
    if spread.get("verdict") != "review" and not (
        isinstance(verdicts, list) and len({str(v) for v in verdicts}) > 1
    ):
        return None
    k = spread.get("k")
    shown = verdicts if isinstance(verdicts, list) else spread.get("values")
    return f"{k} judge runs disagree: {shown}"


def split_verdict_candidates(rule: SplitVerdictRule, call: CallScores) -> list[QueueCandidate]:
    """The call's judge results whose runs disagreed."""
    if not rule.enabled:
        return []
    found: list[QueueCandidate] = []
    for score in call.scores:
        if score.error is not None or not _chosen(score.metric, rule.metrics):
            continue
        why = _split(score)
        if why is not None:
            found.append(_candidate(call, score.metric, SPLIT_VERDICT, why))
    return found


def sample_rank(seed: int, call_id: str) -> bytes:
    """A call's place in the random sample: the SHA-256 of the seed and its id (stable across runs)."""
    return hashlib.sha256(f"{seed}:{call_id}".encode()).digest()


def _sample_metrics(rule: RandomSampleRule, call: CallScores) -> list[str]:
    if rule.metrics:
        have = {score.metric for score in call.scores if score.error is None}
        return [metric for metric in rule.metrics if metric in have]
    return sorted({s.metric for s in call.scores if s.source is MetricSource.JUDGE and s.error is None})


def random_sample_candidates(
    rule: RandomSampleRule,
    calls: Iterable[CallScores],
    taken: Mapping[tuple[str | None, date], set[str]],
) -> list[QueueCandidate]:
    """Up to ``per_agent_per_day`` calls per agent and UTC day, lowest :func:`sample_rank` first.

    ``taken`` holds, per (agent, day), the calls this rule already queued; they count against the day's
    places (and are picked again, harmlessly, if they rank first). A call with nothing to review under
    the rule's metrics is not sampled, so it takes no place.
    """
    if not rule.enabled or rule.per_agent_per_day == 0:
        return []
    groups: dict[tuple[str | None, date], list[tuple[CallScores, list[str]]]] = {}
    for call in calls:
        metrics = _sample_metrics(rule, call)
        if metrics:
            groups.setdefault((call.agent_id, call.started_at.date()), []).append((call, metrics))
    found: list[QueueCandidate] = []
    for key, members in groups.items():
        already = taken.get(key, set())
        places = rule.per_agent_per_day - len(already)
        ranked = sorted(members, key=lambda member: sample_rank(rule.seed, member[0].call_id))
        for call, metrics in ranked:
            if places <= 0:
                break
            if call.call_id in already:
                continue
            places -= 1
            day = key[1].isoformat()
            reason = f"random sample of agent {call.agent_id or '(none)'} on {day} (seed {rule.seed})"
            found.extend(_candidate(call, metric, RANDOM_SAMPLE, reason) for metric in metrics)
    return found
