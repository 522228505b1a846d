"""The one list of metrics: classes register themselves by name, and everything else looks them up here."""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from ..errors import InputError
from .base import Metric, MetricKind

__all__ = ["UnknownMetric", "all_metrics", "default_set", "get", "register", "replace"]

_METRICS: dict[str, type[Metric[Any]]] = {}

# Modules whose import registers the built-in metrics. Listed by name so the registry stays the only
# place that knows them, and importing this module stays cheap until a lookup needs them.
_BUILTIN_MODULES = (
    "convoscope.evals.rules",
    "convoscope.evals.judges",
    "convoscope.evals.scenario",
)

M = TypeVar("M", bound=type[Metric[Any]])


class UnknownMetric(InputError):
    """A metric name that no registered metric has."""


def register(cls: M) -> M:
    """Class decorator: make a metric findable by its name.

    Registering a second class under a taken name is an error, so two metrics can never silently
    shadow each other.
    """
    existing = _METRICS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"metric {cls.name!r} is already registered by {existing.__qualname__}")
    _METRICS[cls.name] = cls
    return cls


def replace(old: type[Metric[Any]], new: M) -> M:
    """Register ``new`` in place of ``old`` under the same name (an edited custom definition).

    Only the class registered now may be replaced, so a built-in can never be swapped out by accident.
    """
    if old.name != new.name or _METRICS.get(old.name) is not old:
        raise ValueError(f"metric {new.name!r} is not registered as {old.__qualname__}")
    _METRICS[new.name] = new
    return new


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def get(name: str) -> type[Metric[Any]]:
    """The metric class registered as ``name``; an unknown name raises :class:`UnknownMetric`."""
    _load_builtins()
    try:
        return _METRICS[name]
    except KeyError:
        known = ", ".join(sorted(_METRICS)) or "none"
        raise UnknownMetric(f"unknown metric {name!r}; known metrics: {known}") from None


def all_metrics() -> dict[str, type[Metric[Any]]]:
    """Every registered metric by name, sorted."""
    _load_builtins()
    return dict(sorted(_METRICS.items()))


def default_set(judge_available: bool) -> list[type[Metric[Any]]]:
    """The metrics run for an agent nobody configured.

    Every deterministic metric, plus the judge metrics that mark themselves as general
    (``default = True``, the default) when an LLM endpoint is configured. Audio metrics are computed by
    the audio pipeline, not here.
    """
    chosen: list[type[Metric[Any]]] = []
    for cls in all_metrics().values():
        if not getattr(cls, "default", True):
            continue
        if cls.kind is MetricKind.DETERMINISTIC or (judge_available and cls.kind is MetricKind.JUDGE):
            chosen.append(cls)
    return chosen
