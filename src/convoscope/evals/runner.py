"""Runs metrics on calls: one metric failing never stops the others, and judges run concurrently.

Deterministic metrics take microseconds, so a call made only of them is evaluated inline; judge metrics
block on HTTP, so calls that have any are spread over a bounded thread pool whose size caps the
number of requests in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from ..errors import ConvoscopeError
from ..model.call import Call
from ..model.enums import MetricSource
from ..model.metric import MetricResult
from . import registry
from .base import AgentProfile, EvalContext, Metric, MetricKind

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "EvalItem",
    "describe_error",
    "evaluate_call",
    "evaluate_calls",
    "resolve_metrics",
]

DEFAULT_MAX_WORKERS = 8
"""Calls evaluated at once when judge metrics are present (each may hold one HTTP request open)."""

EvalItem = tuple[Call, Sequence[Metric[Any]], EvalContext]


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a result's ``error``: our own errors by message, others with their type."""
    if isinstance(exc, ConvoscopeError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


class _Unavailable(Metric[Any]):
    """Stands in for a metric that could not be built (unknown name, bad parameters).

    It yields one result under the requested name carrying the reason in ``error``, so a
    misconfigured metric shows up next to the others instead of failing the whole evaluation.
    """

    name = "unavailable"
    version = "0"
    kind = MetricKind.DETERMINISTIC
    description = "A configured metric that could not be built."

    def __init__(self, requested: str, reason: str) -> None:
        super().__init__()
        self.requested = requested
        self.reason = reason

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        return MetricResult(
            call_id=call.id or call.external_id,
            metric=self.requested,
            value=None,
            source=MetricSource.TRANSCRIPT,
            error=self.reason,
        )


def resolve_metrics(
    profile: AgentProfile,
    *,
    judge_available: bool,
    only: Sequence[str] | None = None,
    local: Mapping[str, type[Metric[Any]] | str] | None = None,
) -> list[Metric[Any]]:
    """The metric instances to run for an agent.

    The agent's configured metrics with their overrides, or the default set when it configured none;
    ``only`` narrows to the named metrics (``convoscope eval --metric``), taking overrides from the
    profile where it has them. ``local`` holds the project's own (custom) metrics by name, which win
    over the registry; a string there is why that definition was refused. An unknown name, a refused
    definition or invalid parameters give a stand-in whose result carries the error.
    """
    local = local or {}
    chosen = bool(only) or bool(profile.metrics)
    if only:
        names: list[str] = list(dict.fromkeys(only))
    elif profile.metrics:
        names = list(profile.metrics)
    else:
        names = [cls.name for cls in registry.default_set(judge_available)]
    built: list[Metric[Any]] = []
    for name in names:
        overrides: Mapping[str, Any] = profile.metrics.get(name, {})
        found = local.get(name)
        if isinstance(found, str):
            built.append(_Unavailable(name, found))
            continue
        try:
            built.append((found or registry.get(name)).from_overrides(overrides))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(params)'}: {err['msg']}" for err in exc.errors()
            )
            built.append(_Unavailable(name, f"invalid parameters for metric {name!r}: {problems}"))
        except ConvoscopeError as exc:
            built.append(_Unavailable(name, describe_error(exc)))
    for metric in built:
        metric.chosen = chosen
    return built


def evaluate_call(call: Call, metrics: Iterable[Metric[Any]], context: EvalContext) -> list[MetricResult]:
    """Every metric's result on one call, in the order given, for the metrics that apply to it (a
    voice-only default metric is skipped on a chat, :meth:`Metric.applies_to`).

    A metric that raises yields a result with ``value=None`` and the reason in ``error``.
    """
    results: list[MetricResult] = []
    for metric in metrics:
        if not metric.applies_to(call):
            continue
        try:
            results.append(metric.evaluate(call, context))
        except Exception as exc:  # any failure is recorded on that metric's result
            results.append(metric.result(call, value=None, error=describe_error(exc)))
    return results


def _needs_pool(metrics: Sequence[Metric[Any]]) -> bool:
    return any(metric.kind is MetricKind.JUDGE for metric in metrics)


def evaluate_calls(
    items: Iterable[EvalItem], *, max_workers: int = DEFAULT_MAX_WORKERS
) -> Iterator[tuple[Call, list[MetricResult]]]:
    """Evaluate many calls, yielding ``(call, results)`` as each finishes.

    Calls with only deterministic metrics are evaluated inline; calls with judge metrics go to a pool
    of ``max_workers`` threads, with at most ``2 * max_workers`` submitted ahead so a long iterator is
    never materialised. Inline calls come out at once, pooled calls in the order submitted.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    window = 2 * max_workers
    pending: deque[tuple[Call, Future[list[MetricResult]]]] = deque()
    pool: ThreadPoolExecutor | None = None
    try:
        for call, metrics, context in items:
            if max_workers == 1 or not _needs_pool(metrics):
                yield call, evaluate_call(call, metrics, context)
                continue
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="convoscope-eval")
            pending.append((call, pool.submit(evaluate_call, call, metrics, context)))
            while len(pending) >= window:
                done_call, future = pending.popleft()
                yield done_call, future.result()
        while pending:
            done_call, future = pending.popleft()
            yield done_call, future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
