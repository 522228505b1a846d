"""Calibration from the review queue: how far each metric's verdicts agree with people's labels.

For every metric, each label that gives pass/fail is paired with the verdict (``passed``) the metric's
stored result had when the person looked (kept with the label), and Cohen's kappa is computed over
those pairs: agreement corrected for the agreement two raters would reach by chance from how often each
says pass, which raw accuracy hides when nearly every call passes. The kappa is the same function
``convoscope calibrate`` uses (:func:`..evals.calibration.cohen_kappa`), so both paths give one number.

A metric nobody labelled, or whose labels cannot be compared (only numbers, or a result without a
pass/fail), is *uncalibrated*; one whose pairs all carry one label on both sides has a kappa that is not
defined (chance agreement is total) and is shown as such, never as 1.0. Labels given as numbers are
compared with the result's number by their mean absolute difference.

The agreement is also written to the project's settings (``calibration.<metric>``, the shape of
:class:`..evals.calibration.Agreement` with ``source: review``), from where the evaluators attach it to
every new result of the metric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import JsonValue

from ..evals.calibration import Agreement, cohen_kappa
from ..store.reviews_meta import StoredLabel

__all__ = ["MetricCalibration", "Status", "agreement_settings", "calibrate_labels"]

Status = Literal["calibrated", "uncalibrated", "undefined"]
"""``undefined``: compared pairs exist but all on one label, so kappa has no value."""

VERDICTS = ("pass", "fail")


@dataclass(frozen=True)
class MetricCalibration:
    """One metric's agreement with people."""

    metric: str
    kind: str | None
    """judge, deterministic or audio (None for a metric the server does not know)."""
    status: Status
    labels: int
    """Labels of this metric (any reviewer, any kind of label)."""
    calls: int
    """Distinct calls labelled."""
    compared: int
    """Labels with pass/fail whose stored result had a pass/fail too: what kappa is computed over."""
    agreement: float | None
    """Share of compared pairs where the person and the metric said the same."""
    kappa: float | None
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    """person's verdict → metric's verdict → count."""
    value_pairs: int = 0
    mean_abs_diff: float | None = None
    """Mean |person's number − result's number| over labels given as numbers."""
    reviewers: int = 0
    version: str | None = None
    """The metric version of the newest compared result."""
    last_labelled_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the API and the CLI."""
        return {
            "metric": self.metric,
            "kind": self.kind,
            "status": self.status,
            "labels": self.labels,
            "calls": self.calls,
            "compared": self.compared,
            "agreement": None if self.agreement is None else round(self.agreement, 6),
            "kappa": None if self.kappa is None else round(self.kappa, 6),
            "confusion": self.confusion,
            "value_pairs": self.value_pairs,
            "mean_abs_diff": None if self.mean_abs_diff is None else round(self.mean_abs_diff, 6),
            "reviewers": self.reviewers,
            "version": self.version,
            "last_labelled_at": None if self.last_labelled_at is None else self.last_labelled_at.isoformat(),
        }


def _judge_verdict(label: StoredLabel) -> str | None:
    passed = label.judge.get("passed")
    return None if not isinstance(passed, bool) else ("pass" if passed else "fail")


def _judge_number(label: StoredLabel) -> float | None:
    value = label.judge.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _one(metric: str, kind: str | None, labels: Sequence[StoredLabel]) -> MetricCalibration:
    pairs: list[tuple[str, str]] = []
    version: str | None = None
    diffs: list[float] = []
    for label in labels:
        judged = _judge_verdict(label)
        if label.verdict in VERDICTS and judged is not None:
            pairs.append((label.verdict, judged))
            version = str(label.judge.get("version")) if label.judge.get("version") is not None else version
        number = _judge_number(label)
        if label.value is not None and number is not None:
            diffs.append(abs(label.value - number))
    kappa = cohen_kappa(pairs)
    status: Status = "uncalibrated" if not pairs else ("undefined" if kappa is None else "calibrated")
    counts = Counter(pairs)
    seen = sorted({v for pair in pairs for v in pair})
    confusion = {h: {j: counts[(h, j)] for j in seen} for h in seen}
    return MetricCalibration(
        metric=metric,
        kind=kind,
        status=status,
        labels=len(labels),
        calls=len({label.call_id for label in labels}),
        compared=len(pairs),
        agreement=sum(1 for h, j in pairs if h == j) / len(pairs) if pairs else None,
        kappa=kappa,
        confusion=confusion,
        value_pairs=len(diffs),
        mean_abs_diff=sum(diffs) / len(diffs) if diffs else None,
        reviewers=len({label.reviewer_id for label in labels}),
        version=version,
        last_labelled_at=max((label.updated_at or label.created_at for label in labels), default=None),
    )


def calibrate_labels(
    labels: Iterable[StoredLabel], kinds: dict[str, str], *, always: Iterable[str] = ()
) -> list[MetricCalibration]:
    """Each labelled metric's calibration, plus an *uncalibrated* row for each metric of ``always``
    (the judges, so an unlabelled judge is visible as such); by metric name."""
    by_metric: dict[str, list[StoredLabel]] = {}
    for label in labels:
        by_metric.setdefault(label.metric, []).append(label)
    for metric in always:
        by_metric.setdefault(metric, [])
    return [_one(metric, kinds.get(metric), by_metric[metric]) for metric in sorted(by_metric)]


def agreement_settings(calibration: MetricCalibration, evaluated_at: datetime) -> dict[str, JsonValue]:
    """The calibration as kept in the project settings (the ``convoscope calibrate`` shape, so results
    carry one format whichever path measured it), with ``source: review``."""
    agreement = Agreement(
        metric=calibration.metric,
        version=calibration.version or "",
        compared_on="passed",
        n=calibration.compared,
        errors=0,
        accuracy=calibration.agreement,
        kappa=calibration.kappa,
        labels=sorted(calibration.confusion),
        confusion=calibration.confusion,
        evaluated_at=evaluated_at.isoformat(),
    )
    return {**agreement.as_json(), "source": "review", "status": calibration.status}
