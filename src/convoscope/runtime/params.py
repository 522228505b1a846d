"""Parameter types that mean in the handler exactly what the OpenAPI document says they mean.

Pydantic's lax mode reads ``0``, ``"0.5"`` or ``"2025-01-31"`` as datetimes, while the document
declares ``format: date-time``: a client reading the document is told such values are invalid, and a
server that accepts them anyway (``since: 0`` as the epoch) has two contracts. ``Timestamp`` takes only
what the document promises, an RFC 3339 date-time with its UTC offset, and refuses anything else with a
422 naming the field. Python callers (the CLI building a request) may still pass a ``datetime``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

__all__ = ["RFC3339", "Timestamp"]

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
"""An RFC 3339 ``date-time``: date, time with seconds, optional fraction, and the offset."""


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and RFC3339.match(value)):
        return value
    raise ValueError("expected an RFC 3339 date-time with its offset, e.g. 2025-01-31T09:30:00Z")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A wall-clock time: an RFC 3339 string with an offset (or an aware ``datetime`` from Python)."""
