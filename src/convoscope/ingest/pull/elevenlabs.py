"""ElevenLabs: ``GET /v1/convai/conversations`` then ``GET /v1/convai/conversations/{id}``.

The list (``elevenlabs/elevenlabs-python`` conversations ``list``: ``cursor``, ``call_start_after_unix``,
``page_size`` up to 100) answers ``{conversations[], has_more, next_cursor}`` with summaries only; each
conversation is then fetched in full (``get_conversation_response_model.py``, the same object the
``post_call_transcription`` webhook carries in ``data``) and wrapped in that webhook's envelope. With
``with_audio``, a conversation that ``has_audio`` also gets ``GET /v1/convai/conversations/{id}/audio``
(the MP3), sent as the ``post_call_audio`` event. The cursor is ElevenLabs' own ``next_cursor``. Auth is
the ``xi-api-key`` header.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from .base import Page, PullerSpec, request, request_json

__all__ = ["SPEC", "ElevenLabsPuller"]

MAX_PAGE_SIZE = 100


def _started(summary: dict[str, Any]) -> datetime | None:
    value = summary.get("start_time_unix_secs")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**40:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


class ElevenLabsPuller:
    """Pages of ElevenLabs conversations, each fetched in full."""

    source = "elevenlabs"

    def __init__(
        self, http: httpx.Client, *, page_size: int = MAX_PAGE_SIZE, with_audio: bool = True
    ) -> None:
        self._http = http
        self._page_size = min(page_size, MAX_PAGE_SIZE)
        self._with_audio = with_audio

    def page(self, *, since: datetime | None, cursor: str | None) -> Page:
        params: dict[str, Any] = {"page_size": self._page_size}
        if since is not None:
            params["call_start_after_unix"] = int(since.timestamp())
        if cursor is not None:
            params["cursor"] = cursor
        listing = request_json(
            self._http, "GET", "/v1/convai/conversations", params=params, what="ElevenLabs list conversations"
        )
        listing = listing if isinstance(listing, dict) else {}
        summaries = [s for s in listing.get("conversations") or [] if isinstance(s, dict)]
        events = []
        for summary in summaries:
            conversation_id = summary.get("conversation_id")
            if not isinstance(conversation_id, str) or not conversation_id:
                continue
            path = f"/v1/convai/conversations/{quote(conversation_id, safe='')}"
            data = request_json(
                self._http, "GET", path, what=f"ElevenLabs get conversation {conversation_id}"
            )
            events.append({"type": "post_call_transcription", "data": data})
            if self._with_audio and isinstance(data, dict) and data.get("has_audio"):
                events.append(self._audio_event(path, summary, conversation_id))
        next_cursor = listing.get("next_cursor")
        more = bool(listing.get("has_more")) and isinstance(next_cursor, str) and bool(next_cursor)
        started = [s for s in (_started(s) for s in summaries) if s is not None]
        return Page(
            events=events,
            cursor=next_cursor if more and isinstance(next_cursor, str) else None,
            newest=max(started, default=None),
        )

    def _audio_event(self, path: str, summary: dict[str, Any], conversation_id: str) -> dict[str, Any]:
        audio = request(
            self._http, "GET", f"{path}/audio", what=f"ElevenLabs conversation audio {conversation_id}"
        )
        started = _started(summary)
        return {
            "type": "post_call_audio",
            # The webhook's own field; the start stands in for when the audio event would have been sent.
            "event_timestamp": int(started.timestamp()) if started else None,
            "data": {
                "agent_id": summary.get("agent_id"),
                "conversation_id": conversation_id,
                "full_audio": base64.b64encode(audio.content).decode(),
            },
        }


SPEC = PullerSpec(
    base_url="https://api.elevenlabs.io",
    auth_headers=lambda key: {"xi-api-key": key},
    factory=ElevenLabsPuller,
    audio=True,
)
