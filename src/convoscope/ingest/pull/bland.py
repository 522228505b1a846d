"""Bland: ``GET /v1/calls`` then ``GET /v1/calls/{call_id}`` (https://docs.bland.ai/api-v1/get/calls).

The list pages by index range (``from`` inclusive, ``to`` exclusive, ``limit``) and sorts by creation
time (``ascending=true`` here, so new calls only ever append and a saved index stays valid); it answers
``{count, calls[]}`` with summaries. Calls created before ``since`` are skipped by their ``created_at``;
the others are fetched in full (the call-details object, the same fields as the post-call webhook). The
cursor is the next index. Auth is the API key in the ``authorization`` header, as Bland documents it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ...errors import PayloadError
from ..payload_fields import Warnings, iso_datetime
from .base import Page, PullerSpec, request_json

__all__ = ["SPEC", "BlandPuller"]


def _created(summary: dict[str, Any]) -> datetime | None:
    text = summary.get("created_at")
    if not isinstance(text, str):
        return None
    try:
        return iso_datetime(text, "created_at", Warnings())
    except PayloadError:
        return None


class BlandPuller:
    """Pages of Bland calls, oldest first, each fetched in full."""

    source = "bland"

    def __init__(self, http: httpx.Client, *, page_size: int = 100) -> None:
        self._http = http
        self._page_size = page_size

    def page(self, *, since: datetime | None, cursor: str | None) -> Page:
        start = int(cursor) if cursor and cursor.isascii() and cursor.isdigit() else 0
        params = {"ascending": "true", "from": start, "to": start + self._page_size, "limit": self._page_size}
        listing = request_json(self._http, "GET", "/v1/calls", params=params, what="Bland GET /v1/calls")
        listing = listing if isinstance(listing, dict) else {}
        summaries = [s for s in listing.get("calls") or [] if isinstance(s, dict)]
        events: list[Any] = []
        newest: datetime | None = None
        skipped = 0
        for summary in summaries:
            created = _created(summary)
            call_id = summary.get("call_id")
            if (since is not None and created is not None and created < since) or not isinstance(
                call_id, str
            ):
                skipped += 1
                continue
            events.append(
                request_json(
                    self._http,
                    "GET",
                    f"/v1/calls/{quote(call_id, safe='')}",
                    what=f"Bland GET call {call_id}",
                )
            )
            if created is not None and (newest is None or created > newest):
                newest = created
        more = len(summaries) >= self._page_size
        count = listing.get("count")
        return Page(
            events=events,
            cursor=str(start + len(summaries)) if more else None,
            newest=newest,
            skipped=skipped,
            total=count if isinstance(count, int) and not isinstance(count, bool) else None,
        )


SPEC = PullerSpec(
    base_url="https://api.bland.ai",
    auth_headers=lambda key: {"authorization": key},
    factory=BlandPuller,
)
