"""A metric's value, stored with everything needed to trust it: version, parameters and evidence."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from .enums import MetricSource

__all__ = ["MetricResult"]


def _now() -> datetime:
    return datetime.now(UTC)


class MetricResult(BaseModel):
    """The result of one metric on one call.

    ``value`` is a number, a bool or a label; ``passed`` is None where no threshold applies. ``params``
    echoes every parameter and threshold used, and ``evidence`` holds what produced the value (segments,
    frame ranges, quotes, judge reasoning), so any number can be checked by a person. A metric that could
    not be computed says why in ``error`` (its value is then None) rather than disappearing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    metric: str = Field(min_length=1)
    version: str = "1"
    value: float | bool | str | None
    passed: bool | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    evidence: dict[str, JsonValue] = Field(default_factory=dict)
    source: MetricSource
    error: str | None = None
    """Why the metric could not produce a value (a judge reply that was not JSON, an unreadable file)."""
    evaluated_at: AwareDatetime = Field(default_factory=_now)
