"""Vapi: the ``end-of-call-report`` server message and the ``GET /call/{id}`` call object.

Schema: ``VapiAI/server-sdk-python`` ``src/vapi/types/`` — ``server_message_end_of_call_report.py``,
``call.py``, ``artifact.py``, ``performance_metrics.py``, ``turn_latency.py``, ``recording.py``, ``mono.py``,
``cost_breakdown.py``, ``{user,bot,system,tool_call,tool_call_result}_message.py``, ``call_ended_reason.py``.

Vapi posts every server message an assistant is configured to send (``assistant.serverMessages``) to
the same server URL. The rule for them, by ``message.type`` (the list is the SDK's ``ServerMessageMessage``
union, ``server_message_*_type.py``):

* ``end-of-call-report``: the call's record (transcript, messages, recordings, costs, performance
  metrics). Kept and assembled, as is a call object fetched from ``GET /call/{id}``.
* ``status-update`` carrying its call (``message.call.id``): kept with the call's events. Its call object,
  ``status`` and ``endedReason`` contribute to the call (a call that never sends its report still shows
  how it ended); the report and the fetched call object win over it whatever the order they arrive in.
  A status update without its call describes no call and is acknowledged like the messages below.
* Messages that ask their server for an answer (:data:`ANSWER_EXPECTED`: ``assistant-request``,
  ``tool-calls``, ``function-call``, ``transfer-destination-request``, ``handoff-destination-request``,
  ``knowledge-base-request``, ``voice-request``, ``call.endpointing.request``): convoscope observes calls
  and cannot answer them. They are acknowledged (200, a body with none of the keys Vapi acts on) and not
  kept. convoscope must therefore not be the server URL that answers them: point the assistant's (or
  phone number's) server URL at your own server and send convoscope only the informational messages (the
  integration page shows how).
* Every other message (``transcript``, ``conversation-update``, ``speech-update``, ``model-output``,
  ``user-interrupted``, ``voice-input``, ``hang``, ``transfer-update``, ``language-change-detected``,
  ``phone-call-control``, ``assistant.started``, ``chat.*``, ``session.*``, ``call.deleted``, and types
  Vapi adds later): live progress of a call, or no call at all. Acknowledged (200) and not kept: the
  report carries the complete, timed transcript and messages, and keeping each partial transcript would
  re-assemble and re-evaluate the call once per utterance.

Both call shapes describe one call; a report and a fetched call object of the same call merge (later over
earlier) into one view before mapping. Message times are epoch milliseconds plus ``secondsFromStart``;
``duration`` is documented as seconds but is cross-checked against ``endTime - time``. Per-turn latencies
carry no documented unit; Vapi's dashboard shows them in milliseconds, which is how they are read. Costs
are USD. The stereo file's channel order is not documented, so its map stays unknown; the per-party mono
files (``assistantUrl``, ``customerUrl``) are one party each by definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import PayloadError, SignatureError
from ..model import Direction, EndReason, Role
from .payload_fields import (
    Warnings,
    build_call,
    iso_datetime,
    latency_stats,
    merge_present,
    opt_float,
    opt_list,
    opt_obj,
    opt_str,
    received_start,
    req_obj,
    req_str,
)
from .signing import (
    DEFAULT_REPLAY_WINDOW_S,
    check_fresh,
    check_secret,
    check_signature,
    epoch_seconds,
    hmac_hex,
    require_header,
)
from .sources import Assembled, IgnoredEvent, SourceEvent, body_event_key, json_or_text

__all__ = ["ANSWER_EXPECTED", "SOURCE", "VapiSource"]

REPORT = "end-of-call-report"
STATUS_UPDATE = "status-update"
ANSWER_EXPECTED = frozenset(
    {
        "assistant-request",
        "tool-calls",
        "function-call",
        "transfer-destination-request",
        "handoff-destination-request",
        "knowledge-base-request",
        "voice-request",
        "call.endpointing.request",
    }
)
"""Server messages whose sender waits for an answer (the SDK's ``ServerMessageResponse*`` types, and the
legacy ``function-call``); convoscope acknowledges them and answers nothing."""
_STATUS_FIELDS = ("status", "endedReason", "phoneNumber", "customer")
"""What a status update adds to its call object: its live ``artifact`` and ``messages`` (sent while
forwarding) are partial, so they are left to the report."""
SECRET_HEADER = "x-vapi-secret"
"""The plain shared secret of a server URL's ``secret`` (Vapi's original scheme)."""

END_REASONS: Mapping[str, EndReason] = {
    "customer-ended-call": EndReason.USER_HANGUP,
    "customer-ended-call-before-warm-transfer": EndReason.USER_HANGUP,
    "customer-ended-call-after-warm-transfer-attempt": EndReason.USER_HANGUP,
    "customer-ended-call-during-transfer": EndReason.USER_HANGUP,
    "assistant-ended-call": EndReason.AGENT_HANGUP,
    "assistant-said-end-call-phrase": EndReason.AGENT_HANGUP,
    "assistant-ended-call-with-hangup-task": EndReason.AGENT_HANGUP,
    "assistant-ended-call-after-message-spoken": EndReason.AGENT_HANGUP,
    "assistant-forwarded-call": EndReason.TRANSFER,
    "call.ringing.hook-executed-transfer": EndReason.TRANSFER,
    "call.ending.hook-executed-transfer": EndReason.TRANSFER,
    "voicemail": EndReason.VOICEMAIL,
    "silence-timed-out": EndReason.SILENCE_TIMEOUT,
    "exceeded-max-duration": EndReason.MAX_DURATION,
    "customer-did-not-answer": EndReason.NO_ANSWER,
    "customer-busy": EndReason.BUSY,
    "call.forwarding.operator-busy": EndReason.BUSY,
    "twilio-reported-customer-misdialed": EndReason.DIAL_FAILED,
    "vonage-rejected": EndReason.DIAL_FAILED,
}
"""``endedReason`` → our enum for the named outcomes; the dozens of failure codes are matched by pattern."""

_ERROR_MARKERS = ("error", "fault", "failed", "pipeline-no-available")

ROLES: Mapping[str, Role] = {
    "user": Role.USER,
    "bot": Role.AGENT,
    "assistant": Role.AGENT,
    "system": Role.SYSTEM,
}
TOOL_CALLS_ROLE = "tool_calls"
TOOL_RESULT_ROLE = "tool_call_result"

DIRECTIONS: Mapping[str, Direction] = {
    "inboundPhoneCall": Direction.INBOUND,
    "outboundPhoneCall": Direction.OUTBOUND,
    "webCall": Direction.WEB,
    "vapi.websocketCall": Direction.WEB,
}

TURN_COMPONENTS: Mapping[str, str] = {
    "turnLatency": "e2e_s",
    "endpointingLatency": "eou_s",
    "transcriberLatency": "stt_s",
    "modelLatency": "llm_ttft_s",
    "voiceLatency": "tts_ttfb_s",
}
"""``turnLatencies[]`` fields → the canonical per-turn components (Vapi's names are the keys)."""

DURATION_TOLERANCE_S = 0.05
"""How far ``duration`` may differ from ``endTime - time`` before the epoch times win with a warning."""

_MS = 1000.0
_CALL_META_KEYS = (
    "orgId",
    "type",
    "status",
    "phoneNumberId",
    "phoneCallProvider",
    "phoneCallProviderId",
    "phoneCallTransport",
    "customer",
    "phoneNumber",
    "destination",
    "endedMessage",
    "squadId",
    "workflowId",
    "campaignId",
    "name",
)
_ARTIFACT_META_KEYS = ("logUrl", "pcapUrl", "variableValues", "transfers", "nodes", "presignedUrlsExpiresAt")


def _view(payload: Any) -> dict[str, Any]:
    """One call-object view of an event: a message's fields lifted over its embedded ``call``."""
    body = req_obj(payload, "body")
    if "message" not in body:
        return body
    message = req_obj(body["message"], "message")
    call = req_obj(message.get("call") or {}, "message.call")
    if message.get("type") == STATUS_UPDATE:
        lifted = {k: message[k] for k in _STATUS_FIELDS if k in message}
    else:
        lifted = {k: v for k, v in message.items() if k not in ("call", "type", "timestamp")}
    return merge_present(call, lifted)


def _is_status_update(payload: Any) -> bool:
    message = payload.get("message") if isinstance(payload, dict) else None
    return isinstance(message, dict) and message.get("type") == STATUS_UPDATE


def _not_kept(kind: str) -> IgnoredEvent:
    if kind in ANSWER_EXPECTED:
        return IgnoredEvent(
            kind,
            "this message asks its server for an answer, which convoscope (an observer) does not give; "
            "answer it from your own server URL and send convoscope the informational messages only",
        )
    return IgnoredEvent(
        kind, f"not kept: the call's record is its {REPORT!r}, with the complete transcript and recordings"
    )


def _end_reason(raw: str | None) -> EndReason:
    if not raw:
        return EndReason.UNKNOWN
    if raw in END_REASONS:
        return END_REASONS[raw]
    return EndReason.ERROR if any(marker in raw for marker in _ERROR_MARKERS) else EndReason.OTHER


def _times(item: dict[str, Any], where: str, call_start_ms: float, warnings: Warnings) -> tuple[float, float]:
    """A message's start and end in seconds from call start."""
    start = opt_float(item, "secondsFromStart", where)
    time_ms = opt_float(item, "time", where)
    if start is None:
        start = (time_ms - call_start_ms) / _MS if time_ms is not None else 0.0
    if start < 0:
        warnings.append(f"{where}: starts before the call ({start:.3f} s); clamped to 0")
        start = 0.0
    end_ms = opt_float(item, "endTime", where)
    duration = opt_float(item, "duration", where)
    if end_ms is not None and time_ms is not None and end_ms >= time_ms:
        span = (end_ms - time_ms) / _MS
        if (
            duration is not None
            and abs(duration - span) > DURATION_TOLERANCE_S
            and abs(duration / _MS - span) > DURATION_TOLERANCE_S
        ):
            warnings.append(f"{where}.duration: {duration} disagrees with endTime - time ({span:.3f} s)")
        return start, start + span
    if duration is not None and duration >= 0:
        return start, start + duration
    return start, start


def _messages(
    view: dict[str, Any], call_start_ms: float, warnings: Warnings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    artifact = opt_obj(view, "artifact", "call") or {}
    where_list = "artifact.messages" if artifact.get("messages") else "messages"
    items = opt_list(artifact, "messages", "artifact") or opt_list(view, "messages", "call")
    turns: list[dict[str, Any]] = []
    tools: dict[str, dict[str, Any]] = {}
    tool_calls: list[dict[str, Any]] = []
    for i, raw in enumerate(items):
        where = f"{where_list}[{i}]"
        item = req_obj(raw, where)
        role = req_str(item, "role", where)
        start, end = _times(item, where, call_start_ms, warnings)
        if role in ROLES:
            if turns and start < turns[-1]["start_s"]:
                warnings.append(f"{where}: starts before the previous message; order kept as sent")
            turns.append(
                {
                    "role": ROLES[role],
                    "text": opt_str(item, "message", where) or "",
                    "start_s": start,
                    "end_s": end,
                }
            )
        elif role == TOOL_CALLS_ROLE:
            for j, raw_call in enumerate(opt_list(item, "toolCalls", where)):
                call_where = f"{where}.toolCalls[{j}]"
                tool = req_obj(raw_call, call_where)
                function = opt_obj(tool, "function", call_where) or {}
                tool_id = req_str(tool, "id", call_where)
                entry = {
                    "id": tool_id,
                    "name": req_str(function, "name", f"{call_where}.function"),
                    "arguments": json_or_text(function.get("arguments")),
                    "turn_index": len(turns) - 1 if turns else None,
                    "start_s": start,
                }
                tools[tool_id] = entry
                tool_calls.append(entry)
        elif role == TOOL_RESULT_ROLE:
            tool_id = req_str(item, "toolCallId", where)
            entry_or_none = tools.get(tool_id)
            if entry_or_none is None:
                warnings.append(f"{where}: result for tool call {tool_id!r} that was never invoked; dropped")
                continue
            entry_or_none["result"] = json_or_text(item.get("result"))
            entry_or_none["end_s"] = max(start, entry_or_none["start_s"])
        else:
            warnings.append(f"{where}.role: unknown message role {role!r}; message skipped")
    return turns, tool_calls


def _turn_latencies(
    turns: list[dict[str, Any]], metrics: dict[str, Any], warnings: Warnings
) -> dict[str, Any]:
    """Hand each ``turnLatencies`` entry to the agent turn answering a user turn; summarise per component."""
    entries = [
        req_obj(e, f"performanceMetrics.turnLatencies[{i}]")
        for i, e in enumerate(opt_list(metrics, "turnLatencies", "performanceMetrics"))
    ]
    answers = [
        i
        for i in range(1, len(turns))
        if turns[i]["role"] == Role.AGENT and turns[i - 1]["role"] == Role.USER
    ]
    if entries and len(entries) != len(answers):
        warnings.append(
            f"performanceMetrics.turnLatencies: {len(entries)} entries for {len(answers)} agent answers; "
            "the first ones are paired in order"
        )
    per_component: dict[str, list[float]] = {}
    for i, (entry, index) in enumerate(zip(entries, answers, strict=False)):
        for vapi_name, field in TURN_COMPONENTS.items():
            value = opt_float(entry, vapi_name, f"performanceMetrics.turnLatencies[{i}]")
            if value is not None and value >= 0:
                turns[index][field] = value / _MS
    for i, entry in enumerate(entries):
        for vapi_name in TURN_COMPONENTS:
            value = opt_float(entry, vapi_name, f"performanceMetrics.turnLatencies[{i}]")
            if value is not None and value >= 0:
                per_component.setdefault(vapi_name.removesuffix("Latency"), []).append(value / _MS)
    return {name: latency_stats(values) for name, values in per_component.items()}


def _cost_lines(view: dict[str, Any]) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for i, raw in enumerate(opt_list(view, "costs", "call")):
        where = f"costs[{i}]"
        item = req_obj(raw, where)
        amount = opt_float(item, "cost", where)
        if amount is None:
            continue
        kind = opt_str(item, "type", where) or "unknown"
        sub = opt_str(item, "subType", where) or opt_str(item, "analysisType", where)
        quantity, unit = None, None
        for field, field_unit in (
            ("minutes", "minute"),
            ("characters", "character"),
            ("promptTokens", "token"),
        ):
            value = opt_float(item, field, where)
            if value is not None:
                quantity, unit = value, field_unit
                if field == "promptTokens":
                    quantity = value + (opt_float(item, "completionTokens", where) or 0.0)
                break
        lines.append(
            {
                "product": f"{kind}:{sub}" if sub else kind,
                "amount": amount,
                "currency": "USD",
                "quantity": quantity,
                "unit": unit,
            }
        )
    if lines:
        return lines
    breakdown = opt_obj(view, "costBreakdown", "call") or {}
    for key in ("transport", "stt", "llm", "tts", "vapi", "chat"):
        value = opt_float(breakdown, key, "costBreakdown")
        if value:
            lines.append({"product": key, "amount": value, "currency": "USD"})
    total = opt_float(view, "cost", "call")
    if not lines and total is not None:
        lines.append({"product": "total", "amount": total, "currency": "USD"})
    return lines


def _usage(view: dict[str, Any], duration_s: float | None) -> dict[str, Any]:
    breakdown = opt_obj(view, "costBreakdown", "call") or {}
    prompt = opt_float(breakdown, "llmPromptTokens", "costBreakdown")
    completion = opt_float(breakdown, "llmCompletionTokens", "costBreakdown")
    characters = opt_float(breakdown, "ttsCharacters", "costBreakdown")
    if prompt is None:
        models = [
            req_obj(c, "costs[]")
            for c in opt_list(view, "costs", "call")
            if isinstance(c, dict) and c.get("type") == "model"
        ]
        if models:
            prompt = sum(opt_float(m, "promptTokens", "costs[]") or 0.0 for m in models)
            completion = sum(opt_float(m, "completionTokens", "costs[]") or 0.0 for m in models)
    metrics = opt_obj(opt_obj(view, "artifact", "call") or {}, "performanceMetrics", "artifact") or {}
    extra = {
        key: value
        for key in ("numUserInterrupted", "numAssistantInterrupted")
        if (value := opt_float(metrics, key, "performanceMetrics")) is not None
    }
    return {
        "llm_prompt_tokens": int(prompt) if prompt is not None and prompt >= 0 else None,
        "llm_completion_tokens": int(completion) if completion is not None and completion >= 0 else None,
        "tts_characters": int(characters) if characters is not None and characters >= 0 else None,
        "audio_s": duration_s,
        "extra": extra,
    }


def _recordings(view: dict[str, Any]) -> list[dict[str, Any]]:
    artifact = opt_obj(view, "artifact", "call") or {}
    recording = opt_obj(artifact, "recording", "artifact") or {}
    mono = opt_obj(recording, "mono", "artifact.recording") or {}
    found: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(url: str | None, channels: int, vantage: str, channel_map: dict[int, Role] | None = None) -> None:
        if url and url not in seen:
            seen.add(url)
            found.append(
                {
                    "source_url": url,
                    "channels": channels,
                    "vantage": vantage,
                    "channel_map": channel_map or {},
                }
            )

    add(
        opt_str(recording, "stereoUrl", "artifact.recording")
        or opt_str(artifact, "stereoRecordingUrl", "artifact")
        or opt_str(view, "stereoRecordingUrl", "call"),
        2,
        "vapi:stereo",
    )
    add(
        opt_str(mono, "combinedUrl", "artifact.recording.mono")
        or opt_str(artifact, "recordingUrl", "artifact")
        or opt_str(view, "recordingUrl", "call"),
        1,
        "vapi:mono",
    )
    add(opt_str(mono, "assistantUrl", "artifact.recording.mono"), 1, "vapi:assistant", {0: Role.AGENT})
    add(opt_str(mono, "customerUrl", "artifact.recording.mono"), 1, "vapi:customer", {0: Role.USER})
    return found


def _analysis(view: dict[str, Any]) -> dict[str, Any]:
    analysis = dict(opt_obj(view, "analysis", "call") or {})
    artifact = opt_obj(view, "artifact", "call") or {}
    for key in ("structuredOutputs", "scorecards"):
        if artifact.get(key) is not None:
            analysis[key] = artifact[key]
    return analysis


class VapiSource:
    """The Vapi adapter. ``replay_window_s`` bounds the timestamp of an HMAC-signed delivery."""

    name = "vapi"

    def __init__(
        self,
        *,
        replay_window_s: float = DEFAULT_REPLAY_WINDOW_S,
        signature_header: str = "x-signature",
        timestamp_header: str = "x-timestamp",
    ) -> None:
        self.replay_window_s = replay_window_s
        self.signature_header = signature_header
        self.timestamp_header = timestamp_header

    def identify(self, payload: Any) -> SourceEvent:
        """A report or a status update with its call (``{message: {type, call: {id}}}``), or a call object.

        Any other server message raises IgnoredEvent (acknowledged, not kept; see the module docstring).
        """
        body = req_obj(payload, "body")
        if "message" in body:
            message = req_obj(body["message"], "message")
            kind = req_str(message, "type", "message")
            if kind == REPORT:
                call = req_obj(message.get("call"), "message.call")
                return SourceEvent(
                    external_id=req_str(call, "id", "message.call"), event_type=REPORT, event_key=REPORT
                )
            carried = message.get("call")
            call_id = carried.get("id") if isinstance(carried, dict) else None
            if kind == STATUS_UPDATE and isinstance(call_id, str) and call_id:
                return SourceEvent(
                    external_id=call_id, event_type=kind, event_key=body_event_key(kind, payload)
                )
            raise _not_kept(kind)
        call_id = req_str(body, "id", "body")
        if "startedAt" not in body and "createdAt" not in body:
            raise PayloadError(
                "body: neither a Vapi server message ({message: ...}) nor a call object (with startedAt)",
                [{"loc": "body", "msg": "not a Vapi payload"}],
            )
        return SourceEvent(external_id=call_id, event_type="call", event_key=body_event_key("call", body))

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """Merge every event's call view (later over earlier), then map it."""
        if not events:
            raise PayloadError("no Vapi events to assemble")
        view: dict[str, Any] = {}
        # Status updates first: the report and the fetched call object win whenever they arrived.
        for raw in sorted(events, key=lambda event: not _is_status_update(event)):
            view = merge_present(view, _view(raw))
        return self._map(view, received_at)

    def _map(self, view: dict[str, Any], received_at: datetime | None) -> Assembled:
        warnings: Warnings = []
        call_id = req_str(view, "id", "call")
        start_text = opt_str(view, "startedAt", "call") or opt_str(view, "createdAt", "call")
        if start_text is None:
            # Vapi's own minimal end-of-call report is {call: {id, status, endedReason}}.
            started_at = received_start(received_at, "call.startedAt", warnings)
        else:
            if "startedAt" not in view:
                warnings.append("call.startedAt: missing; createdAt stands in")
            started_at = iso_datetime(start_text, "call.startedAt", warnings)
        ended_text = opt_str(view, "endedAt", "call")
        ended_at = iso_datetime(ended_text, "call.endedAt", warnings) if ended_text else None
        if ended_at is not None and ended_at < started_at:
            warnings.append("call.endedAt: before startedAt; end time dropped")
            ended_at = None
        duration_s = (ended_at - started_at).total_seconds() if ended_at else None
        turns, tool_calls = _messages(view, started_at.timestamp() * _MS, warnings)
        artifact = opt_obj(view, "artifact", "call") or {}
        metrics = opt_obj(artifact, "performanceMetrics", "artifact") or {}
        latency = _turn_latencies(turns, metrics, warnings)
        raw_reason = opt_str(view, "endedReason", "call")
        meta: dict[str, Any] = {key: view[key] for key in _CALL_META_KEYS if view.get(key) is not None}
        meta.update({key: artifact[key] for key in _ARTIFACT_META_KEYS if artifact.get(key) is not None})
        averages = {k: v for k, v in metrics.items() if k.endswith("Average") and isinstance(v, int | float)}
        if averages:
            meta["latency_averages_ms"] = averages
        assistant = opt_obj(view, "assistant", "call") or {}
        document: dict[str, Any] = {
            "source": "vapi",
            "external_id": call_id,
            "agent_id": opt_str(view, "assistantId", "call") or opt_str(assistant, "name", "assistant"),
            "direction": DIRECTIONS.get(opt_str(view, "type", "call") or "", Direction.UNKNOWN),
            "started_at": started_at,
            "ended_at": ended_at,
            "duration_s": duration_s,
            "end_reason": _end_reason(raw_reason),
            "end_reason_raw": raw_reason,
            "turns": turns,
            "tool_calls": tool_calls,
            "recordings": _recordings(view),
            "vendor_latency": latency,
            "cost": _cost_lines(view),
            "usage": _usage(view, duration_s),
            "vendor_analysis": _analysis(view),
            "metadata": {"vapi": meta},
        }
        return Assembled(call=build_call(document, "call"), warnings=tuple(warnings))

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """Vapi's plain ``x-vapi-secret``, or its HMAC credential (``x-signature`` of ``{timestamp}.{body}``).

        The HMAC credential's defaults are SHA-256, hex, payload ``{timestamp}.{body}``; a credential set
        to sign the body alone (no timestamp header) is accepted too, without a replay window.
        """
        plain = headers.get(SECRET_HEADER)
        if plain is not None:
            check_secret(secret, plain, SECRET_HEADER)
            return
        if self.signature_header not in headers:
            raise SignatureError(f"missing signature header {SECRET_HEADER} or {self.signature_header}")
        digest = require_header(headers, self.signature_header).removeprefix("sha256=")
        stamp = headers.get(self.timestamp_header, "").strip()
        if not stamp:
            check_signature(hmac_hex(secret, body), digest, self.signature_header)
            return
        check_fresh(
            epoch_seconds(stamp, self.timestamp_header), now, self.replay_window_s, self.timestamp_header
        )
        check_signature(hmac_hex(secret, stamp.encode() + b"." + body), digest, self.signature_header)


SOURCE = VapiSource()
