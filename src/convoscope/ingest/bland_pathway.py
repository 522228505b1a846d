"""Bland pathway events → tool calls, each invocation linked to its outcome.

Schema: https://docs.bland.ai/tutorials/pathway-call-events, the ``?v=2`` event timeline of
``GET /v1/pathway_calls/{call_id}`` (https://docs.bland.ai/api-v1/get/pathway_calls). Every event has
``sequence`` (the ordering key: "always sort by sequence, not created_at"), ``event_type``, ``node_id``,
``operation_id``, ``payload`` and ``created_at``. A side effect of the call (a webhook, a tool, a transfer,
an SMS...) starts with a ``<operation>.invoke`` event; its outcome is an ``operation.result`` or
``operation.error`` event whose ``operation_id`` is the invoke's ``sequence``, which pairs them even when
two run at once. Bland documents this envelope but not each operation's payload, so the invoke payload
becomes the arguments and the outcome payload the result, both whole.

The ``pathway_logs`` of Bland's call object and webhook have no documented shape; only entries in this
event shape are read, anything else stays in the stored raw payload alone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .payload_fields import Warnings, iso_datetime, opt_int, opt_str

__all__ = ["pathway_tool_calls"]

INVOKE_SUFFIX = ".invoke"
RESULT = "operation.result"
ERROR = "operation.error"
TOOL_ID_PREFIX = "pathway-"


def _offset_s(event: dict[str, Any], where: str, started_at: datetime, warnings: Warnings) -> float | None:
    """Seconds from the call's start to the event, ``None`` when it has no ``created_at``."""
    created = opt_str(event, "created_at", where)
    if created is None:
        return None
    offset = (iso_datetime(created, f"{where}.created_at", warnings) - started_at).total_seconds()
    if offset < 0:
        warnings.append(f"{where}.created_at: {-offset:.3f} s before the call started; set to 0")
        return 0.0
    return offset


def _events(entries: Sequence[Any], where: str, warnings: Warnings) -> list[tuple[int, str, dict[str, Any]]]:
    """The entries in the event shape, as ``(sequence, path, event)`` in ``sequence`` order."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str):
            continue
        path = f"{where}[{i}]"
        sequence = opt_int(raw, "sequence", path)
        if sequence is None:
            warnings.append(f"{path}: event without a sequence; not mapped")
            continue
        events.append((sequence, path, raw))
    events.sort(key=lambda item: item[0])
    return events


def _turn_at(turn_starts: Sequence[float], at_s: float | None) -> int | None:
    """The turn under way at ``at_s``: the latest to start at or before it (``None`` before the first)."""
    if at_s is None:
        return None
    ordered = sorted((start, index) for index, start in enumerate(turn_starts))
    position = bisect_right([start for start, _ in ordered], at_s)
    return ordered[position - 1][1] if position else None


def _name(operation: str, node: str | None, payload: Any) -> str:
    """The payload's own ``name`` when it carries one, else the operation and the node it ran on."""
    named = payload.get("name") if isinstance(payload, dict) else None
    if isinstance(named, str) and named:
        return named
    return f"{operation}:{node}" if node else operation


def pathway_tool_calls(
    entries: Sequence[Any],
    *,
    where: str,
    started_at: datetime,
    turn_starts: Sequence[float],
    warnings: Warnings,
) -> list[dict[str, Any]]:
    """Tool-call fields for every ``*.invoke`` event, its outcome attached.

    ``success`` is false once any ``operation.error`` answers the invocation, true for a result alone,
    unknown when nothing answered. An outcome whose ``operation_id`` names no invoke is a warning.
    """
    calls: dict[int, dict[str, Any]] = {}
    for sequence, path, event in _events(entries, where, warnings):
        kind: str = event["event_type"]
        at_s = _offset_s(event, path, started_at, warnings)
        payload = event.get("payload")
        if kind.endswith(INVOKE_SUFFIX):
            calls[sequence] = {
                "id": f"{TOOL_ID_PREFIX}{sequence}",
                "name": _name(kind.removesuffix(INVOKE_SUFFIX), opt_str(event, "node_id", path), payload),
                "arguments": payload,
                "start_s": at_s,
                "turn_index": _turn_at(turn_starts, at_s),
            }
        elif kind in (RESULT, ERROR):
            operation_id = opt_int(event, "operation_id", path)
            call = calls.get(operation_id) if operation_id is not None else None
            if call is None:
                warnings.append(f"{path}: {kind} for operation {operation_id}, which has no invoke event")
                continue
            call["result"] = payload
            call["success"] = kind == RESULT and call.get("success") is not False
            start_s = call["start_s"]
            if at_s is not None and start_s is not None and at_s < start_s:
                warnings.append(f"{path}: answers operation {operation_id} before it was invoked")
                at_s = start_s
            call["end_s"] = at_s
    return list(calls.values())
