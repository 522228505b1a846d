"""Retell AI: the ``{event, call}`` webhooks (``call_started``, ``call_ended``, ``call_analyzed``).

Schema: ``RetellAI/retell-python-sdk`` ``src/retell/types/phone_call_response.py`` (``web_call_response.py``
is the same object for browser calls). Each event carries the whole call object as known at that moment, so
the events of one call are merged field by field, later over earlier, and the merge is mapped once.

Units as documented there: epoch milliseconds for ``start_timestamp``/``end_timestamp``, seconds from call
start for word timings, milliseconds for every latency figure, cents for every cost. Retell documents no
channel order for ``recording_multi_channel_url``, so its channel map stays unknown until the project's
setting fills it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import PayloadError, SignatureError
from ..model import Direction, EndReason, Role
from .payload_fields import (
    Warnings,
    build_call,
    epoch_datetime,
    merge_present,
    opt_bool,
    opt_float,
    opt_list,
    opt_obj,
    opt_str,
    received_start,
    req_obj,
    req_str,
)
from .signing import DEFAULT_REPLAY_WINDOW_S, check_fresh, check_signature, hmac_hex, require_header
from .sources import Assembled, SourceEvent, body_event_key, json_or_text

__all__ = ["SOURCE", "RetellSource"]

SIGNATURE_HEADER = "x-retell-signature"

LIFECYCLE_EVENTS = ("call_started", "call_ended", "call_analyzed")
"""Sent once per call: the event type alone identifies a replay. Other events are keyed by their body."""

END_REASONS: Mapping[str, EndReason] = {
    "user_hangup": EndReason.USER_HANGUP,
    "agent_hangup": EndReason.AGENT_HANGUP,
    "call_transfer": EndReason.TRANSFER,
    "transfer_bridged": EndReason.TRANSFER,
    "voicemail_reached": EndReason.VOICEMAIL,
    "ivr_reached": EndReason.IVR,
    "inactivity": EndReason.SILENCE_TIMEOUT,
    "max_duration_reached": EndReason.MAX_DURATION,
    "dial_busy": EndReason.BUSY,
    "dial_failed": EndReason.DIAL_FAILED,
    "dial_no_answer": EndReason.NO_ANSWER,
    "invalid_destination": EndReason.DIAL_FAILED,
    "telephony_provider_permission_denied": EndReason.DIAL_FAILED,
    "telephony_provider_unavailable": EndReason.DIAL_FAILED,
    "sip_routing_error": EndReason.DIAL_FAILED,
    "user_declined": EndReason.NO_ANSWER,
    "concurrency_limit_reached": EndReason.ERROR,
    "no_concurrency_fallback": EndReason.ERROR,
    "no_valid_payment": EndReason.ERROR,
    "error_llm_websocket_open": EndReason.ERROR,
    "error_llm_websocket_lost_connection": EndReason.ERROR,
    "error_llm_websocket_runtime": EndReason.ERROR,
    "error_llm_websocket_corrupt_payload": EndReason.ERROR,
    "error_no_audio_received": EndReason.ERROR,
    "error_asr": EndReason.ERROR,
    "error_retell": EndReason.ERROR,
    "error_unknown": EndReason.ERROR,
    "error_user_not_joined": EndReason.ERROR,
}
"""``disconnection_reason`` → our enum; anything else (screening, manual stops, new values) is ``other``."""

ROLES: Mapping[str, Role] = {"agent": Role.AGENT, "user": Role.USER, "transfer_target": Role.USER}
"""A transfer target is the human the caller was handed to: a user-side party; marked in metadata."""

LATENCY_KEYS = ("e2e", "asr", "llm", "llm_websocket_network_rtt", "tts", "knowledge_base", "s2s")

_MS = 1000.0
_CALL_META_KEYS = (
    "call_type",
    "call_status",
    "agent_name",
    "agent_tag",
    "from_number",
    "to_number",
    "metadata",
    "retell_llm_dynamic_variables",
    "collected_dynamic_variables",
    "custom_sip_headers",
    "data_storage_setting",
    "opt_in_signed_url",
    "public_log_url",
    "knowledge_base_retrieved_contents_url",
    "transfer_destination",
    "transfer_end_timestamp",
    "telephony_identifier",
    "scrubbed_recording_url",
    "scrubbed_recording_multi_channel_url",
)
"""Call fields with no canonical home, kept under ``metadata["retell"]``."""


@dataclass
class _Transcript:
    turns: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    events: list[dict[str, Any]]
    transfer_turns: list[int]


def _words(items: list[Any], where: str) -> list[dict[str, Any]]:
    words = []
    for i, raw in enumerate(items):
        item = req_obj(raw, f"{where}[{i}]")
        start = opt_float(item, "start", f"{where}[{i}]")
        end = opt_float(item, "end", f"{where}[{i}]")
        if start is None or end is None:
            continue
        words.append({"word": opt_str(item, "word", f"{where}[{i}]") or "", "start_s": start, "end_s": end})
    return words


def _transcript(call: dict[str, Any], warnings: Warnings) -> _Transcript:
    """Turns, tool calls and non-speech events, from the richest transcript the call carries."""
    key = "transcript_with_tool_calls" if call.get("transcript_with_tool_calls") else "transcript_object"
    out = _Transcript([], [], [], [])
    tools: dict[str, dict[str, Any]] = {}
    clock = 0.0
    for i, raw in enumerate(opt_list(call, key, "call")):
        where = f"call.{key}[{i}]"
        item = req_obj(raw, where)
        role = req_str(item, "role", where)
        if role in ROLES:
            words = _words(opt_list(item, "words", where), f"{where}.words")
            for w in words:
                if w["end_s"] < w["start_s"]:
                    warnings.append(
                        f"{where}.words: a word ends before it starts; its end is set to its start"
                    )
                    w["end_s"] = w["start_s"]
            if words:
                start, end = words[0]["start_s"], max(w["end_s"] for w in words)
            else:
                warnings.append(f"{where}: no word timings; the turn is placed after the previous one")
                start = end = clock
            if start < clock:
                warnings.append(f"{where}: starts at {start} s, before the previous turn ended ({clock} s)")
            clock = max(clock, end)
            if role == "transfer_target":
                out.transfer_turns.append(len(out.turns))
            out.turns.append(
                {
                    "role": ROLES[role],
                    "text": opt_str(item, "content", where) or "",
                    "start_s": start,
                    "end_s": end,
                    "words": words or None,
                }
            )
        elif role == "tool_call_invocation":
            tool_id = req_str(item, "tool_call_id", where)
            tool = {
                "id": tool_id,
                "name": req_str(item, "name", where),
                "arguments": json_or_text(opt_str(item, "arguments", where) or ""),
                "turn_index": len(out.turns) - 1 if out.turns else None,
                "start_s": clock,
            }
            tools[tool_id] = tool
            out.tool_calls.append(tool)
        elif role == "tool_call_result":
            tool_id = req_str(item, "tool_call_id", where)
            invoked = tools.get(tool_id)
            if invoked is None:
                warnings.append(
                    f"{where}: result for tool call {tool_id!r} that was never invoked; kept apart"
                )
                out.events.append(item)
                continue
            invoked["result"] = json_or_text(opt_str(item, "content", where) or "")
            invoked["success"] = opt_bool(item, "successful", where)
            invoked["end_s"] = clock
        else:
            out.events.append(item)  # node_transition, dtmf, sms, injected, and roles Retell adds later
    return out


def _latency(call: dict[str, Any]) -> dict[str, dict[str, Any]]:
    latency = opt_obj(call, "latency", "call") or {}
    stats: dict[str, dict[str, Any]] = {}
    for key in LATENCY_KEYS:
        block = opt_obj(latency, key, "call.latency")
        if not block:
            continue
        where = f"call.latency.{key}"
        values = [v / _MS for v in opt_list(block, "values", where) if isinstance(v, int | float) and v >= 0]
        entry: dict[str, Any] = {
            f"{name}_s": (opt_float(block, name, where) or 0.0) / _MS
            for name in ("p50", "p90", "p95", "p99", "min", "max")
            if block.get(name) is not None
        }
        num = opt_float(block, "num", where)
        if num is not None and num >= 0:
            entry["count"] = int(num)
        if values:
            entry["values_s"] = values
        stats[key] = entry
    return stats


def _e2e_per_turn(
    turns: list[dict[str, Any]], latency: dict[str, dict[str, Any]], warnings: Warnings
) -> None:
    """Retell tracks ``e2e`` at each user → agent change; each value goes to its agent turn if they pair."""
    values = latency.get("e2e", {}).get("values_s") or []
    if not values:
        return
    changes = [
        i
        for i in range(1, len(turns))
        if turns[i]["role"] == Role.AGENT and turns[i - 1]["role"] == Role.USER
    ]
    if len(changes) != len(values):
        warnings.append(
            f"call.latency.e2e: {len(values)} values for {len(changes)} user-to-agent changes; "
            "kept per call only"
        )
        return
    for index, value in zip(changes, values, strict=True):
        turns[index]["e2e_s"] = value


def _cost(call: dict[str, Any]) -> tuple[list[dict[str, Any]], float | None]:
    cost = opt_obj(call, "call_cost", "call")
    if cost is None:
        return [], None
    lines = []
    for i, raw in enumerate(opt_list(cost, "product_costs", "call.call_cost")):
        where = f"call.call_cost.product_costs[{i}]"
        item = req_obj(raw, where)
        amount = opt_float(item, "cost", where)
        if amount is None:
            continue
        lines.append(
            {
                "product": req_str(item, "product", where),
                "amount": amount,
                "currency": "USD_cents",
                "unit": "second",
                "unit_price": opt_float(item, "unit_price", where),
                "quantity": opt_float(cost, "total_duration_seconds", "call.call_cost"),
            }
        )
    combined = opt_float(cost, "combined_cost", "call.call_cost")
    if not lines and combined is not None:
        lines.append({"product": "combined", "amount": combined, "currency": "USD_cents"})
    return lines, opt_float(cost, "total_duration_seconds", "call.call_cost")


def _recordings(call: dict[str, Any]) -> list[dict[str, Any]]:
    recordings = []
    for key, channels in (("recording_multi_channel_url", 2), ("recording_url", 1)):
        url = opt_str(call, key, "call")
        if url:
            recordings.append({"source_url": url, "channels": channels, "vantage": f"retell:{key}"})
    return recordings


class RetellSource:
    """The Retell adapter. ``replay_window_s`` bounds how old a signed delivery may be."""

    name = "retell"

    def __init__(self, *, replay_window_s: float = DEFAULT_REPLAY_WINDOW_S) -> None:
        self.replay_window_s = replay_window_s

    def identify(self, payload: Any) -> SourceEvent:
        """``{event, call: {call_id, ...}}``; lifecycle events are keyed by type, others by body."""
        body = req_obj(payload, "body")
        event = req_str(body, "event", "body")
        call = req_obj(body.get("call"), "call")
        call_id = req_str(call, "call_id", "call")
        key = event if event in LIFECYCLE_EVENTS else body_event_key(event, payload)
        return SourceEvent(external_id=call_id, event_type=event, event_key=key)

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """Merge the call objects of all events (later wins, nulls never erase), then map the merge."""
        if not events:
            raise PayloadError("no Retell events to assemble")
        merged: dict[str, Any] = {}
        seen: list[str] = []
        for raw in events:
            body = req_obj(raw, "body")
            seen.append(req_str(body, "event", "body"))
            merged = merge_present(merged, req_obj(body.get("call"), "call"))
        return self._map(merged, seen, received_at)

    def _map(self, call: dict[str, Any], seen: list[str], received_at: datetime | None) -> Assembled:
        warnings: Warnings = []
        call_id = req_str(call, "call_id", "call")
        start_ms = opt_float(call, "start_timestamp", "call")
        end_ms = opt_float(call, "end_timestamp", "call")
        if start_ms is not None:
            started_at = epoch_datetime(start_ms / _MS, "call.start_timestamp")
        elif end_ms is not None:
            warnings.append("call.start_timestamp: missing (call never connected); the end time stands in")
            started_at = epoch_datetime(end_ms / _MS, "call.end_timestamp")
        else:
            # A call that is registered but not yet connected has neither (the SDK makes both optional).
            started_at = received_start(received_at, "call.start_timestamp", warnings)
        ended_at: datetime | None = None
        if end_ms is not None:
            ended_at = epoch_datetime(end_ms / _MS, "call.end_timestamp")
            if ended_at < started_at:
                warnings.append("call.end_timestamp: before start_timestamp; end time dropped")
                ended_at = None
        duration_ms = opt_float(call, "duration_ms", "call")
        raw_reason = opt_str(call, "disconnection_reason", "call")
        transcript = _transcript(call, warnings)
        latency = _latency(call)
        _e2e_per_turn(transcript.turns, latency, warnings)
        cost, billed_s = _cost(call)
        token_usage = opt_obj(call, "llm_token_usage", "call") or {}
        extra: dict[str, float] = {}
        for name in ("average", "num_requests"):
            value = opt_float(token_usage, name, "call.llm_token_usage")
            if value is not None:
                extra[f"llm_tokens_{name}"] = value
        call_type = opt_str(call, "call_type", "call")
        direction = opt_str(call, "direction", "call")
        agent_version = call.get("agent_version")
        document: dict[str, Any] = {
            "source": "retell",
            "external_id": call_id,
            "agent_id": opt_str(call, "agent_id", "call"),
            "agent_version": None if agent_version is None else str(agent_version),
            "direction": Direction.WEB
            if call_type == "web_call"
            else {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND}.get(
                direction or "", Direction.UNKNOWN
            ),
            "started_at": started_at,
            "ended_at": ended_at,
            "duration_s": duration_ms / _MS if duration_ms is not None and duration_ms >= 0 else None,
            "end_reason": END_REASONS.get(raw_reason, EndReason.OTHER) if raw_reason else EndReason.UNKNOWN,
            "end_reason_raw": raw_reason,
            "turns": transcript.turns,
            "tool_calls": transcript.tool_calls,
            "recordings": _recordings(call),
            "vendor_latency": latency,
            "cost": cost,
            "usage": {
                "audio_s": billed_s if billed_s is not None and billed_s >= 0 else None,
                "extra": extra,
            },
            "vendor_analysis": opt_obj(call, "call_analysis", "call") or {},
            "metadata": {
                "retell": {key: call[key] for key in _CALL_META_KEYS if call.get(key) is not None},
                "retell_events": seen,
                **({"retell_transcript_events": transcript.events} if transcript.events else {}),
                **({"transfer_target_turns": transcript.transfer_turns} if transcript.transfer_turns else {}),
            },
        }
        return Assembled(call=build_call(document, "call"), warnings=tuple(warnings))

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """``x-retell-signature: v=<epoch ms>,d=<hex HMAC-SHA256(api key, body + ms)>`` (Retell's SDK)."""
        value = require_header(headers, SIGNATURE_HEADER)
        stamp, sep, digest = value.partition(",d=")
        millis = stamp[2:]
        # ASCII digits only ("²" is a digit to isdigit() and not to int()), and few enough for int().
        digits = millis.isascii() and millis.isdigit() and len(millis) <= 20
        if not sep or not stamp.startswith("v=") or not digits:
            raise SignatureError(f"{SIGNATURE_HEADER}: expected v=<timestamp>,d=<signature>")
        check_fresh(int(millis) / _MS, now, self.replay_window_s, SIGNATURE_HEADER)
        check_signature(hmac_hex(secret, body + millis.encode()), digest, SIGNATURE_HEADER)


SOURCE = RetellSource()
