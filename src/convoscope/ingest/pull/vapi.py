"""Vapi: ``GET /call`` (``VapiAI/server-sdk-python`` ``src/vapi/calls/raw_client.py``, ``list``).

The list takes ``limit`` (default 100) and ``createdAtGt``/``createdAtLt`` bounds and answers a JSON array
of full call objects (the shape of ``GET /call/{id}``, which the Vapi adapter maps). It has no page token
and lists newest first, so paging walks backwards in time: each next page asks for calls created before
the oldest one seen. The cursor is that ``createdAt``.
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
        if since is not None:
            params["createdAtGe"] = since.isoformat()
        if cursor is not None:
            params["createdAtLt"] = cursor
        calls = request_json(self._http, "GET", "/call", params=params, what="Vapi GET /call")
        if not isinstance(calls, list):
            calls = []
        created = [c for c in (_created(call) for call in calls) if c is not None]
        oldest = min(created, default=None)
        more = len(calls) >= self._page_size and oldest is not None
        return Page(
            events=[c for c in calls if isinstance(c, dict)],
            cursor=oldest.isoformat() if more and oldest is not None else None,
            newest=max(created, default=None),
        )


SPEC = PullerSpec(
    base_url="https://api.vapi.ai",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    factory=VapiPuller,
)
