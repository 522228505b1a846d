"""Receiving an event that carries a recording as base64 (ElevenLabs ``post_call_audio``), as a stream.

Such a body is up to 100 MiB. Read whole, parsed and decoded, it held the server at about ten times its
size; here it is never held at all. Each piece of the body, as it arrives, is fed to the signature check
(when the project has a secret) and to ``ingest.inline_audio.FieldSplitter``, which keeps the small JSON
envelope and passes the base64 string through a strict decoder into a temporary file in the blob store.
When the body has ended:

* a bad signature is a 401, checked before anything the body says is acted on;
* an envelope that is not JSON is a 400; audio that is not valid base64 (a character outside the
  alphabet, padding in the middle, a length that is not a multiple of four) is a 422 naming
  ``data.full_audio`` and the character: the request itself is malformed, and nothing is stored;
* decoded bytes that are not a recording (``audio.probe``) are not stored either, but the event is
  accepted: the call it completes is still a call, and the reason travels with the kept event, so the
  call shows a failed ``recording.store`` job and no recording instead of a 4xx only the sender saw;
* otherwise the temp file becomes a blob by rename once the event passed every other check.

The kept event names the blob (``data.convoscope_audio``) in place of the base64, so the outbox row, the
stored event list and every re-assembly of the call handle a few hundred bytes, not the audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..audio.probe import probe_audio_file
from ..errors import AudioFormatError
from ..ingest.inline_audio import (
    STORED_AUDIO_KEY,
    Base64Stream,
    BodyCheck,
    FieldSplitter,
    InlineAudioSource,
    StoredAudio,
    carries_stored_audio,
    replace_audio,
)
from ..ingest.payload_fields import field_error
from ..store.blobs import BlobStore
from .vendor_ingest import decode_event

__all__ = ["AudioIntake", "Received"]


@dataclass(frozen=True)
class Received:
    """An event read to its end: the body to keep, its JSON, and what became of its audio (if any)."""

    body: bytes
    payload: Any
    audio: StoredAudio | str | None
    """The stored blob, the reason the audio is not a recording, or None when the event had no audio."""


class AudioIntake:
    """One request's body, fed piece by piece (:meth:`feed`), then :meth:`finish`; :meth:`commit` stores
    the audio once the event is accepted, and :meth:`discard` (always call it) drops whatever was not."""

    def __init__(
        self,
        source: InlineAudioSource,
        blobs: BlobStore,
        *,
        check: BodyCheck | None,
        max_envelope: int,
        settings: dict[str, Any],
    ) -> None:
        self.settings = settings
        """The project's settings document, read once for the whole request."""
        self._field = source.audio_field
        self._check = check
        self._writer = blobs.writer()
        self._decoder = Base64Stream(self._writer.write)
        self._splitter = FieldSplitter(self._field, self._decoder.feed, max_envelope=max_envelope)
        self._audio: StoredAudio | str | None = None

    def feed(self, chunks: Iterable[bytes]) -> None:
        """The next pieces of the body, in order."""
        for chunk in chunks:
            if self._check is not None:
                self._check.update(chunk)
            self._splitter.feed(chunk)

    def finish(self) -> Received:
        """Check the signature and the event's JSON, and what the audio is; 401, 400 or 422 when refused."""
        if self._check is not None:
            self._check.finish()
        where = ".".join(self._field)
        envelope = self._splitter.envelope()
        payload = decode_event(envelope)
        if carries_stored_audio(payload, self._field):
            parent = ".".join(self._field[:-1])
            raise field_error(
                f"{parent}.{STORED_AUDIO_KEY}" if parent else STORED_AUDIO_KEY,
                "is set by convoscope when audio is received; an event may not carry it",
            )
        if self._splitter.found == 0:
            self._writer.discard()
            return Received(envelope, payload, None)
        if self._splitter.found > 1:
            raise field_error(where, "given more than once")
        self._decoder.close()
        if self._decoder.error is not None:
            raise field_error(where, self._decoder.error)
        self._audio = self._describe(where)
        replace_audio(payload, self._field, self._audio)
        return Received(orjson.dumps(payload), payload, self._audio)

    def _describe(self, where: str) -> StoredAudio | str:
        """The decoded file as a blob-to-be, or why it is not a recording (and then it is dropped)."""
        self._writer.flush()
        try:
            info = probe_audio_file(self._writer.path)
        except AudioFormatError as exc:
            self._writer.discard()
            return f"{where}: {exc}"
        return StoredAudio(
            sha256=self._writer.sha256(),
            size=self._writer.size,
            format=info.format,
            sample_rate=info.sample_rate,
            channels=info.channels,
            duration_s=info.duration_s,
        )

    def commit(self) -> list[str]:
        """Store the audio as a blob (after every other check passed); the blobs the event refers to."""
        if not isinstance(self._audio, StoredAudio):
            return []
        return [self._writer.commit()]

    def discard(self) -> None:
        """Drop the temp file unless it was committed; safe to call more than once."""
        self._writer.discard()
