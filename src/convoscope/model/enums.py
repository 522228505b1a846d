"""Closed vocabularies of the canonical model.

Vendors send open sets (Vapi alone has dozens of end reasons); adapters map them onto these and keep the
raw value beside, so nothing is lost and every query can group on a small, stable set.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CallSource", "Direction", "EndReason", "MetricSource", "Modality", "Role", "SpanKind"]


class CallSource(StrEnum):
    """Where a call came from."""

    VAPI = "vapi"
    RETELL = "retell"
    ELEVENLABS = "elevenlabs"
    BLAND = "bland"
    WEBEX = "webex"
    PIPECAT = "pipecat"
    LIVEKIT = "livekit"
    GENERIC = "generic"
    SIMULATION = "simulation"


class Modality(StrEnum):
    """What kind of conversation a call is: spoken, or typed."""

    VOICE = "voice"
    CHAT = "chat"


class Role(StrEnum):
    """Who speaks a turn."""

    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"
    TOOL = "tool"


class Direction(StrEnum):
    """Which side placed the call; ``web`` for browser sessions that have no phone leg."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    WEB = "web"
    UNKNOWN = "unknown"


class EndReason(StrEnum):
    """Why a call ended, normalised across vendors (the raw value lives in ``end_reason_raw``)."""

    USER_HANGUP = "user_hangup"
    AGENT_HANGUP = "agent_hangup"
    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    IVR = "ivr"
    SILENCE_TIMEOUT = "silence_timeout"
    MAX_DURATION = "max_duration"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DIAL_FAILED = "dial_failed"
    ERROR = "error"
    OTHER = "other"
    UNKNOWN = "unknown"


class MetricSource(StrEnum):
    """What a metric value was measured from, so audio truth and transcript estimates never mix."""

    AUDIO = "audio"
    TRANSCRIPT = "transcript"
    VENDOR = "vendor"
    JUDGE = "judge"
    HUMAN = "human"


class SpanKind(StrEnum):
    """OpenTelemetry span kinds."""

    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"
