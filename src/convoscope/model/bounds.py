"""What the store can hold, stated once, so the edge refuses what the store would refuse later.

A value accepted with a 202 and refused by the store's insert is the worst failure an ingest path can
have: the client was told the call is safe, and the worker cannot store it. So every bounded field of the
canonical model takes its bound from here, and each bound follows the column or encoder it ends in:

* ``UINT32_MAX``: turn indexes and tool-call turn indexes are ``UInt32`` columns.
* ``MIN_TIME`` .. ``MAX_TIME``: ClickHouse's documented ``DateTime64`` range; date functions (the series
  buckets, the time filters) are only defined inside it.
* ``MAX_JSON_DEPTH``: free-form JSON (metadata, tool arguments, span attributes) is written as JSON text,
  and the encoder refuses nesting past 255 levels counted from the row, so the model keeps well below.
* ``MAX_SHORT_TEXT``: identifiers, names and labels (agent ids, tool names, tags, currencies, ...).
  ``external_id`` keeps its own, smaller bound (512), because it is part of the sorting key. Long text
  (turn text, words, tool results) is bounded by the call's size limit (``max_call_bytes``).
* ``MAX_URL_TEXT``: recording links (a presigned link carries its signature in the query).
* ``MAX_TAGS``: tags per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, JsonValue, Strict

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SHORT_TEXT",
    "MAX_TAGS",
    "MAX_TIME",
    "MAX_URL_TEXT",
    "MIN_TIME",
    "UINT32_MAX",
    "BoundedJson",
    "Flag",
    "Integer",
    "JsonObject",
    "Number",
    "ShortText",
    "check_json_depth",
    "check_time",
    "integral",
    "json_depth_exceeds",
]

UINT32_MAX = 2**32 - 1
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2299, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
MAX_JSON_DEPTH = 64
MAX_SHORT_TEXT = 1024
MAX_TAGS = 256
MAX_URL_TEXT = 16_384


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` containers deep (iterative: no recursion limit).

    Runs on every span's attributes at the receiver, so scalars are skipped without the (slow) abstract
    ``Mapping`` check: only containers are ever pushed.
    """
    if not isinstance(value, dict | list | tuple | Mapping):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict | Mapping) else item
        stack.extend(
            (child, depth + 1)
            for child in children
            if type(child) not in _SCALARS and isinstance(child, dict | list | tuple | Mapping)
        )
    return False


_SCALARS = frozenset({str, int, float, bool, type(None)})


def check_json_depth(value: Any) -> Any:
    """``value`` unchanged, or ValueError when it nests deeper than ``MAX_JSON_DEPTH``."""
    if json_depth_exceeds(value, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def check_time(value: datetime | None) -> datetime | None:
    """``value`` unchanged, or ValueError when it is outside the store's time range."""
    if value is not None and not MIN_TIME <= value <= MAX_TIME:
        raise ValueError(f"must be between {MIN_TIME:%Y-%m-%d} and {MAX_TIME:%Y-%m-%d} (the store's range)")
    return value


BoundedJson = Annotated[JsonValue, AfterValidator(check_json_depth)]
"""Any JSON value nested at most ``MAX_JSON_DEPTH`` deep."""

JsonObject = Annotated[dict[str, JsonValue], AfterValidator(check_json_depth)]
"""A JSON object nested at most ``MAX_JSON_DEPTH`` deep."""

ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]
"""An identifier, name or label."""


Number = Annotated[float, Strict()]
"""A JSON number: an integer or a float, never a boolean or a numeric string (the schema says number)."""

Integer = Annotated[int, Strict()]
"""A JSON integer, never a boolean, a numeric string or a float (``3.0``)."""


def integral(value: object) -> object:
    """A JSON number with no fraction as the integer it is (``3.0`` is 3 to a JSON Schema reader, which
    has one number type); anything else is left for the strict integer check to refuse.

    Use it as ``Annotated[int, Field(ge=..., le=...), Strict(), BeforeValidator(integral)]``, bounds
    first: bounds written after a validator reach the JSON Schema as unknown ``ge``/``le`` keys instead of
    ``minimum``/``maximum``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Flag = Annotated[bool, Strict()]
"""A JSON boolean, never ``1``, ``"true"`` or ``"yes"``."""
