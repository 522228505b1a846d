"""Audio carried inside a JSON webhook, taken out of the body while it streams in.

ElevenLabs' ``post_call_audio`` is a small JSON envelope around one huge string: the whole call's MP3 in
base64 (up to the route's 100 MiB). Parsing such a body as one document holds it several times over (the
bytes, the string, the decoded audio, the copies kept for the outbox and the event list). Instead the body
goes through :class:`FieldSplitter`, a scanner that copies the envelope and hands the string at one path
(``data.full_audio``) to :class:`Base64Stream`, which decodes it in groups of four characters into a file
as it arrives. The envelope, with ``null`` where the string was, is then parsed as usual, and the event is
kept with :data:`STORED_AUDIO_KEY` (what became of the audio: a blob, or why there is none) in place of
the audio itself, so every later read of the event is small.

The scanner tracks only what tells it where it is (objects, arrays, keys, strings); it does not validate.
Whatever is invalid outside the audio string stays in the envelope and fails the envelope's parse, and
whatever is invalid inside it (a control character, an escape other than ``\\/``) fails the base64
decoding, so the split never accepts a body that a full parse would refuse.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import PayloadTooLarge
from .payload_fields import field_error, opt_float, opt_int, opt_str, req_obj, req_str
from .sources import Source

__all__ = [
    "STORED_AUDIO_KEY",
    "Base64Stream",
    "BodyCheck",
    "FieldSplitter",
    "InlineAudioSource",
    "StoredAudio",
    "carries_stored_audio",
    "read_stored_audio",
    "replace_audio",
]

STORED_AUDIO_KEY = "convoscope_audio"
"""Set beside the audio field when the event is received: ``{"sha256", "bytes", "format", ...}`` for audio
stored as a blob, ``{"error": ...}`` for audio that could not be. Refused in an event a sender posts."""

_STRUCTURE = re.compile(rb'["{}\[\],:]')
_STRING_STOP = re.compile(rb'["\\]')
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_MAX_KEY_BYTES = 256


class BodyCheck(Protocol):
    """A signature check over a body fed in pieces (``ingest.signing.HmacBodyCheck``)."""

    def update(self, chunk: bytes) -> None:
        """Hash the next piece."""
        ...

    def finish(self) -> None:
        """SignatureError unless the whole body fed is the one that was signed."""
        ...


@runtime_checkable
class InlineAudioSource(Source, Protocol):
    """A source whose events may carry a recording as a base64 string, received as a stream."""

    audio_field: tuple[str, ...]
    """The path of the base64 string in an event, e.g. ``("data", "full_audio")``."""

    def begin_verify(self, headers: Mapping[str, str], secret: str, *, now: datetime) -> BodyCheck:
        """Check the signature header (SignatureError now if missing, malformed or stale) and return the
        check the body is fed to."""
        ...


class _Frame:
    """One open object or array of the scanned document."""

    __slots__ = ("expect_key", "is_object", "key")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.key: bytes | None = None
        self.expect_key = is_object


def _ignore(_: bytes) -> None:
    return None


class FieldSplitter:
    """Copies a JSON document fed in pieces, except the string value at ``path``, which goes to ``sink``.

    The value's characters reach ``sink`` as they arrive, unquoted, with ``\\/`` unescaped (some encoders
    escape slashes); any other escape is passed on as is, for the sink to refuse. :meth:`envelope` is the
    document with ``null`` in the value's place. The envelope is held in memory and bounded by
    ``max_envelope`` (PayloadTooLarge); the value is not held at all.
    """

    def __init__(self, path: tuple[str, ...], sink: Callable[[bytes], None], *, max_envelope: int) -> None:
        self._path = tuple(part.encode() for part in path)
        self._where = ".".join(path)
        self._sink = sink
        self._max_envelope = max_envelope
        self._envelope = bytearray()
        self._stack: list[_Frame] = []
        self._state = "value"  # "value" (between tokens), "string" (in another string), "target"
        self._escape = False
        self._key: bytearray | None = None
        self._sink_now: Callable[[bytes], None] = _ignore
        self.found = 0
        """How many times the path held a string (more than once is refused by the caller)."""

    def feed(self, chunk: bytes) -> None:
        """Scan the next piece of the document."""
        pos, end = 0, len(chunk)
        while pos < end:
            if self._state == "value":
                pos = self._scan_structure(chunk, pos)
            elif self._state == "string":
                pos = self._scan_string(chunk, pos)
            else:
                pos = self._scan_target(chunk, pos)

    def envelope(self) -> bytes:
        """The document as fed, with ``null`` in place of the value at the path."""
        return bytes(self._envelope)

    def _emit(self, data: bytes) -> None:
        self._envelope += data
        if len(self._envelope) > self._max_envelope:
            raise PayloadTooLarge(
                f"the event around {self._where} is larger than {self._max_envelope} bytes "
                "(only the audio itself may exceed the JSON body bound)"
            )

    def _scan_structure(self, chunk: bytes, pos: int) -> int:
        match = _STRUCTURE.search(chunk, pos)
        if match is None:
            self._emit(chunk[pos:])
            return len(chunk)
        at = match.start()
        char = chunk[at : at + 1]
        top = self._stack[-1] if self._stack else None
        if char == b'"':
            if top is not None and top.is_object and top.expect_key:
                self._emit(chunk[pos : at + 1])
                self._state, self._key = "string", bytearray()
            elif self._at_path():
                self._emit(chunk[pos:at] + b"null")
                self._state = "target"
                self._sink_now = self._sink if self.found == 0 else _ignore
                self.found += 1
            else:
                self._emit(chunk[pos : at + 1])
                self._state, self._key = "string", None
            return at + 1
        self._emit(chunk[pos : at + 1])
        if char in (b"{", b"["):
            self._stack.append(_Frame(char == b"{"))
        elif char in (b"}", b"]"):
            if self._stack:
                self._stack.pop()
        elif top is not None and top.is_object:
            top.expect_key = char == b","
        return at + 1

    def _at_path(self) -> bool:
        stack = self._stack
        if len(stack) != len(self._path):
            return False
        pairs = zip(stack, self._path, strict=True)
        return all(frame.is_object and frame.key == part for frame, part in pairs)

    def _scan_string(self, chunk: bytes, pos: int) -> int:
        if self._escape:
            self._escape = False
            self._emit(chunk[pos : pos + 1])
            self._collect(chunk[pos : pos + 1])
            return pos + 1
        match = _STRING_STOP.search(chunk, pos)
        if match is None:
            self._emit(chunk[pos:])
            self._collect(chunk[pos:])
            return len(chunk)
        at = match.start()
        self._emit(chunk[pos : at + 1])
        if chunk[at : at + 1] == b"\\":
            self._collect(chunk[pos : at + 1])
            self._escape = True
            return at + 1
        self._collect(chunk[pos:at])
        if self._key is not None and self._stack:
            self._stack[-1].key = bytes(self._key) if len(self._key) <= _MAX_KEY_BYTES else None
        self._state, self._key = "value", None
        return at + 1

    def _collect(self, data: bytes) -> None:
        if self._key is not None and len(self._key) <= _MAX_KEY_BYTES:
            self._key += data

    def _scan_target(self, chunk: bytes, pos: int) -> int:
        if self._escape:
            self._escape = False
            escaped = chunk[pos : pos + 1]
            self._sink_now(b"/" if escaped == b"/" else b"\\" + escaped)
            return pos + 1
        match = _STRING_STOP.search(chunk, pos)
        if match is None:
            self._sink_now(chunk[pos:])
            return len(chunk)
        at = match.start()
        if at > pos:
            self._sink_now(chunk[pos:at])
        if chunk[at : at + 1] == b"\\":
            self._escape = True
        else:
            self._state = "value"
        return at + 1


class Base64Stream:
    """Strict base64 decoding of text fed in pieces, each decoded group of four written to ``out``.

    Strict as ``base64.b64decode(validate=True)``: only the alphabet, padding only at the end, a length
    that is a multiple of four. A fault does not raise (the body must still be read to its end, for its
    signature); it is kept in :attr:`error`, nothing more is written, and the caller refuses the event.
    """

    def __init__(self, out: Callable[[bytes], None]) -> None:
        self._out = out
        self._pending = b""
        self._consumed = 0
        self._padded_at: int | None = None
        self.error: str | None = None

    def feed(self, text: bytes) -> None:
        """Decode what ``text`` completes; keep the rest (under four characters) for the next piece."""
        if self.error is not None:
            return
        data = self._pending + text if self._pending else text
        usable = len(data) - len(data) % 4
        block, self._pending = data[:usable], data[usable:]
        if not block:
            return
        if self._padded_at is not None:
            self._fail(self._padded_at, "padding followed by more characters")
            return
        try:
            decoded = binascii.a2b_base64(block, strict_mode=True)
        except binascii.Error:
            self._fail_in(block)
            return
        if block.endswith(b"="):
            self._padded_at = self._consumed + block.index(b"=", len(block) - 2)
        self._consumed += usable
        self._out(decoded)

    def close(self) -> None:
        """Check the text ended on a whole group of four."""
        if self.error is not None or not self._pending:
            return
        bad = _NOT_BASE64.search(self._pending)
        if bad is not None:
            self._fail_at(self._pending, bad.start())
        else:
            total = self._consumed + len(self._pending)
            self.error = f"not valid base64: {total} characters, not a multiple of 4 (truncated?)"

    def _fail_in(self, block: bytes) -> None:
        bad = _NOT_BASE64.search(block)
        if bad is not None:
            self._fail_at(block, bad.start())
        else:
            padding = block.index(b"=") if b"=" in block else 0
            self._fail(self._consumed + padding, "padding followed by more characters")

    def _fail_at(self, block: bytes, index: int) -> None:
        self._fail(self._consumed + index, f"{block[index : index + 1]!r} is not base64")

    def _fail(self, at: int, what: str) -> None:
        self.error = f"not valid base64 at character {at}: {what}"


@dataclass(frozen=True)
class StoredAudio:
    """What the event keeps of audio stored as a blob when it was received."""

    sha256: str
    size: int
    format: str
    sample_rate: int
    channels: int
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        """The :data:`STORED_AUDIO_KEY` object of the kept event."""
        return {
            "sha256": self.sha256,
            "bytes": self.size,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration_s": self.duration_s,
        }


def _parent(payload: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    node = payload
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def carries_stored_audio(payload: Any, path: tuple[str, ...]) -> bool:
    """Whether a received event already has :data:`STORED_AUDIO_KEY` beside ``path`` (a sender may not
    name a blob: that would attach bytes someone else uploaded)."""
    parent = _parent(payload, path)
    return parent is not None and STORED_AUDIO_KEY in parent


def replace_audio(payload: Any, path: tuple[str, ...], stored: StoredAudio | str) -> None:
    """Put what became of the audio (a blob, or the reason there is none) in place of its base64."""
    parent = _parent(payload, path)
    if parent is None:
        raise field_error(".".join(path[:-1]) or "(body)", "expected an object")
    parent.pop(path[-1], None)
    parent[STORED_AUDIO_KEY] = stored.to_json() if isinstance(stored, StoredAudio) else {"error": stored}


def read_stored_audio(parent: Mapping[str, Any], where: str) -> StoredAudio | str:
    """The :data:`STORED_AUDIO_KEY` object beside the audio field: the blob, or why there is none."""
    path = f"{where}.{STORED_AUDIO_KEY}"
    ref = req_obj(parent.get(STORED_AUDIO_KEY), path)
    error = opt_str(ref, "error", path)
    if error is not None:
        return error
    numbers = {key: opt_int(ref, key, path) for key in ("bytes", "sample_rate", "channels")}
    duration_s = opt_float(ref, "duration_s", path)
    if any(value is None or value < 0 for value in numbers.values()) or duration_s is None:
        raise field_error(path, "expected sha256, bytes, format, sample_rate, channels and duration_s")
    return StoredAudio(
        sha256=req_str(ref, "sha256", path),
        size=numbers["bytes"] or 0,
        format=req_str(ref, "format", path),
        sample_rate=numbers["sample_rate"] or 0,
        channels=numbers["channels"] or 0,
        duration_s=duration_s,
    )
