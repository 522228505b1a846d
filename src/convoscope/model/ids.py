"""Stable call ids.

A call's id is a UUIDv7 whose time part is the call's start and whose random part is derived from its
identity ``(project_id, source, external_id)``. So ids sort by time like any UUIDv7, and a replayed or
re-ingested call gets the same id without a read-before-write: the outbox can replay after a crash and
the store still holds one call.

A call keeps the id it was given (:func:`stored_call_id`): an id whose random part is its identity's is
kept whatever its time part says, so a call whose start time is corrected later keeps its id, and with it
its jobs and scores. Vendor calls rely on this: their id is taken from the start their *first* event gave,
which may be a stand-in (the receive time) that a later event replaces (``server/vendor_ingest.py``). The
time part of such an id is then the call's first known start, not its final one.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

__all__ = ["call_id_for", "is_id_of", "stored_call_id"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RAND_A = 0xFFF
_RAND_B = (1 << 62) - 1
_NOT_TIME = (0xF << 76) | (_RAND_A << 64) | (0b11 << 62) | _RAND_B
"""Every bit of the 128 but the 48-bit time: version, rand_a, variant, rand_b."""


def _identity_bits(project_id: str, source: str, external_id: str) -> int:
    digest = hashlib.sha256(f"{project_id}\x1f{source}\x1f{external_id}".encode()).digest()
    tail = int.from_bytes(digest[:10], "big")
    return 0x7 << 76 | (tail >> 68 & _RAND_A) << 64 | 0b10 << 62 | (tail & _RAND_B)


def call_id_for(project_id: str, source: str, external_id: str, started_at: datetime) -> str:
    """The id of the call with this identity that started at ``started_at``."""
    # Integer arithmetic: a float timestamp can round 1 ms down and change the id.
    millis = ((started_at - _EPOCH) // timedelta(milliseconds=1)) & ((1 << 48) - 1)
    return str(uuid.UUID(int=millis << 80 | _identity_bits(project_id, source, external_id)))


def is_id_of(call_id: str | None, project_id: str, source: str, external_id: str) -> bool:
    """Whether ``call_id`` is an id :func:`call_id_for` gives this identity, at any start time."""
    if not call_id:
        return False
    try:
        value = uuid.UUID(call_id).int
    except ValueError:
        return False
    return value & _NOT_TIME == _identity_bits(project_id, source, external_id)


def stored_call_id(
    project_id: str, source: str, external_id: str, started_at: datetime, given: str | None
) -> str:
    """The id a call is stored under: ``given`` if it is an id of this identity, else one from the start.

    Any other ``given`` id (another project's, a sender's own) is not kept.
    """
    if is_id_of(given, project_id, source, external_id):
        assert given is not None
        return str(uuid.UUID(given))
    return call_id_for(project_id, source, external_id, started_at)
