"""Vapi: ``GET /call`` (``VapiAI/server-sdk-python`` ``src/vapi/calls/raw_client.py``, ``list``).

The list takes ``limit`` (default 100) and ``createdAt{Gt,Ge,Lt,Le}`` bounds and answers a JSON array of
full call objects (the shape of ``GET /call/{id}``, which the Vapi adapter maps). It has no page token, so
paging moves a time bound past the calls seen. Vapi lists newest first, and the next page then asks for
calls created before the oldest seen (cursor ``lt:<createdAt>``); the SDK does not state the order, so a
page found oldest first is followed the other way (``gt:<newest createdAt>``) rather than cut short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from ...errors import PayloadError
from ..payload_fields import Warnings, iso_datetime
from .base import Page, PullerSpec, request_json

__all__ = ["SPEC", "VapiPuller"]


def _created(call: Any) -> datetime | None:
    text = call.get("createdAt") if isinstance(call, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return iso_datetime(text, "createdAt", Warnings())
    except PayloadError:
        return None


class VapiPuller:
    """Pages of Vapi call objects, newest first."""

    source = "vapi"

    def __init__(self, http: httpx.Client, *, page_size: int = 100) -> None:
        self._http = http
        self._page_size = page_size

    def page(self, *, since: datetime | None, cursor: str | None) -> Page:
        params: dict[str, Any] = {"limit": self._page_size}
        direction, _, bound = (cursor or "").partition(":")
        if direction == "gt" and bound:
            params["createdAtGt"] = bound
        else:
            if since is not None:
                params["createdAtGe"] = since.isoformat()
            if direction == "lt" and bound:
                params["createdAtLt"] = bound
        calls = request_json(self._http, "GET", "/call", params=params, what="Vapi GET /call")
        calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        created = [c for c in (_created(call) for call in calls) if c is not None]
        next_cursor = None
        if len(calls) >= self._page_size and created:
            ascending = direction == "gt" or (direction != "lt" and created[0] < created[-1])
            next_cursor = f"gt:{max(created).isoformat()}" if ascending else f"lt:{min(created).isoformat()}"
        return Page(events=calls, cursor=next_cursor, newest=max(created, default=None))


SPEC = PullerSpec(
    base_url="https://api.vapi.ai",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    factory=VapiPuller,
)
