"""Webex Contact Center captures (pulled, never pushed) → the canonical call.

Schema followed: the Captures API (``POST /v1/captures/query``,
https://developer.webex.com/webex-contact-center/docs/api/v1/captures) answers ``data[]``, one entry per
task, ``{taskId, recording[]{id, attributes}, transcription[]{id, attributes}}``; a recording's
``attributes`` are ``RecordingAttributes`` (https://schemas.apis.io/schemas/webex/webex-recordingattributes/):
``fileName``, ``filePath`` (a presigned download URL), ``startTime``/``stopTime`` (epoch ms),
``participants``, ``channel1``/``channel2`` ∈ {Caller, Agent, VA, Others}, ``callType`` ∈ {main, consult,
va-main, va-consult}, ``sensitive``. Webex publishes no sample payload of this response; the shapes here
are read from the reference alone.

One ``data[]`` entry is one event; the task id is the call's id. Webex names what each channel carries,
so the channel map comes from the vendor: ``Caller`` is the user, ``VA`` (virtual agent) and ``Agent``
(human agent) are the agent side, ``Others`` stays unmapped. Transcripts are files behind presigned
links; their references are kept on the call, since an adapter does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..errors import PayloadError, SignatureError
from ..model import Role
from .payload_fields import (
    Warnings,
    after,
    build_call,
    epoch_datetime,
    field_error,
    opt_bool,
    opt_float,
    opt_list,
    opt_str,
    req_obj,
    req_str,
)
from .sources import Assembled, SourceEvent, body_event_key

__all__ = ["SOURCE", "WebexSource"]

EVENT_TYPE = "capture"

CHANNEL_ROLES: Mapping[str, Role] = {"caller": Role.USER, "va": Role.AGENT, "agent": Role.AGENT}

MS_PER_S = 1000.0


def _capture(raw: Any, where: str) -> dict[str, Any]:
    """One ``recording[]``/``transcription[]`` item's attributes, with its times as epoch seconds."""
    item = req_obj(raw, where)
    attributes = req_obj(item.get("attributes"), f"{where}.attributes")
    path = f"{where}.attributes"
    start_ms = opt_float(attributes, "startTime", path)
    stop_ms = opt_float(attributes, "stopTime", path)
    if start_ms is None:
        raise field_error(f"{path}.startTime", "missing")
    return {
        "id": opt_str(item, "id", where),
        "fileName": opt_str(attributes, "fileName", path),
        "filePath": opt_str(attributes, "filePath", path),
        "start_s": epoch_datetime(start_ms / MS_PER_S, f"{path}.startTime").timestamp(),
        "stop_s": epoch_datetime(stop_ms / MS_PER_S, f"{path}.stopTime").timestamp()
        if stop_ms is not None
        else None,
        "attributes": attributes,
        "where": path,
    }


def _channel_map(attributes: Mapping[str, Any], where: str) -> dict[int, Role]:
    labels = [opt_str(attributes, key, where) for key in ("channel1", "channel2")]
    return {
        channel: CHANNEL_ROLES[label.lower()]
        for channel, label in enumerate(labels)
        if label and label.lower() in CHANNEL_ROLES
    }


def _format(file_name: str | None) -> str | None:
    if not file_name or "." not in file_name:
        return None
    return file_name.rsplit(".", 1)[1].lower() or None


class WebexSource:
    """The Webex Contact Center adapter: one Captures API task entry per event."""

    name = "webex"

    def identify(self, payload: Any) -> SourceEvent:
        body = req_obj(payload, "(body)")
        return SourceEvent(
            external_id=req_str(body, "taskId", "(body)"),
            event_type=EVENT_TYPE,
            event_key=body_event_key(EVENT_TYPE, payload),
        )

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """The newest capture of a task wins (it has fresh presigned links); earlier ones add nothing."""
        if not events:
            raise PayloadError("no events to assemble")
        body = req_obj(events[-1], "(body)")
        task_id = req_str(body, "taskId", "(body)")
        warnings: Warnings = []
        recordings = [
            _capture(r, f"recording[{i}]") for i, r in enumerate(opt_list(body, "recording", "(body)"))
        ]
        transcripts = [
            _capture(t, f"transcription[{i}]")
            for i, t in enumerate(opt_list(body, "transcription", "(body)"))
        ]
        captures = recordings + transcripts
        if not captures:
            raise field_error("recording", f"task {task_id[:64]} has no recording or transcription capture")
        start_s = min(c["start_s"] for c in captures)
        stops = [c["stop_s"] for c in captures if c["stop_s"] is not None]
        for capture in captures:
            if capture["stop_s"] is not None and capture["stop_s"] < capture["start_s"]:
                warnings.append(f"{capture['where']}: stopTime is before startTime")
        started_at = epoch_datetime(start_s, "startTime")
        duration_s = max(0.0, max(stops) - start_s) if stops else None
        call = {
            "source": self.name,
            "external_id": task_id,
            "started_at": started_at,
            "ended_at": after(started_at, duration_s, "stopTime") if duration_s is not None else None,
            "duration_s": duration_s,
            "recordings": [self._recording(r, start_s) for r in recordings if r["filePath"]],
            "metadata": {
                "webex": {
                    "recordings": [self._reference(r) for r in recordings],
                    "transcriptions": [self._reference(t) for t in transcripts],
                }
            },
        }
        return Assembled(call=build_call(call, "webex capture"), warnings=tuple(warnings))

    @staticmethod
    def _recording(capture: Mapping[str, Any], call_start_s: float) -> dict[str, Any]:
        attributes, where = capture["attributes"], capture["where"]
        labelled = [opt_str(attributes, k, where) for k in ("channel1", "channel2")]
        call_type = opt_str(attributes, "callType", where)
        return {
            "source_url": capture["filePath"],
            "format": _format(capture["fileName"]),
            "channels": sum(1 for label in labelled if label) or None,
            "channel_map": _channel_map(attributes, where),
            "duration_s": max(0.0, capture["stop_s"] - capture["start_s"])
            if capture["stop_s"] is not None
            else None,
            "vantage": f"webex:{call_type}" if call_type else "webex",
            "offset_s": capture["start_s"] - call_start_s,
        }

    @staticmethod
    def _reference(capture: Mapping[str, Any]) -> dict[str, Any]:
        attributes, where = capture["attributes"], capture["where"]
        reference = {
            "id": capture["id"],
            "fileName": capture["fileName"],
            "filePath": capture["filePath"],
            "startTime": attributes.get("startTime"),
            "stopTime": attributes.get("stopTime"),
        }
        for key in ("channel1", "channel2", "callType"):
            reference[key] = opt_str(attributes, key, where)
        reference["sensitive"] = opt_bool(attributes, "sensitive", where)
        reference["participants"] = opt_list(attributes, "participants", where)
        return {k: v for k, v in reference.items() if v not in (None, [])}

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """Webex delivers captures only on request, never by webhook, so no signed delivery exists."""
        raise SignatureError(
            "webex captures are pulled through the Captures API; there is no webhook to verify"
        )


SOURCE = WebexSource()
