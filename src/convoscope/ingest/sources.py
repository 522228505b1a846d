"""The vendor source interface: what one platform's adapter must provide to the webhook framework.

A vendor delivers a call as one or more events (Retell sends ``call_started``, ``call_ended`` and
``call_analyzed``; Bland an immediate and a corrected webhook; ElevenLabs a transcript and, apart, the
audio). The framework stores every raw event of a call, so nothing a vendor sends is lost, and rebuilds the
canonical call from all of them each time one arrives. An adapter is therefore three pure functions:
``identify`` (which call, which event: enough to store it idempotently), ``assemble`` (all stored events of
one call, and when the first was received → the call) and ``verify`` (the vendor's signature scheme).
Adapters do no I/O: downloading recordings, choosing the project and filling project defaults happen in
the server.

Each adapter lives in its own module ``convoscope.ingest.<name>`` and exposes its instance as the module
attribute ``SOURCE``; :func:`get_source` imports it on first use, so an adapter is registered by existing.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from ..errors import NotFound, PayloadError
from ..model import Call

__all__ = [
    "ATTACHMENT_SCHEME",
    "SOURCES",
    "SOURCE_NAMES",
    "Assembled",
    "IgnoredEvent",
    "Source",
    "SourceEvent",
    "all_sources",
    "body_event_key",
    "get_source",
    "json_or_text",
]

SOURCE_NAMES: tuple[str, ...] = ("retell", "vapi", "elevenlabs", "bland", "webex", "generic")
"""Every vendor source convoscope knows, each a module of this package."""

ATTACHMENT_SCHEME = "attachment:"
"""A recording whose ``source_url`` is ``attachment:<name>`` is the bytes ``Assembled.attachments[name]``."""


@dataclass(frozen=True)
class SourceEvent:
    """What the framework needs to know of one webhook/pulled event before storing it."""

    external_id: str
    """The vendor's call / conversation id (``identify`` raises PayloadError naming the field if missing)."""
    event_type: str
    """E.g. ``call_ended``, ``end-of-call-report``, ``post_call_audio``, ``immediate``, ``corrected``."""
    event_key: str
    """Identifies this exact event so a replay is harmless (vendor event id, else type + sha256 of body)."""


class IgnoredEvent(Exception):
    """Raised by ``identify`` for an event that is acknowledged and not kept, by the adapter's stated rule.

    Not an error: a vendor that posts many kinds of messages to one URL (Vapi's server messages) must get a
    2xx for those that are no part of a call's record, or it retries them and reports failures. The
    endpoint answers 200 with ``accepted: false`` and ``reason``; nothing is committed.
    """

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"{event_type}: {reason}")
        self.event_type = event_type
        self.reason = reason


@dataclass(frozen=True)
class Assembled:
    """The canonical call built from every stored event of one vendor call."""

    call: Call
    """``project_id``/``id`` are assigned later by the server."""
    attachments: Mapping[str, bytes] = field(default_factory=dict)
    """Audio carried inside a payload (ElevenLabs base64 MP3): a Recording whose ``source_url`` is
    ``attachment:<name>`` gets these bytes stored in the blob store (uri/sha256 filled in) by the server."""
    failed_attachments: Mapping[str, str] = field(default_factory=dict)
    """Audio a payload carried that could not be stored (not audio, say), by attachment name: why. The
    recording stays on the call without a ``uri``, and the server shows the reason as a failed job."""
    warnings: tuple[str, ...] = ()
    """Recoverable oddities; stored on the call as ``metadata["ingest_warnings"]``."""


@runtime_checkable
class Source(Protocol):
    """One vendor's adapter. Pure: no store, no network, no clock (``now`` is passed in)."""

    name: str
    """``retell``, ``vapi``, ``elevenlabs``, ``bland``, ``webex`` or ``generic``."""

    def identify(self, payload: Any) -> SourceEvent:
        """Which call and event ``payload`` (parsed JSON) is; PayloadError (→ 400/422) naming the problem.

        IgnoredEvent for an event the adapter acknowledges without keeping (a documented rule of its own).
        """
        ...

    def assemble(self, events: Sequence[Any], *, received_at: datetime | None = None) -> Assembled:
        """All stored events of one call, oldest first; later events complete earlier ones.

        ``received_at`` is when the first of them reached the server: the call's start when no event
        says when it started (``payload_fields.received_start``, with a warning), never a refusal.
        """
        ...

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime) -> None:
        """Raise SignatureError (→ 401) on a missing, bad or expired signature.

        ``headers`` keys are lower-case. Comparisons use ``hmac.compare_digest``; the replay window is a
        parameter of the adapter, not a constant buried in it.
        """
        ...


def body_event_key(event_type: str, payload: Any) -> str:
    """An event key for vendors that send no event id: the type plus the sha256 of the canonical body.

    The body is re-serialised with sorted keys so the same event re-sent with another key order or
    whitespace is still recognised as a replay. A body the encoder cannot write back (nested past its 255
    levels; the decoder reads up to 1024) is a PayloadError, not a 500.
    """
    try:
        canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        message = f"cannot be read back as JSON ({exc}); nest it at most 255 levels deep"
        raise PayloadError(f"(body): {message}", [{"loc": "(body)", "msg": message}]) from None
    return f"{event_type}:{hashlib.sha256(canonical).hexdigest()}"


def json_or_text(value: Any) -> Any:
    """A tool's arguments or result: vendors send stringified JSON by contract and plain text in practice.

    A string that parses as JSON becomes that JSON; any other value, or text that does not parse, is kept.
    """
    if not isinstance(value, str):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


SOURCES: dict[str, Source] = {}
"""The adapters loaded so far, by name; :func:`get_source` and :func:`all_sources` fill it."""


def get_source(name: str) -> Source:
    """The adapter called ``name``; NotFound for a name convoscope does not know."""
    loaded = SOURCES.get(name)
    if loaded is not None:
        return loaded
    if name not in SOURCE_NAMES:
        raise NotFound(f"unknown source {name!r}; known sources: {', '.join(SOURCE_NAMES)}")
    module = importlib.import_module(f"{__package__}.{name}")
    source = getattr(module, "SOURCE", None)
    if not isinstance(source, Source) or source.name != name:
        raise TypeError(f"source module {module.__name__} does not define a SOURCE named {name!r}")
    SOURCES[name] = source
    return source


def all_sources() -> dict[str, Source]:
    """Every adapter whose module exists, loaded (for the CLI listing and the docs)."""
    for name in SOURCE_NAMES:
        if name not in SOURCES:
            try:
                get_source(name)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__package__}.{name}":
                    raise
    return dict(SOURCES)
