"""The generic source: one simple JSON document per call, for any platform without its own adapter.

The shape other voice-QA tools accept::

    {"call_id": "abc", "started_at": "2026-01-05T10:00:00Z", "recording_url": "https://…/abc.wav",
     "transcript": [{"role": "user", "content": "Hi", "start_time": 0.4, "end_time": 1.1}, …],
     "ended_reason": "user_hangup", "agent": "support-bot"}

``started_at`` (ISO 8601 or epoch seconds) is required: a call needs a wall-clock start, and the document
has no other. Times in the transcript are seconds from call start. ``agent`` is a name or
``{"id", "version"}``; ``metadata`` (an object) is kept. Signed, when the project has a secret, with
``x-convoscope-signature: t=<epoch s>,v1=<hex HMAC-SHA256 of "t.body">``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import PayloadError
from ..model import EndReason, Role
from .payload_fields import (
    Warnings,
    build_call,
    epoch_datetime,
    iso_datetime,
    opt_float,
    opt_list,
    opt_obj,
    opt_str,
    req_obj,
    req_str,
)
from .signing import DEFAULT_REPLAY_WINDOW_S, verify_generic
from .sources import Assembled, SourceEvent, body_event_key

__all__ = ["SOURCE", "GenericSource"]

ROLES: Mapping[str, Role] = {
    "user": Role.USER,
    "customer": Role.USER,
    "caller": Role.USER,
    "human": Role.USER,
    "agent": Role.AGENT,
    "assistant": Role.AGENT,
    "bot": Role.AGENT,
    "ai": Role.AGENT,
    "system": Role.SYSTEM,
    "tool": Role.TOOL,
}

END_REASONS: Mapping[str, EndReason] = {
    **{reason.value: reason for reason in EndReason},
    "customer_hangup": EndReason.USER_HANGUP,
    "customer-ended-call": EndReason.USER_HANGUP,
    "hangup": EndReason.USER_HANGUP,
    "assistant_hangup": EndReason.AGENT_HANGUP,
    "assistant-ended-call": EndReason.AGENT_HANGUP,
    "transferred": EndReason.TRANSFER,
    "timeout": EndReason.SILENCE_TIMEOUT,
    "failed": EndReason.ERROR,
}
"""Our own values, plus the common spellings of other tools; anything else is ``other``, kept raw."""


def _start(document: dict[str, Any], warnings: Warnings) -> datetime:
    value = document.get("started_at")
    if isinstance(value, str) and value:
        return iso_datetime(value, "started_at", warnings)
    number = opt_float(document, "started_at", "body") if not isinstance(value, str) else None
    if number is None:
        raise PayloadError(
            "started_at: missing (an ISO 8601 time or epoch seconds is required)",
            [{"loc": "started_at", "msg": "missing"}],
        )
    return epoch_datetime(number, "started_at")


def _turns(document: dict[str, Any], warnings: Warnings) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i, raw in enumerate(opt_list(document, "transcript", "body")):
        where = f"transcript[{i}]"
        item = req_obj(raw, where)
        role_text = req_str(item, "role", where)
        role = ROLES.get(role_text.lower())
        if role is None:
            raise PayloadError(
                f"{where}.role: {role_text!r} is not one of {', '.join(sorted(ROLES))}",
                [{"loc": f"{where}.role", "msg": "unknown role"}],
            )
        start = opt_float(item, "start_time", where)
        end = opt_float(item, "end_time", where)
        if start is None or end is None:
            raise PayloadError(
                f"{where}: start_time and end_time (seconds from call start) are required",
                [{"loc": where, "msg": "missing time"}],
            )
        if end < start:
            warnings.append(f"{where}: end_time {end} is before start_time {start}; end set to start")
            end = start
        if turns and start < turns[-1]["start_s"]:
            warnings.append(f"{where}: starts before the previous turn; order kept as sent")
        turns.append(
            {"role": role, "text": opt_str(item, "content", where) or "", "start_s": start, "end_s": end}
        )
    return turns


def _agent(document: dict[str, Any]) -> tuple[str | None, str | None]:
    agent = document.get("agent")
    if agent is None or isinstance(agent, str):
        return agent, None
    block = req_obj(agent, "agent")
    return opt_str(block, "id", "agent") or opt_str(block, "name", "agent"), opt_str(
        block, "version", "agent"
    )


class GenericSource:
    """The generic adapter: one event per call, so a re-send replaces the call."""

    name = "generic"

    def __init__(self, *, replay_window_s: float = DEFAULT_REPLAY_WINDOW_S) -> None:
        self.replay_window_s = replay_window_s

    def identify(self, payload: Any) -> SourceEvent:
        """Any document with a ``call_id``; the body's hash tells a replay from a correction."""
        document = req_obj(payload, "body")
        call_id = req_str(document, "call_id", "body")
        return SourceEvent(external_id=call_id, event_type="call", event_key=body_event_key("call", document))

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """The latest document is the call (a correction re-sent later wins)."""
        if not events:
            raise PayloadError("no generic events to assemble")
        warnings: Warnings = []
        document = req_obj(events[-1], "body")
        agent_id, agent_version = _agent(document)
        raw_reason = opt_str(document, "ended_reason", "body")
        url = opt_str(document, "recording_url", "body")
        duration = opt_float(document, "duration", "body")
        call = {
            "source": "generic",
            "external_id": req_str(document, "call_id", "body"),
            "agent_id": agent_id,
            "agent_version": agent_version,
            "started_at": _start(document, warnings),
            "duration_s": duration if duration is not None and duration >= 0 else None,
            "end_reason": END_REASONS.get(raw_reason.lower(), EndReason.OTHER)
            if raw_reason
            else EndReason.UNKNOWN,
            "end_reason_raw": raw_reason,
            "turns": _turns(document, warnings),
            "recordings": [{"source_url": url, "vantage": "generic"}] if url else [],
            "metadata": opt_obj(document, "metadata", "body") or {},
        }
        return Assembled(call=build_call(call, "body"), warnings=tuple(warnings))

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """``x-convoscope-signature`` (see ``convoscope.ingest.signing.sign_generic``)."""
        verify_generic(headers, body, secret, now=now, window_s=self.replay_window_s)


SOURCE = GenericSource()
