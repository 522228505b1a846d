"""Parse canonical call JSON (one call, a list, or ``{"calls": [...]}``) with bounded sizes.

The same parser serves the HTTP endpoint, the outbox worker and ``convoscope ingest``, so a body that
gets a 202 is exactly a body the worker can store: validation happens before the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from ..errors import PayloadError, PayloadTooLarge
from ..model import Call

__all__ = ["CallLimits", "iter_jsonl", "parse_calls", "validate_calls"]


@dataclass(frozen=True, slots=True)
class CallLimits:
    """Bounds on one request and on each call in it (see ``config.Settings``)."""

    max_batch_calls: int = 1000
    max_call_bytes: int = 5 * 1024 * 1024
    max_turns_per_call: int = 5000
    max_tool_calls_per_call: int = 2000


def _loc(prefix: tuple[str | int, ...], loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in (*prefix, *loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else part)
    return "".join(parts) or "(body)"


def _errors(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[dict[str, object]]:
    return [
        {"loc": _loc(prefix, tuple(err["loc"])), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]


def _summary(errors: list[dict[str, object]]) -> str:
    head = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"invalid call: {head}{more}"


def _items(document: Any) -> tuple[list[Any], tuple[str | int, ...]]:
    """The call objects of a document and the path prefix their errors are reported under."""
    if isinstance(document, list):
        return document, ()
    if isinstance(document, dict) and "calls" in document and "source" not in document:
        calls = document["calls"]
        if not isinstance(calls, list):
            raise PayloadError(
                "calls: expected a list of calls", [{"loc": "calls", "msg": "expected a list"}]
            )
        return calls, ("calls",)
    if isinstance(document, dict):
        return [document], ()
    raise PayloadError('body: expected a call object, a list of calls or {"calls": [...]}')


def validate_calls(document: Any, limits: CallLimits, *, check_bytes: bool = True) -> list[Call]:
    """Validate an already-decoded document; every error names its field path."""
    items, prefix = _items(document)
    if not items:
        raise PayloadError("no calls in body", [{"loc": _loc(prefix, ()), "msg": "empty list"}])
    if len(items) > limits.max_batch_calls:
        raise PayloadTooLarge(
            f"{len(items)} calls in one request; at most {limits.max_batch_calls} are accepted"
        )
    calls: list[Call] = []
    errors: list[dict[str, object]] = []
    for position, item in enumerate(items):
        where = (*prefix, position) if len(items) > 1 or prefix else ()
        if check_bytes and len(orjson.dumps(item)) > limits.max_call_bytes:
            raise PayloadTooLarge(f"{_loc(where, ())}: call is larger than {limits.max_call_bytes} bytes")
        if isinstance(item, dict):
            for key, bound in (
                ("turns", limits.max_turns_per_call),
                ("tool_calls", limits.max_tool_calls_per_call),
            ):
                value = item.get(key)
                if isinstance(value, list) and len(value) > bound:
                    errors.append(
                        {
                            "loc": _loc(where, (key,)),
                            "msg": f"{len(value)} items; at most {bound}",
                            "type": "too_long",
                        }
                    )
        try:
            calls.append(Call.model_validate(item))
        except ValidationError as exc:
            errors.extend(_errors(exc, where))
    if errors:
        raise PayloadError(_summary(errors), errors)
    return calls


def parse_calls(body: bytes, limits: CallLimits) -> list[Call]:
    """Decode and validate a JSON body of calls."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc}", [{"loc": "(body)", "msg": str(exc)}]) from None
    # Small bodies cannot hold an oversized call, so skip the per-call re-encoding on the hot path.
    return validate_calls(document, limits, check_bytes=len(body) > limits.max_call_bytes)


def iter_jsonl(text: str, *, name: str) -> Iterator[Any]:
    """Decoded documents of a JSON-lines text; a bad line is reported with its file and line number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"{name}:{number}: malformed JSON: {exc}") from None
