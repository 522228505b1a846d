"""Stable call ids.

A call's id is a UUIDv7 whose time part is the call's start and whose random part is derived from its
identity ``(project_id, source, external_id)``. So ids sort by time like any UUIDv7, and a replayed or
re-ingested call gets the same id without a read-before-write: the outbox can replay after a crash and
the store still holds one call.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

__all__ = ["call_id_for"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def call_id_for(project_id: str, source: str, external_id: str, started_at: datetime) -> str:
    """The id of the call with this identity that started at ``started_at``."""
    # Integer arithmetic: a float timestamp can round 1 ms down and change the id.
    millis = ((started_at - _EPOCH) // timedelta(milliseconds=1)) & ((1 << 48) - 1)
    digest = hashlib.sha256(f"{project_id}\x1f{source}\x1f{external_id}".encode()).digest()
    tail = int.from_bytes(digest[:10], "big")
    rand_a = tail >> 68 & 0xFFF
    rand_b = tail & ((1 << 62) - 1)
    value = millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
