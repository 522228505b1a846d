"""Typed reads from an untrusted vendor JSON document, each failure a PayloadError naming its path.

Vendor payloads are parsed JSON of any shape. The adapters read them through these helpers so a wrong
type anywhere becomes a 4xx that says which field (``data.transcript[3].time_in_call_secs``), never a
``KeyError`` or ``TypeError`` that would surface as a 500. Optional reads return ``None`` for an absent or
``null`` field and reject only a value of the wrong type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from ..errors import PayloadError, field_error
from ..model import Call, LatencyStats

__all__ = [
    "Warnings",
    "after",
    "build_call",
    "epoch_datetime",
    "field_error",
    "iso_datetime",
    "latency_stats",
    "merge_present",
    "opt_bool",
    "opt_float",
    "opt_int",
    "opt_list",
    "opt_obj",
    "opt_str",
    "received_start",
    "req_obj",
    "req_str",
    "turn_ends",
]

T = TypeVar("T")

Warnings = list[str]
"""Recoverable oddities an adapter collects while reading; they end up in ``Assembled.warnings``."""


def req_obj(value: Any, where: str) -> dict[str, Any]:
    """``value`` as a JSON object, else PayloadError at ``where``."""
    if not isinstance(value, dict):
        raise field_error(where, f"expected an object, got {type(value).__name__}")
    return value


def opt_obj(doc: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    """``doc[key]`` as an object, ``None`` when absent or null."""
    value = doc.get(key)
    return None if value is None else req_obj(value, f"{where}.{key}")


def _opt_typed(doc: Mapping[str, Any], key: str, where: str, kind: type[T], expected: str) -> T | None:
    """``doc[key]`` when it is a ``kind``, ``None`` when absent or null, else PayloadError saying
    ``expected`` and what came instead."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise field_error(f"{where}.{key}", f"expected {expected}, got {type(value).__name__}")
    return value


def opt_list(doc: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """``doc[key]`` as a list, empty when absent or null."""
    value = _opt_typed(doc, key, where, list, "a list")
    return [] if value is None else value


def opt_str(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    """``doc[key]`` as a string, ``None`` when absent or null."""
    return _opt_typed(doc, key, where, str, "a string")


def req_str(doc: Mapping[str, Any], key: str, where: str) -> str:
    """``doc[key]`` as a non-empty string; the message names the missing field."""
    value = opt_str(doc, key, where)
    if not value:
        raise field_error(f"{where}.{key}", "missing (a non-empty string is required)")
    return value


def opt_float(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    """``doc[key]`` as a finite number (booleans refused), ``None`` when absent or null."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise field_error(f"{where}.{key}", f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise field_error(f"{where}.{key}", "expected a finite number")
    return number


def opt_int(doc: Mapping[str, Any], key: str, where: str) -> int | None:
    """``doc[key]`` as an integer (a float with no fraction is accepted), ``None`` when absent or null."""
    number = opt_float(doc, key, where)
    if number is None:
        return None
    if not number.is_integer():
        raise field_error(f"{where}.{key}", "expected an integer")
    return int(number)


def opt_bool(doc: Mapping[str, Any], key: str, where: str) -> bool | None:
    """``doc[key]`` as a boolean, ``None`` when absent or null."""
    return _opt_typed(doc, key, where, bool, "true or false")


def merge_present(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursing into objects; a null in a later event never erases a value.

    Vendors re-send a call's object with each lifecycle event, often with fields they no longer fill.
    """
    merged = dict(base)
    for key, value in update.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_present(merged[key], value)
        else:
            merged[key] = value
    return merged


# Epoch values past this are not plausible call times (year 9999 is where datetime ends).
_MAX_EPOCH_S = 253_402_300_799


def epoch_datetime(seconds: float, where: str) -> datetime:
    """A UTC datetime from epoch seconds, PayloadError when out of any plausible range."""
    if not 0 <= seconds <= _MAX_EPOCH_S:
        raise field_error(where, f"epoch time {seconds} is out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


def after(start: datetime, seconds: float, where: str) -> datetime:
    """``start`` plus ``seconds``; a sum past the calendar's end is a PayloadError, not an OverflowError."""
    try:
        return start + timedelta(seconds=seconds)
    except OverflowError:
        raise field_error(where, f"{seconds} s after {start.isoformat()} is out of range") from None


def iso_datetime(value: str, where: str, warnings: Warnings) -> datetime:
    """An ISO 8601 time as UTC; a time without an offset is read as UTC and a warning says so."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise field_error(where, f"not an ISO 8601 time: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        warnings.append(f"{where}: time {value!r} has no UTC offset; read as UTC")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


RECEIVED_START_NOTE = "the receive time of the call's first event stands in"
"""Part of the warning a call carries while its start is the receive time; a later event with the real
start time replaces both (the call is re-assembled from all its events)."""


def received_start(received_at: datetime | None, where: str, warnings: Warnings) -> datetime:
    """The start of a call none of whose events says when it started: when its first event was received.

    A missing start time is no reason to refuse a vendor's event (Vapi's minimal end-of-call report and
    Bland's webhooks carry none); the receive time is the best time known, and the warning says so. Only
    without a receive time (an adapter called directly) is it a PayloadError naming ``where``.
    """
    if received_at is None:
        raise field_error(where, "missing, and no receive time to stand in for it")
    warnings.append(f"{where}: missing; {RECEIVED_START_NOTE} ({received_at.isoformat()})")
    return received_at.astimezone(UTC)


def turn_ends(
    starts: Sequence[float], call_end_s: float | None, where: str, warnings: Warnings
) -> list[float]:
    """End times for turns that only carry a start: each ends where the next one starts.

    The last turn ends at the call's end when that is known and not before it, else where it starts. A
    start earlier than the one before it is an out-of-order timestamp: that turn gets a zero-length span
    and a warning names it, instead of a negative duration.
    """
    ends: list[float] = []
    for i, start in enumerate(starts):
        if i + 1 < len(starts):
            following = starts[i + 1]
            if following < start:
                warnings.append(
                    f"{where}[{i + 1}]: starts at {following} s, before the previous turn ({start} s)"
                )
            ends.append(max(following, start))
        else:
            ends.append(max(call_end_s, start) if call_end_s is not None else start)
    return ends


def latency_stats(values_s: Sequence[float]) -> LatencyStats:
    """A vendor's per-turn latencies summarised the way vendors report theirs (nearest-rank percentiles)."""
    ordered = sorted(values_s)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return LatencyStats(
        p50_s=rank(0.5),
        p90_s=rank(0.9),
        p95_s=rank(0.95),
        p99_s=rank(0.99),
        min_s=ordered[0],
        max_s=ordered[-1],
        count=len(ordered),
        values_s=list(values_s),
    )


def build_call(document: dict[str, Any], where: str) -> Call:
    """Validate an assembled call; a model violation becomes a PayloadError listing each field."""
    try:
        return Call.model_validate(document)
    except ValidationError as exc:
        errors: list[dict[str, object]] = [
            {"loc": ".".join(str(p) for p in err["loc"]) or where, "msg": err["msg"]} for err in exc.errors()
        ]
        head = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
        raise PayloadError(f"{where}: the call built from it is invalid: {head}", errors) from None
