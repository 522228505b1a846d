"""Bland AI post-call webhooks → the canonical call.

Schema followed: Bland publishes no typed SDK; the field tables of ``Bland-com/bland-ai-cookbooks``
``10-call-analysis/README.md`` (call object, immediate webhook, delayed webhook, transcript forms) and the
call-details reference (https://docs.bland.ai/api-v1/get/calls-id) are the schema. Signing follows
https://docs.bland.ai/tutorials/webhook-signing.

Bland posts a call twice to the ``webhook`` URL: at once (``transcripts[]`` with ``created_at`` times) and
30 to 60 s later with ``corrected_transcript.segments[]`` (times in seconds) and ``citations``. Both carry
``call_id``; they are merged field by field, the later event winning, a field only the first has (or that
the later one sends as ``null``) kept. Utterance times become seconds from the call's start: the corrected
segments' own ``start_time``/``end_time`` when present, else ``created_at`` minus ``started_at``.
Tool calls come from ``pathway_logs`` entries in the documented pathway-event shape (``bland_pathway``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import PayloadError
from ..model import Direction, EndReason, Role
from .bland_pathway import pathway_tool_calls
from .payload_fields import (
    Warnings,
    after,
    build_call,
    field_error,
    iso_datetime,
    opt_bool,
    opt_float,
    opt_list,
    opt_obj,
    opt_str,
    received_start,
    req_obj,
    req_str,
    turn_ends,
)
from .signing import check_signature, hmac_hex, require_header
from .sources import Assembled, SourceEvent, body_event_key

__all__ = ["SOURCE", "BlandSource"]

IMMEDIATE = "immediate"
CORRECTED = "corrected"

SIGNATURE_HEADER = "x-webhook-signature"

# ``transcripts[].user`` and ``corrected_transcript.segments[].speaker``. ``robot`` and ``agent-action``
# are Bland's own entries (system prompts, actions taken), not speech of either party.
ROLES: Mapping[str, Role] = {
    "user": Role.USER,
    "assistant": Role.AGENT,
    "agent": Role.AGENT,
    "robot": Role.SYSTEM,
    "agent-action": Role.SYSTEM,
}

ENDED_BY: Mapping[str, EndReason] = {
    "user": EndReason.USER_HANGUP,
    "assistant": EndReason.AGENT_HANGUP,
    "agent": EndReason.AGENT_HANGUP,
}

SECONDS_PER_MINUTE = 60.0

# Fields kept under ``metadata["bland"]`` (ids, numbers, statuses and the user's own data).
KEPT_FIELDS = (
    "c_id",
    "batch_id",
    "pathway_id",
    "to",
    "from",
    "answered_by",
    "queue_status",
    "status",
    "completed",
    "call_ended_by",
    "error_message",
    "corrected_duration",
    "transferred_to",
    "pre_transfer_duration",
    "post_transfer_duration",
    "variables",
    "metadata",
    "request_data",
    "end_at",
    "created_at",
    "record",
)

ANALYSIS_FIELDS = ("summary", "analysis", "disposition_tag", "citations")


def _event_type(body: Mapping[str, Any]) -> str:
    return CORRECTED if body.get("corrected_transcript") is not None else IMMEDIATE


def _merge(events: Sequence[Any]) -> dict[str, Any]:
    """The later event's fields over the earlier's; a ``null`` never erases a value already known.

    Corrected events go after immediate ones whatever their arrival order, so a retried immediate
    webhook cannot overwrite the corrected fields.
    """
    bodies = [req_obj(raw, f"events[{position}]") for position, raw in enumerate(events)]
    merged: dict[str, Any] = {}
    for body in sorted(bodies, key=lambda b: _event_type(b) == CORRECTED):
        merged.update({k: v for k, v in body.items() if v is not None})
    return merged


def _end_reason(call: Mapping[str, Any]) -> tuple[EndReason, str | None]:
    answered_by = opt_str(call, "answered_by", "(body)")
    ended_by = opt_str(call, "call_ended_by", "(body)")
    if answered_by and answered_by.lower() == "voicemail":
        return EndReason.VOICEMAIL, f"answered_by:{answered_by}"
    if opt_str(call, "transferred_to", "(body)"):
        return EndReason.TRANSFER, f"transferred_to:{ended_by or ''}"
    if ended_by:
        return ENDED_BY.get(ended_by.lower(), EndReason.OTHER), ended_by
    if opt_str(call, "error_message", "(body)"):
        return EndReason.ERROR, "error_message"
    return EndReason.UNKNOWN, None


def _start(call: Mapping[str, Any], warnings: Warnings, received_at: datetime | None) -> datetime:
    """When the call started: ``started_at``, else ``created_at``, else the first utterance, else when
    its first webhook was received.

    Bland's webhooks carry neither ``started_at`` nor ``created_at`` (only the call-details object does),
    so a webhook alone usually starts at its first ``transcripts[].created_at``, a vendor time a few
    seconds after the call connected; the warning says which time stands in.
    """
    started = opt_str(call, "started_at", "(body)") or opt_str(call, "created_at", "(body)")
    if started is not None:
        return iso_datetime(started, "started_at", warnings)
    spoken = []
    for i, raw in enumerate(opt_list(call, "transcripts", "(body)")):
        where = f"transcripts[{i}]"
        at = opt_str(req_obj(raw, where), "created_at", where)
        if at is not None:
            spoken.append(iso_datetime(at, f"{where}.created_at", warnings))
    if spoken:
        warnings.append("started_at: missing (and no created_at); the first utterance's time stands in")
        return min(spoken)
    return received_start(received_at, "started_at", warnings)


class _Reader:
    """Reads one merged Bland call document into canonical fields."""

    def __init__(self, call: dict[str, Any], warnings: Warnings, received_at: datetime | None) -> None:
        self.call = call
        self.warnings = warnings
        self.started_at = _start(call, warnings, received_at)
        minutes = opt_float(call, "call_length", "(body)")
        self.duration_s = minutes * SECONDS_PER_MINUTE if minutes is not None and minutes >= 0 else None
        self.raw_roles: dict[str, str] = {}

    def _role(self, raw: str, index: int) -> Role:
        role = ROLES.get(raw.lower())
        if role is None:
            self.warnings.append(f"turn {index}: unknown speaker {raw[:32]!r}, kept as system")
            role = Role.SYSTEM
        if role is Role.SYSTEM:
            self.raw_roles[str(index)] = raw
        return role

    def turns(self) -> list[dict[str, Any]]:
        corrected = opt_obj(self.call, "corrected_transcript", "(body)")
        segments = opt_list(corrected, "segments", "corrected_transcript") if corrected else []
        return self._segments(segments) if segments else self._transcripts()

    def _segments(self, segments: list[Any]) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = []
        previous_start = 0.0
        for i, raw in enumerate(segments):
            where = f"corrected_transcript.segments[{i}]"
            segment = req_obj(raw, where)
            start = opt_float(segment, "start_time", where)
            end = opt_float(segment, "end_time", where)
            if start is None or start < 0:
                raise field_error(f"{where}.start_time", "missing or negative")
            if end is None or end < start:
                self.warnings.append(f"{where}: end_time missing or before start_time; set to start_time")
                end = start
            if start < previous_start:
                self.warnings.append(f"{where}: starts at {start} s, before the previous segment")
            previous_start = start
            turns.append(
                {
                    "index": i,
                    "role": self._role(req_str(segment, "speaker", where), i),
                    "text": opt_str(segment, "text", where) or "",
                    "start_s": start,
                    "end_s": end,
                }
            )
        return turns

    def _transcripts(self) -> list[dict[str, Any]]:
        entries: list[tuple[dict[str, Any], str]] = []
        starts: list[float] = []
        for i, raw in enumerate(opt_list(self.call, "transcripts", "(body)")):
            where = f"transcripts[{i}]"
            entry = req_obj(raw, where)
            at = iso_datetime(req_str(entry, "created_at", where), f"{where}.created_at", self.warnings)
            offset = (at - self.started_at).total_seconds()
            if offset < 0:
                self.warnings.append(f"{where}.created_at: {-offset:.3f} s before the call started; set to 0")
                offset = 0.0
            entries.append((entry, where))
            starts.append(offset)
        ends = turn_ends(starts, self.duration_s, "transcripts", self.warnings)
        return [
            {
                "index": i,
                "role": self._role(req_str(entry, "user", where), i),
                "text": opt_str(entry, "text", where) or "",
                "start_s": starts[i],
                "end_s": ends[i],
            }
            for i, (entry, where) in enumerate(entries)
        ]

    def fields(self) -> dict[str, Any]:
        call = self.call
        inbound = opt_bool(call, "inbound", "(body)")
        end_reason, end_reason_raw = _end_reason(call)
        turns = self.turns()
        tool_calls = pathway_tool_calls(
            opt_list(call, "pathway_logs", "(body)"),
            where="pathway_logs",
            started_at=self.started_at,
            turn_starts=[turn["start_s"] for turn in turns],
            warnings=self.warnings,
        )
        price = opt_float(call, "price", "(body)")
        minutes = opt_float(call, "call_length", "(body)")
        cost = (
            [{"product": "call", "amount": price, "currency": "USD", "quantity": minutes, "unit": "minute"}]
            if price is not None
            else []
        )
        recording_url = opt_str(call, "recording_url", "(body)")
        extra: dict[str, Any] = {k: call[k] for k in KEPT_FIELDS if call.get(k) is not None}
        if self.raw_roles:
            extra["raw_roles"] = self.raw_roles
        metadata: dict[str, Any] = {"bland": extra}
        if not (opt_obj(call, "corrected_transcript", "(body)") or {}).get("segments"):
            metadata["turn_end_s"] = "next turn's start"
        return {
            "external_id": req_str(call, "call_id", "(body)"),
            "agent_id": opt_str(call, "pathway_id", "(body)"),
            "direction": Direction.UNKNOWN
            if inbound is None
            else (Direction.INBOUND if inbound else Direction.OUTBOUND),
            "started_at": self.started_at,
            "ended_at": after(self.started_at, self.duration_s, "call_length")
            if self.duration_s is not None
            else None,
            "duration_s": self.duration_s,
            "end_reason": end_reason,
            "end_reason_raw": end_reason_raw,
            "turns": turns,
            "tool_calls": tool_calls,
            # Bland documents no channel layout for its recording: the project's setting decides.
            "recordings": [{"source_url": recording_url}] if recording_url else [],
            "cost": cost,
            "usage": {"audio_s": self.duration_s},
            "vendor_analysis": {k: call[k] for k in ANALYSIS_FIELDS if call.get(k) is not None},
            "metadata": metadata,
        }


class BlandSource:
    """The Bland adapter: the immediate and the corrected post-call webhook of one ``call_id``."""

    name = "bland"

    def identify(self, payload: Any) -> SourceEvent:
        body = req_obj(payload, "(body)")
        kind = _event_type(body)
        return SourceEvent(
            external_id=req_str(body, "call_id", "(body)"),
            event_type=kind,
            event_key=body_event_key(kind, payload),
        )

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """The immediate and corrected webhooks of one ``call_id``, merged (corrected fields win)."""
        if not events:
            raise PayloadError("no events to assemble")
        ids = {req_str(req_obj(e, "(body)"), "call_id", "(body)") for e in events}
        if len(ids) > 1:
            raise PayloadError(f"events of different calls assembled together: {sorted(ids)}")
        warnings: Warnings = []
        merged = _merge(events)
        fields = _Reader(merged, warnings, received_at).fields()
        call = build_call({"source": self.name, **fields}, "bland events")
        return Assembled(call=call, warnings=tuple(warnings))

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """``X-Webhook-Signature``: hex HMAC-SHA256 of the body with the account's signing secret.

        Bland signs no timestamp, so no replay window can be enforced here; a replayed body is only
        harmless (its event key is the same), not refused.
        """
        signature = require_header(headers, SIGNATURE_HEADER)
        check_signature(hmac_hex(secret, body), signature, "X-Webhook-Signature")


SOURCE = BlandSource()
