"""ElevenLabs Agents (Conversational AI) post-call webhooks → the canonical call.

Schema followed, from ``elevenlabs/elevenlabs-python`` ``src/elevenlabs/types/``:
``get_conversation_response_model.py`` and the types it names
(``conversation_history_transcript_common_model_output.py``,
``conversation_history_transcript_tool_call_common_model.py``,
``conversation_history_transcript_tool_result_common_model.py``,
``conversation_history_metadata_common_model.py``, ``conversation_charging_common_model.py``,
``conversation_history_analysis_common_model.py``). The envelope and the signature follow
``elevenlabs/elevenlabs-docs`` ``fern/conversational-ai/pages/workflows/post-call-webhook.mdx`` and
``fern/snippets/webhook-hmac-authentication.mdx``.

ElevenLabs sends up to three events per conversation, each ``{type, event_timestamp, data}``:
``post_call_transcription`` (``data`` is the GET-conversation object), ``post_call_audio``
(``data.full_audio``, the whole conversation as base64 MP3) and ``call_initiation_failure`` (the call never
connected). They are assembled into one call: the newest transcription wins, audio becomes the call's
recording, a failure without a transcription becomes a call with its reason and no turns.

The server takes ``data.full_audio`` out of the audio event as the body streams in (``inline_audio``:
this adapter names the field in ``audio_field`` and checks the signature piece by piece with
``begin_verify``), stores it as a blob and keeps the event with ``data.convoscope_audio`` in its place;
such an event assembles into a recording that is already stored, or, when the bytes were not audio, one
that is not, with the reason in ``Assembled.failed_attachments``. An event that still carries the base64
(kept before this, or assembled directly) is decoded here as an attachment.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from ..errors import PayloadError, SignatureError
from ..model import Direction, EndReason, Role
from ..model.blob_ref import blob_uri
from .inline_audio import STORED_AUDIO_KEY, BodyCheck, StoredAudio, read_stored_audio
from .payload_fields import (
    Warnings,
    after,
    build_call,
    epoch_datetime,
    field_error,
    latency_stats,
    opt_bool,
    opt_float,
    opt_int,
    opt_list,
    opt_obj,
    opt_str,
    req_obj,
    req_str,
    turn_ends,
)
from .signing import HmacBodyCheck, check_fresh, epoch_seconds, parse_pairs, require_header
from .sources import ATTACHMENT_SCHEME, Assembled, SourceEvent, body_event_key

__all__ = ["SOURCE", "ElevenLabsSource"]

TRANSCRIPTION = "post_call_transcription"
AUDIO = "post_call_audio"
INITIATION_FAILURE = "call_initiation_failure"
EVENT_TYPES = (TRANSCRIPTION, AUDIO, INITIATION_FAILURE)
AUDIO_FIELD = ("data", "full_audio")

SIGNATURE_HEADER = "elevenlabs-signature"
HEADER_NAME = "ElevenLabs-Signature"

# Per-turn ``conversation_turn_metrics`` names that are one of our latency components. Every metric,
# mapped or not, is kept in ``vendor_latency`` under its own name.
TURN_METRIC_FIELDS: Mapping[str, str] = {
    "convai_llm_service_ttfb": "llm_ttft_s",
    "convai_tts_service_ttfb": "tts_ttfb_s",
    "convai_asr_trailing_service_latency": "stt_s",
}

ROLES: Mapping[str, Role] = {"user": Role.USER, "agent": Role.AGENT}

FAILURE_REASONS: Mapping[str, EndReason] = {"busy": EndReason.BUSY, "no-answer": EndReason.NO_ANSWER}

# ``metadata.termination_reason`` is free text ("Call ended by remote party", "end_call tool was called.",
# "Maximum duration exceeded"...): matched by the first phrase it contains, in this order.
TERMINATION_PHRASES: tuple[tuple[str, EndReason], ...] = (
    ("transfer", EndReason.TRANSFER),
    ("voicemail", EndReason.VOICEMAIL),
    ("max duration", EndReason.MAX_DURATION),
    ("maximum duration", EndReason.MAX_DURATION),
    ("silence", EndReason.SILENCE_TIMEOUT),
    ("inactivity", EndReason.SILENCE_TIMEOUT),
    ("end_call tool", EndReason.AGENT_HANGUP),
    ("agent", EndReason.AGENT_HANGUP),
    ("remote party", EndReason.USER_HANGUP),
    ("client disconnected", EndReason.USER_HANGUP),
    ("user", EndReason.USER_HANGUP),
    ("error", EndReason.ERROR),
)


def _end_reason(raw: str | None, status: str | None) -> EndReason:
    if status == "failed":
        return EndReason.ERROR
    if not raw:
        return EndReason.UNKNOWN
    lowered = raw.lower()
    return next((reason for phrase, reason in TERMINATION_PHRASES if phrase in lowered), EndReason.OTHER)


def _envelope(payload: Any) -> tuple[str, dict[str, Any]]:
    body = req_obj(payload, "(body)")
    kind = req_str(body, "type", "(body)")
    if kind not in EVENT_TYPES:
        raise field_error(
            "type", f"{kind[:64]!r} is not an ElevenLabs post-call event ({', '.join(EVENT_TYPES)})"
        )
    return kind, req_obj(body.get("data"), "data")


def _decode_audio(data: Mapping[str, Any]) -> bytes:
    encoded = req_str(data, "full_audio", "data")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise field_error("data.full_audio", "not valid base64") from None


def _audio(data: Mapping[str, Any]) -> bytes | StoredAudio | str:
    """An audio event's audio: stored on receipt (the blob, or why not), else still base64 in the event."""
    if STORED_AUDIO_KEY in data:
        return read_stored_audio(data, "data")
    return _decode_audio(data)


def _recording(name: str, audio: bytes | StoredAudio | str) -> dict[str, Any]:
    """The call's recording of the audio event; the MP3 is the mixed conversation and ElevenLabs documents
    no channel layout, so no channel map is set."""
    recording: dict[str, Any] = {"source_url": f"{ATTACHMENT_SCHEME}{name}", "format": "mp3"}
    if isinstance(audio, StoredAudio):
        recording |= {
            "uri": blob_uri(audio.sha256),
            "sha256": audio.sha256,
            "format": audio.format,
            "sample_rate": audio.sample_rate,
            "channels": audio.channels,
            "duration_s": audio.duration_s,
        }
    return recording


def _json_or_text(text: str | None) -> Any:
    """Tool arguments and results arrive as JSON strings; keep the parsed value, or the text if not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _turn_metrics(turn: Mapping[str, Any], where: str) -> dict[str, float]:
    """``conversation_turn_metrics`` as {name: seconds}; the SDK nests them under ``metrics``, the docs
    sample does not, so both are read."""
    block = opt_obj(turn, "conversation_turn_metrics", where)
    if block is None:
        return {}
    inner = opt_obj(block, "metrics", f"{where}.conversation_turn_metrics")
    metrics = inner if inner is not None else block
    out: dict[str, float] = {}
    for name, record in metrics.items():
        path = f"{where}.conversation_turn_metrics.{name}"
        value = opt_float(req_obj(record, path), "elapsed_time", path)
        if value is not None and value >= 0:
            out[name] = value
    return out


def _llm_tokens(turn: Mapping[str, Any], where: str) -> tuple[int, int]:
    """Prompt and completion tokens of a turn's ``llm_usage.model_usage`` (every model summed)."""
    usage = opt_obj(turn, "llm_usage", where)
    models = opt_obj(usage, "model_usage", f"{where}.llm_usage") if usage else None
    prompt = completion = 0
    for model, counts in (models or {}).items():
        path = f"{where}.llm_usage.model_usage.{model}"
        entry = req_obj(counts, path)
        for key in ("input", "input_cache_read", "input_cache_write"):
            part = opt_obj(entry, key, path)
            prompt += (opt_int(part, "tokens", f"{path}.{key}") or 0) if part else 0
        output = opt_obj(entry, "output_total", path)
        completion += (opt_int(output, "tokens", f"{path}.output_total") or 0) if output else 0
    return prompt, completion


class _Conversation:
    """The canonical fields read from one ``post_call_transcription`` ``data`` object."""

    def __init__(self, data: dict[str, Any], warnings: Warnings, sent_at: datetime | None) -> None:
        self.warnings = warnings
        self.data = data
        meta = opt_obj(data, "metadata", "data") or {}
        start = opt_float(meta, "start_time_unix_secs", "data.metadata")
        if start is not None:
            self.started_at = epoch_datetime(start, "data.metadata.start_time_unix_secs")
        elif sent_at is not None:
            warnings.append("data.metadata.start_time_unix_secs: missing; the event's time stands in")
            self.started_at = sent_at
        else:
            raise field_error("data.metadata.start_time_unix_secs", "missing, and no event_timestamp")
        duration = opt_float(meta, "call_duration_secs", "data.metadata")
        self.duration_s = duration if duration is not None and duration >= 0 else None
        self.meta = meta
        self.turns: list[dict[str, Any]] = []
        self.tools: dict[str, dict[str, Any]] = {}
        self.latency: dict[str, list[float]] = {}
        self.prompt_tokens = self.completion_tokens = 0
        self._read_transcript(opt_list(data, "transcript", "data"))

    def _read_transcript(self, transcript: list[Any]) -> None:
        starts: list[float] = []
        for i, raw in enumerate(transcript):
            where = f"data.transcript[{i}]"
            turn = req_obj(raw, where)
            at = opt_float(turn, "time_in_call_secs", where)
            if at is None or at < 0:
                raise field_error(f"{where}.time_in_call_secs", "missing or negative")
            starts.append(at)
        ends = turn_ends(starts, self.duration_s, "data.transcript", self.warnings)
        for i, raw in enumerate(transcript):
            self._read_turn(i, raw, starts[i], ends[i])

    def _read_turn(self, i: int, turn: dict[str, Any], start_s: float, end_s: float) -> None:
        where = f"data.transcript[{i}]"
        role_raw = req_str(turn, "role", where)
        role = ROLES.get(role_raw)
        if role is None:
            self.warnings.append(f"{where}.role: unknown role {role_raw[:32]!r}, kept as system")
            role = Role.SYSTEM
        metrics = _turn_metrics(turn, where)
        for name, value in metrics.items():
            self.latency.setdefault(name, []).append(value)
        prompt, completion = _llm_tokens(turn, where)
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.turns.append(
            {
                "index": i,
                "role": role,
                "text": opt_str(turn, "message", where) or "",
                "start_s": start_s,
                "end_s": end_s,
                "interrupted": bool(opt_bool(turn, "interrupted", where)),
                **{TURN_METRIC_FIELDS[n]: v for n, v in metrics.items() if n in TURN_METRIC_FIELDS},
            }
        )
        for j, raw in enumerate(opt_list(turn, "tool_calls", where)):
            self._read_tool_call(
                i, start_s, req_obj(raw, f"{where}.tool_calls[{j}]"), f"{where}.tool_calls[{j}]"
            )
        for j, raw in enumerate(opt_list(turn, "tool_results", where)):
            path = f"{where}.tool_results[{j}]"
            self._read_tool_result(i, start_s, req_obj(raw, path), path)

    def _read_tool_call(self, turn_index: int, at_s: float, call: dict[str, Any], where: str) -> None:
        request_id = req_str(call, "request_id", where)
        self.tools.setdefault(request_id, {"id": request_id}).update(
            turn_index=turn_index,
            name=req_str(call, "tool_name", where),
            arguments=_json_or_text(opt_str(call, "params_as_json", where)),
            start_s=at_s,
        )

    def _read_tool_result(self, turn_index: int, at_s: float, result: dict[str, Any], where: str) -> None:
        request_id = req_str(result, "request_id", where)
        entry = self.tools.get(request_id)
        if entry is None:
            self.warnings.append(f"{where}: tool result {request_id[:64]!r} has no matching tool call")
            entry = self.tools[request_id] = {
                "id": request_id,
                "turn_index": turn_index,
                "name": req_str(result, "tool_name", where),
                "start_s": at_s,
            }
        is_error = opt_bool(result, "is_error", where)
        latency = opt_float(result, "tool_latency_secs", where)
        entry["result"] = _json_or_text(opt_str(result, "result_value", where))
        entry["success"] = None if is_error is None else not is_error
        if latency is not None and latency >= 0:
            entry["end_s"] = entry["start_s"] + latency

    def fields(self) -> dict[str, Any]:
        data, meta = self.data, self.meta
        status = opt_str(data, "status", "data")
        termination = opt_str(meta, "termination_reason", "data.metadata")
        phone = opt_obj(meta, "phone_call", "data.metadata") or {}
        direction = opt_str(phone, "direction", "data.metadata.phone_call")
        ended_at = (
            after(self.started_at, self.duration_s, "data.metadata.call_duration_secs")
            if self.duration_s is not None
            else None
        )
        usage: dict[str, Any] = {"audio_s": self.duration_s}
        if self.prompt_tokens or self.completion_tokens:
            usage |= {
                "llm_prompt_tokens": self.prompt_tokens,
                "llm_completion_tokens": self.completion_tokens,
            }
        extra = {
            key: data[key]
            for key in ("user_id", "branch_id", "status", "has_audio", "has_user_audio", "has_response_audio")
            if data.get(key) is not None
        }
        extra |= {
            key: meta[key]
            for key in (
                "accepted_time_unix_secs",
                "main_language",
                "phone_call",
                "batch_call",
                "charging",
                "feedback",
                "error",
                "rag_usage",
                "initiation_trigger",
                "timezone",
            )
            if meta.get(key) is not None
        }
        client_data = opt_obj(data, "conversation_initiation_client_data", "data")
        if client_data is not None:
            extra["conversation_initiation_client_data"] = client_data
        return {
            "external_id": req_str(data, "conversation_id", "data"),
            "agent_id": opt_str(data, "agent_id", "data"),
            "agent_version": opt_str(data, "version_id", "data"),
            "direction": Direction(direction) if direction in ("inbound", "outbound") else Direction.UNKNOWN,
            "started_at": self.started_at,
            "ended_at": ended_at,
            "duration_s": self.duration_s,
            "end_reason": _end_reason(termination, status),
            "end_reason_raw": termination or (status if status == "failed" else None),
            "turns": self.turns,
            "tool_calls": list(self.tools.values()),
            "vendor_latency": {name: latency_stats(values) for name, values in self.latency.items()},
            "cost": self._cost(),
            "usage": usage,
            "vendor_analysis": opt_obj(data, "analysis", "data") or {},
            "metadata": {"elevenlabs": extra, "turn_end_s": "next turn's start"},
        }

    def _cost(self) -> list[dict[str, Any]]:
        """Credits (``metadata.cost``) and, where given, the fiat amount (``metadata.cost_fiat``, USD) and
        the LLM price (``charging.llm_price``, USD); each in its own unit, none converted."""
        meta = self.meta
        lines: list[dict[str, Any]] = []
        credits = opt_float(meta, "cost", "data.metadata")
        if credits is not None:
            lines.append({"product": "conversation", "amount": credits, "currency": "credits"})
        fiat = opt_float(meta, "cost_fiat", "data.metadata")
        if fiat is not None:
            lines.append({"product": "conversation", "amount": fiat, "currency": "USD"})
        charging = opt_obj(meta, "charging", "data.metadata") or {}
        llm_price = opt_float(charging, "llm_price", "data.metadata.charging")
        if llm_price is not None:
            lines.append({"product": "llm", "amount": llm_price, "currency": "USD"})
        return lines


def _event_fields(event: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What any event alone says: the conversation, the agent and, for lack of a start, the event's time."""
    at = opt_float(event, "event_timestamp", "(body)")
    if at is None:
        raise field_error("event_timestamp", "missing")
    return {
        "external_id": req_str(data, "conversation_id", "data"),
        "agent_id": opt_str(data, "agent_id", "data"),
        "started_at": epoch_datetime(at, "event_timestamp"),
    }


def _sent_at(event: Mapping[str, Any]) -> datetime | None:
    """The event's own ``event_timestamp``, when it carries one."""
    at = opt_float(event, "event_timestamp", "(body)")
    return None if at is None else epoch_datetime(at, "event_timestamp")


def _failure_fields(event: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    reason = opt_str(data, "failure_reason", "data")
    extra = {"failure": {k: v for k, v in data.items() if k not in ("conversation_id", "agent_id")}}
    return _event_fields(event, data) | {
        "duration_s": 0.0,
        "end_reason": FAILURE_REASONS.get(reason or "", EndReason.OTHER if reason else EndReason.DIAL_FAILED),
        "end_reason_raw": reason,
        "metadata": {"elevenlabs": extra},
    }


class ElevenLabsSource:
    """The ElevenLabs adapter: post-call transcription, audio and initiation-failure webhooks."""

    name = "elevenlabs"
    audio_field = AUDIO_FIELD

    def __init__(self, *, tolerance_s: float = 30 * 60) -> None:
        # ElevenLabs' own verification sample rejects signatures older than 30 minutes.
        self.tolerance_s = tolerance_s

    def identify(self, payload: Any) -> SourceEvent:
        kind, data = _envelope(payload)
        if kind == AUDIO:
            _audio(data)  # refuse bad audio before it is stored, not when assembling
        return SourceEvent(
            external_id=req_str(data, "conversation_id", "data"),
            event_type=kind,
            event_key=body_event_key(kind, payload),
        )

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """The newest event of each type, merged; every ElevenLabs event carries a time of its own
        (``event_timestamp``), so ``received_at`` is not needed here."""
        if not events:
            raise PayloadError("no events to assemble")
        warnings: Warnings = []
        latest: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = {}
        for raw in events:
            kind, data = _envelope(raw)
            latest[kind] = (raw, data)
        ids = {req_str(data, "conversation_id", "data") for _, data in latest.values()}
        if len(ids) > 1:
            raise PayloadError(f"events of different conversations assembled together: {sorted(ids)}")
        if TRANSCRIPTION in latest:
            event, data = latest[TRANSCRIPTION]
            fields = _Conversation(data, warnings, _sent_at(event)).fields()
            if INITIATION_FAILURE in latest:
                warnings.append("a call_initiation_failure arrived for a conversation that has a transcript")
        elif INITIATION_FAILURE in latest:
            fields = _failure_fields(*latest[INITIATION_FAILURE])
        else:
            fields = _event_fields(*latest[AUDIO])
            warnings.append("audio arrived before the transcription; the call has no transcript yet")
        attachments: dict[str, bytes] = {}
        failed: dict[str, str] = {}
        if AUDIO in latest:
            name = f"elevenlabs-{fields['external_id']}.mp3"
            audio = _audio(latest[AUDIO][1])
            if isinstance(audio, bytes):
                attachments[name] = audio
            elif isinstance(audio, str):
                failed[name] = audio
            fields["recordings"] = [_recording(name, audio)]
        call = build_call({"source": self.name, **fields}, "elevenlabs events")
        return Assembled(
            call=call, attachments=attachments, failed_attachments=failed, warnings=tuple(warnings)
        )

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """``ElevenLabs-Signature: t=<unix s>,v0=<hex HMAC-SHA256 of "<t>.<body>">``, within the tolerance."""
        check = self.begin_verify(headers, secret, now=now)
        check.update(body)
        check.finish()

    def begin_verify(self, headers: Mapping[str, str], secret: str, *, now: datetime) -> BodyCheck:
        """The header checked (present, well formed, fresh) before the body is read; the body is then fed
        to the returned check as it arrives (an audio event may be 100 MiB)."""
        pairs = parse_pairs(require_header(headers, SIGNATURE_HEADER), HEADER_NAME)
        stamp, digest = pairs.get("t"), pairs.get("v0")
        if not stamp or not digest:
            raise SignatureError(f"{HEADER_NAME}: expected t=<timestamp>,v0=<hex digest>")
        check_fresh(epoch_seconds(stamp, HEADER_NAME), now, self.tolerance_s, HEADER_NAME)
        return HmacBodyCheck(secret, stamp.encode() + b".", digest, HEADER_NAME)


SOURCE = ElevenLabsSource()
