"""Alert rules: what to watch, over which calls, and when it counts as going wrong.

A rule is data, kept in the metadata database or written in YAML beside simulation suites, so it is
validated strictly at creation: every number is bounded, every name has a pattern, and a mistake is
refused with the field named (``threshold.value``, ``window_s``) instead of failing later inside the
engine, where nobody reads the error.

The five kinds share the common fields (:class:`_RuleCommon`) and each adds one parameter block named
after the kind, so a rule is one of a closed set of shapes (a discriminated union on ``kind``) and the
OpenAPI document describes exactly the bodies the server accepts:

* ``immediate`` - a call fails metric M (``immediate.metric``): fires right after the evaluation batch
  that scored it, without a query;
* ``threshold`` - an aggregate (avg, a percentile, count) of the target over the last ``window_s``
  compared with a value;
* ``trend`` - the EWMA of per-bucket values against the rolling baseline mean +- k standard deviations
  (the formula is in :mod:`.evaluate`);
* ``spike`` - the target over the window is ``factor`` times what it was over the baseline window before;
* ``new_failure`` - a metric (or a failure reason) fails for the scope that never failed for it before.

The target is a stored metric's value (``metric:NAME``), its pass rate (``passed:NAME``: 1 passed, 0
failed, so ``avg`` is the pass rate) or a call or turn column of ``store.schema.SERIES_FIELDS``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from ..errors import PayloadError
from ..model import CallSource
from ..model.bounds import integral
from ..store.schema import METRIC_PREFIX, PASSED_PREFIX, SERIES_FIELDS

__all__ = [
    "RULE_KINDS",
    "TARGET_PATTERN",
    "AlertRule",
    "ImmediateParams",
    "ImmediateRule",
    "NewFailureParams",
    "NewFailureRule",
    "RuleSpec",
    "Scope",
    "SpikeParams",
    "SpikeRule",
    "ThresholdParams",
    "ThresholdRule",
    "TrendParams",
    "TrendRule",
    "parse_rule",
    "rule_problems",
]

RULE_KINDS = ("immediate", "threshold", "trend", "new_failure", "spike")
"""The kinds of rule; each is also the name of the rule's parameter block."""

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_MAX_NAME = 200
_MAX_LABEL = 256

Slug = Annotated[str, Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
"""A rule or notifier id: letters, digits, ``.``, ``_``, ``-``; usable in a URL as it is."""

MetricName = Annotated[str, Field(min_length=1, max_length=_MAX_NAME, pattern=r"^[^\s]+$")]
"""A metric's name as the evaluators store it (no whitespace)."""

TARGET_PATTERN = (
    rf"^(?:(?:{re.escape(METRIC_PREFIX)}|{re.escape(PASSED_PREFIX)})[^\s]{{1,{_MAX_NAME}}}"
    rf"|{'|'.join(re.escape(name) for name in SERIES_FIELDS)})$"
)
"""``metric:NAME``, ``passed:NAME`` or a column of ``SERIES_FIELDS``; the schema states it, so a target
the store cannot chart is refused at creation."""

Target = Annotated[str, Field(min_length=1, max_length=_MAX_NAME + 8, pattern=TARGET_PATTERN)]

SourceName = Literal[
    "vapi", "retell", "elevenlabs", "bland", "webex", "pipecat", "livekit", "generic", "simulation"
]
assert set(get_args(SourceName)) == {source.value for source in CallSource}, "SourceName lags CallSource"

Seconds = Annotated[float, Field(allow_inf_nan=False)]

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class Scope(BaseModel):
    """Which calls a rule watches; every field is optional and they combine with AND (none: all calls)."""

    model_config = _STRICT

    agent_id: Annotated[str, Field(min_length=1, max_length=_MAX_LABEL)] | None = None
    """Only calls of this agent (``calls.agent_id``)."""
    agent_version: Annotated[str, Field(min_length=1, max_length=_MAX_LABEL)] | None = None
    """Only calls of this agent version (``calls.agent_version``), to watch a rollout."""
    source: SourceName | None = None
    """Only calls from this source (``vapi``, ``simulation``...)."""
    tag: Annotated[str, Field(min_length=1, max_length=_MAX_LABEL)] | None = None
    """Only calls carrying this tag (``has(calls.tags, tag)``)."""


class ThresholdParams(BaseModel):
    """``aggregate(target over the window) op value`` breaches, e.g. p95 of ``e2e_s`` > 1.5."""

    model_config = _STRICT

    aggregate: Literal["avg", "p50", "p90", "p95", "p99", "count"] = "avg"
    """How the window's values are summarised (``count``: how many values; percentiles are exact)."""
    op: Literal[">", ">=", "<", "<="]
    """The comparison that means "breached" (``<`` for a pass rate falling under a floor)."""
    value: Annotated[float, Field(ge=-1e12, le=1e12, allow_inf_nan=False)]
    """The threshold the aggregate is compared with."""


class TrendParams(BaseModel):
    """The EWMA of bucket values leaves the rolling baseline's mean +- k standard deviations."""

    model_config = _STRICT

    alpha: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.3
    """EWMA weight of the newest bucket (1: only the newest counts; small: slow and smooth)."""
    k: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 3.0
    """How many baseline standard deviations away the EWMA must be to breach."""
    baseline_buckets: Annotated[int, Field(ge=2, le=1000), Strict(), BeforeValidator(integral)] = 24
    """How many buckets before the recent ones form the baseline (mean and standard deviation)."""
    bucket: Literal["hour", "day"] = "hour"
    """The bucket width (UTC hours or days)."""
    aggregate: Literal["avg", "p50", "p90", "p95", "p99", "count"] = "avg"
    """Each bucket's value (``count``: how many values the bucket holds)."""
    direction: Literal["up", "down", "both"] = "both"
    """Which departures breach: above the band, below it, or either."""


class SpikeParams(BaseModel):
    """The window's aggregate is at least ``factor`` times the baseline window's (a count is compared as
    a rate: the baseline's count scaled to the window's length)."""

    model_config = _STRICT

    factor: Annotated[float, Field(gt=1, le=1e6, allow_inf_nan=False)]
    """How many times the baseline the window must reach to breach."""
    baseline_window_s: Annotated[float, Field(ge=60, le=90 * 86_400, allow_inf_nan=False)] = 86_400
    """Length of the baseline, which ends where the rule's window starts."""
    aggregate: Literal["avg", "p50", "p90", "p95", "p99", "count"] = "count"
    """What is compared (``count`` of values: a burst of calls, of failures of a ``passed:`` target...)."""


class NewFailureParams(BaseModel):
    """A failure never seen before for the scope: a metric failing for the first time, or a new reason."""

    model_config = _STRICT

    what: Literal["metric", "reason"] = "metric"
    """``metric``: a metric fails that never failed before; ``reason``: a failure reason never seen before
    (the score's ``error``, else its evidence's ``reason``, else its label)."""
    metric: MetricName | None = None
    """Only failures of this metric (None: any metric)."""


class ImmediateParams(BaseModel):
    """A call fails one metric: fires right after the evaluation batch that scored it."""

    model_config = _STRICT

    metric: MetricName
    """The metric whose failure (``passed`` false) is an alert at once."""


class _RuleCommon(BaseModel):
    """What every rule has, whatever its kind."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=_MAX_NAME)]
    """What a person reads first in a notification."""
    scope: Scope = Scope()
    """The calls the rule watches."""
    window_s: Annotated[float, Field(ge=60, le=30 * 86_400, allow_inf_nan=False)] = 3600.0
    """Length of the window the rule looks at, ending now (trend: how far back the recent buckets go)."""
    min_samples: Annotated[int, Field(ge=1, le=1_000_000), Strict(), BeforeValidator(integral)] = 1
    """No verdict (neither firing nor resolving) on fewer values than this in the window."""
    cooldown_s: Annotated[float, Field(ge=0, le=7 * 86_400, allow_inf_nan=False)] = 900.0
    """After a resolve, no new firing for this long (a flapping metric notifies once, not every minute)."""
    severity: Literal["info", "warning", "critical"] = "warning"
    """How urgent the alert is."""
    notifiers: Annotated[list[Slug], Field(max_length=16)] = []
    """Names of the notifiers that deliver the rule's events (none: events are only kept and listed)."""
    enabled: bool = True
    """A disabled rule is kept but never evaluated."""


class ThresholdRule(_RuleCommon):
    """An aggregate of the target over the window compared with a fixed value."""

    kind: Literal["threshold"]
    target: Target
    """What is watched: ``metric:NAME``, ``passed:NAME`` or a call or turn column."""
    threshold: ThresholdParams


class TrendRule(_RuleCommon):
    """The target's EWMA leaves its rolling baseline band."""

    kind: Literal["trend"]
    target: Target
    """What is watched: ``metric:NAME``, ``passed:NAME`` or a call or turn column."""
    trend: TrendParams = TrendParams()


class SpikeRule(_RuleCommon):
    """The target over the window jumps to a multiple of its baseline."""

    kind: Literal["spike"]
    target: Target
    """What is watched: ``metric:NAME``, ``passed:NAME`` or a call or turn column."""
    spike: SpikeParams


class NewFailureRule(_RuleCommon):
    """A failure (metric or reason) never seen before for the scope."""

    kind: Literal["new_failure"]
    new_failure: NewFailureParams = NewFailureParams()


class ImmediateRule(_RuleCommon):
    """A call fails a metric."""

    kind: Literal["immediate"]
    immediate: ImmediateParams


RuleSpec = Annotated[
    ThresholdRule | TrendRule | SpikeRule | NewFailureRule | ImmediateRule, Field(discriminator="kind")
]
"""A rule as written (without its id): one of the five shapes, told apart by ``kind``."""

_SPEC: TypeAdapter[Any] = TypeAdapter(RuleSpec)


class AlertRule(BaseModel):
    """A rule with its id (the key it is kept under, and named by in events and the API)."""

    model_config = ConfigDict(frozen=True)

    id: Slug
    spec: RuleSpec

    @property
    def kind(self) -> str:
        """The rule's kind."""
        return self.spec.kind


def rule_problems(exc: ValidationError, *, kind: object = None) -> list[dict[str, Any]]:
    """Pydantic's errors with each field path as written: the union's tag (the kind), which pydantic
    puts first, is dropped, so ``window_s`` reads ``window_s``, not ``threshold.window_s``."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if loc and isinstance(kind, str) and loc[0] == kind and kind in RULE_KINDS:
            loc = loc[1:]
        problems.append({"loc": loc, "msg": error["msg"], "type": error["type"]})
    return problems


def parse_rule(rule_id: str, data: Any) -> AlertRule:
    """A rule from plain data (JSON or YAML), refused with ``PayloadError`` naming every bad field.

    ``kind`` may be left out when exactly one parameter block is given (YAML uses ``kind`` for the
    document's own kind, ``alert_rule``): the block's name is the rule's kind.
    """
    if isinstance(data, dict) and "kind" not in data:
        blocks = [name for name in RULE_KINDS if name in data]
        if len(blocks) == 1:
            data = {**data, "kind": blocks[0]}
    try:
        TypeAdapter(Slug).validate_python(rule_id, strict=True)
    except ValidationError:
        message = f"rule id {rule_id!r} must match {SLUG_PATTERN} (at most 128 characters)"
        raise PayloadError(message, [{"loc": ["id"], "msg": message}]) from None
    try:
        spec = _SPEC.validate_python(data)
    except ValidationError as exc:
        kind = data.get("kind") if isinstance(data, dict) else None
        problems = rule_problems(exc, kind=kind)
        summary = "; ".join(f"{'.'.join(map(str, p['loc'])) or '(rule)'}: {p['msg']}" for p in problems)
        raise PayloadError(f"invalid alert rule {rule_id!r}: {summary}", problems) from None
    return AlertRule(id=rule_id, spec=spec)
