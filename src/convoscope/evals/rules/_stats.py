"""Small statistics shared by the timing metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...model.metric import MetricResult

__all__ = ["percentile", "stored_number"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stored_number(scores: Mapping[str, MetricResult], metric: str) -> float | None:
    """A stored result's numeric value (audio truth, typically), or None when absent or not a number."""
    result = scores.get(metric)
    if result is None or result.error is not None:
        return None
    value = result.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
