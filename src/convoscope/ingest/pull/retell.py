"""Retell: ``POST /v2/list-calls`` (``RetellAI/retell-python-sdk`` ``src/retell/types/call_list_params.py``).

The body takes ``filter_criteria.start_timestamp.lower_threshold`` (epoch ms), ``sort_order``, ``limit``
and ``pagination_key`` (a call id, exclusive: the next page starts after it); the answer is a JSON array
of call objects. Pages go oldest first; the cursor is the last call id. Each call becomes the webhook
``{event, call}`` envelope: ``call_analyzed`` once Retell has analysed it, else ``call_ended``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from .base import Page, PullerSpec, request_json

__all__ = ["SPEC", "RetellPuller"]

_MS = 1000.0


def _event(call: dict[str, Any]) -> dict[str, Any]:
    return {"event": "call_analyzed" if call.get("call_analysis") else "call_ended", "call": call}


def _started(call: dict[str, Any]) -> datetime | None:
    value = call.get("start_timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**53:
        return None
    return datetime.fromtimestamp(value / _MS, tz=UTC)


class RetellPuller:
    """Pages of Retell calls, oldest first."""

    source = "retell"

    def __init__(self, http: httpx.Client, *, page_size: int = 1000) -> None:
        self._http = http
        self._page_size = page_size

    def page(self, *, since: datetime | None, cursor: str | None) -> Page:
        body: dict[str, Any] = {"sort_order": "ascending", "limit": self._page_size}
        if since is not None:
            body["filter_criteria"] = {"start_timestamp": {"lower_threshold": int(since.timestamp() * _MS)}}
        if cursor is not None:
            body["pagination_key"] = cursor
        answer = request_json(
            self._http, "POST", "/v2/list-calls", json=body, what="Retell POST /v2/list-calls"
        )
        calls = [c for c in answer if isinstance(c, dict)] if isinstance(answer, list) else []
        last_id = calls[-1].get("call_id") if calls else None
        more = len(calls) >= self._page_size and isinstance(last_id, str)
        started = [s for s in (_started(c) for c in calls) if s is not None]
        return Page(
            events=[_event(c) for c in calls],
            cursor=last_id if more and isinstance(last_id, str) else None,
            newest=max(started, default=None),
        )


SPEC = PullerSpec(
    base_url="https://api.retellai.com",
    auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
    factory=RetellPuller,
)
