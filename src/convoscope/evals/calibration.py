"""Calibration: how often a judge metric agrees with people, measured on calls they labelled.

A judge's verdicts are only as useful as their agreement with a person's. Calibration runs a metric on
human-labelled calls and reports accuracy, Cohen's kappa (agreement corrected for chance, which
accuracy alone hides when one label dominates) and the confusion matrix. The latest agreement is kept
in the project's settings under ``("calibration", metric)`` and attached to every result of that metric
as evidence, so whoever reads a verdict also sees how far to trust it.

Labels file: JSON lines, JSON or YAML, one entry per call: ``{"call_id": "...", "label": "pass"}`` for a
stored call, or ``{"call": {...canonical call...}, "label": "fail"}`` for one carried inline.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import JsonValue, ValidationError

from ..errors import InputError
from ..model.call import Call
from ..model.metric import MetricResult
from .base import EvalContext, Metric
from .runner import evaluate_calls

__all__ = [
    "SETTINGS_KEY",
    "Agreement",
    "CompareOn",
    "LabelledCall",
    "attach_calibration",
    "calibrate",
    "cohen_kappa",
    "compare",
    "judge_label",
    "normalise_label",
    "read_labels",
]

SETTINGS_KEY = "calibration"
"""The project-settings key under which each metric's latest agreement is stored."""

ERROR_LABEL = "error"
"""The judge label of a result that carries an error; such pairs are counted but not compared."""

CompareOn = Literal["auto", "value", "passed"]
"""Compare human labels with the result's value, its pass/fail, or whichever the labels look like."""

_PASS_WORDS = {"pass", "passed", "true", "yes", "1", "good"}
_FAIL_WORDS = {"fail", "failed", "false", "no", "0", "bad"}


@dataclass(frozen=True)
class LabelledCall:
    """One labelled entry: a stored call's id or an inline call, and the person's label."""

    label: str
    call_id: str | None = None
    call: Call | None = None


def normalise_label(value: Any) -> str:
    """A comparable label: booleans and yes/no words become pass/fail, whole numbers lose their ``.0``."""
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    if text in _PASS_WORDS:
        return "pass"
    if text in _FAIL_WORDS:
        return "fail"
    return text


def judge_label(result: MetricResult, on: Literal["value", "passed"]) -> str:
    """The label a result stands for: its value, or pass / fail / review from ``passed``."""
    if result.error is not None or (result.value is None and on == "value"):
        return ERROR_LABEL
    if on == "passed":
        return "review" if result.passed is None else normalise_label(result.passed)
    return normalise_label(result.value)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (human, judge) label pairs; None when chance agreement is total (one label only).

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement expected
    from each rater's label frequencies.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for human, judge in pairs if human == judge) / n
    humans = Counter(human for human, _ in pairs)
    judges = Counter(judge for _, judge in pairs)
    expected = sum(humans[label] * judges[label] for label in humans) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class Agreement:
    """Agreement of one metric with human labels."""

    metric: str
    version: str
    compared_on: Literal["value", "passed"]
    n: int
    errors: int
    accuracy: float | None
    kappa: float | None
    labels: list[str]
    confusion: dict[str, dict[str, int]]
    """human label → judge label → count, over the compared pairs."""
    evaluated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    labels_file: str | None = None
    model: str | None = None

    def as_json(self) -> dict[str, JsonValue]:
        """The agreement as stored in the project settings and shown in evidence."""
        return {
            "metric": self.metric,
            "version": self.version,
            "compared_on": self.compared_on,
            "n": self.n,
            "errors": self.errors,
            "accuracy": None if self.accuracy is None else round(self.accuracy, 6),
            "kappa": None if self.kappa is None else round(self.kappa, 6),
            "labels": list(self.labels),
            "confusion": {human: dict(row) for human, row in self.confusion.items()},
            "evaluated_at": self.evaluated_at,
            "labels_file": self.labels_file,
            "model": self.model,
        }


def compare(
    metric: str,
    version: str,
    human: Sequence[str],
    results: Sequence[MetricResult],
    *,
    on: CompareOn = "auto",
) -> Agreement:
    """The agreement between human labels and the metric's results on the same calls, in order.

    With ``on="auto"`` a labels set made only of pass/fail words is compared with ``passed``, anything
    else with ``value``. Results with an error are counted in ``errors`` and left out of the numbers.
    """
    if len(human) != len(results):
        raise ValueError("one result per human label is needed")
    labels = [normalise_label(h) for h in human]
    if on == "auto":
        on = "passed" if set(labels) <= {"pass", "fail"} else "value"
    judged = [judge_label(result, on) for result in results]
    pairs = [(h, j) for h, j in zip(labels, judged, strict=True) if j != ERROR_LABEL]
    everything = sorted({*labels, *(j for _, j in pairs)})
    confusion = {h: {j: 0 for j in everything} for h in everything}
    for h, j in pairs:
        confusion[h][j] += 1
    accuracy = sum(1 for h, j in pairs if h == j) / len(pairs) if pairs else None
    return Agreement(
        metric=metric,
        version=version,
        compared_on=on,
        n=len(pairs),
        errors=len(judged) - len(pairs),
        accuracy=accuracy,
        kappa=cohen_kappa(pairs),
        labels=everything,
        confusion=confusion,
    )


# ----- labels files


def _entries(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        document = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not valid JSON lines, JSON or YAML: {exc}") from None
    if isinstance(document, Mapping) and "labels" in document:
        document = document["labels"]
    if not isinstance(document, list):
        raise InputError(f"{path}: expected a list of labelled calls")
    return document


def read_labels(path: Path) -> list[LabelledCall]:
    """The labelled calls of a file; a bad entry is an error naming the file and the entry."""
    labelled: list[LabelledCall] = []
    for number, entry in enumerate(_entries(path), 1):
        where = f"{path} entry {number}"
        if not isinstance(entry, Mapping) or entry.get("label") is None:
            raise InputError(f"{where}: needs a label and a call_id or call")
        label = normalise_label(entry["label"])
        if isinstance(entry.get("call"), Mapping):
            try:
                call = Call.model_validate(entry["call"])
            except ValidationError as exc:
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise InputError(f"{where}: call is invalid at {loc}: {first['msg']}") from None
            labelled.append(LabelledCall(label=label, call=call, call_id=call.id))
        elif isinstance(entry.get("call_id"), str) and entry["call_id"]:
            labelled.append(LabelledCall(label=label, call_id=entry["call_id"]))
        else:
            raise InputError(f"{where}: needs a call_id (a stored call) or a call (inline)")
    if not labelled:
        raise InputError(f"{path}: no labelled calls")
    return labelled


# ----- running and storing


def calibrate(
    metric: Metric[Any],
    items: Iterable[tuple[Call, str]],
    context_for: Callable[[Call], EvalContext],
    *,
    on: CompareOn = "auto",
    max_workers: int = 8,
    progress: Callable[[int], None] | None = None,
) -> tuple[Agreement, list[MetricResult]]:
    """Run ``metric`` on each labelled call and measure its agreement with the labels.

    Calls are evaluated concurrently (the judge's own bound still caps requests in flight); one that
    fails counts as an error, never stops the run. ``progress`` is told of each finished call.
    """
    listed = list(items)
    work = ((call, [metric], context_for(call)) for call, _ in listed)
    # One metric for every call means every call takes the same path, so results come back in order.
    ordered: list[MetricResult] = []
    for done, (_, results) in enumerate(evaluate_calls(work, max_workers=max_workers), 1):
        ordered.append(results[0])
        if progress is not None:
            progress(done)
    agreement = compare(metric.name, metric.version, [label for _, label in listed], ordered, on=on)
    return agreement, ordered


def attach_calibration(
    results: Iterable[MetricResult], project_settings: Mapping[str, Any]
) -> list[MetricResult]:
    """``results`` with the stored agreement of their metric in ``evidence["calibration"]``.

    Applied wherever results are produced for a project, so every result of a calibrated metric says
    how well that metric agreed with people; results of uncalibrated metrics pass through unchanged.
    """
    stored = project_settings.get(SETTINGS_KEY)
    calibrations: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    attached: list[MetricResult] = []
    for result in results:
        agreement = calibrations.get(result.metric)
        if isinstance(agreement, Mapping):
            evidence = {**result.evidence, "calibration": dict(agreement)}
            result = result.model_copy(update={"evidence": evidence})
        attached.append(result)
    return attached
