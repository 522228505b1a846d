"""A call's recordings under the project's policy: muted over masked words, dropped, or kept.

Muting reads the *masked* call: a word whose text is a marker was part of a personal value, and its
timing says where to silence the audio. Reading markers rather than detecting again is what makes a
recording that arrives after its transcript was stored (a vendor link fetched later, audio sent in a
second event) muted all the same. A turn masked without word timings is silenced whole; a masked turn
that has no timing at all cannot be placed on the recording, so such a recording is not kept.

The muted audio is a new blob (blobs are named by their content); the original, which holds the
unmasked speech, is deleted. A recording whose bytes are not here (a vendor link not fetched yet) is
left as it is: the fetch stores the call again, and it is muted then.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock

from ..errors import AudioFormatError
from ..model import Call, Recording, Role
from ..model.blob_ref import blob_uri, stored_sha
from ..store.blobs import BlobStore
from .audio import Silence, mute_audio
from .settings import RedactionSettings

__all__ = ["RecordingRedactor", "Said"]

log = logging.getLogger("convoscope.redaction")

DROPPED_KEY = "redaction_recordings_dropped"
"""Call metadata saying why recordings were not kept (so a missing recording is explained)."""
_REMEMBERED = 4096


@dataclass(frozen=True, slots=True)
class Said:
    """A masked stretch of the call clock and who said it."""

    start_s: float
    end_s: float
    role: Role


def masked_stretches(call: Call, settings: RedactionSettings) -> tuple[list[Said], bool]:
    """Where masked values were said, and whether some masked turn has no timing at all."""
    markers = settings.markers()
    said: list[Said] = []
    unplaced = False
    for turn in call.turns:
        if turn.words:
            said.extend(Said(w.start_s, w.end_s, turn.role) for w in turn.words if w.word in markers)
            if any(w.word in markers for w in turn.words):
                continue
        if not any(marker in turn.text for marker in markers):
            continue
        if turn.end_s > turn.start_s:
            said.append(Said(turn.start_s, turn.end_s, turn.role))
        else:
            unplaced = True
    return said, unplaced


def _silences(recording: Recording, said: Sequence[Said], padding_s: float) -> tuple[Silence, ...]:
    """The stretches on the recording's own clock, on the channels of the role who spoke them."""
    silences = []
    for stretch in said:
        channels = frozenset(ch for ch, role in recording.channel_map.items() if role is stretch.role)
        silences.append(
            Silence(
                max(0.0, stretch.start_s - recording.offset_s - padding_s),
                stretch.end_s - recording.offset_s + padding_s,
                channels if channels and (recording.channels or 0) > 1 else None,
            )
        )
    return tuple(sorted(silences, key=lambda s: (s.start_s, s.end_s)))


class RecordingRedactor:
    """Applies the recordings policy to calls, over the blob store."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._done: OrderedDict[tuple[str, tuple[Silence, ...]], str] = OrderedDict()
        self._lock = Lock()

    def apply(self, call: Call, settings: RedactionSettings) -> Call:
        """``call`` (already masked) with its recordings muted, dropped or kept as the setting says."""
        if settings.recordings == "keep" or not call.recordings:
            return call
        if settings.recordings == "drop":
            return self._drop(call, "the project keeps no recordings")
        said, unplaced = masked_stretches(call, settings)
        if unplaced and any(stored_sha(r) or r.source_url for r in call.recordings):
            return self._drop(call, "a masked turn has no timing to mute the recording by")
        if not said:
            return call
        kept: list[Recording] = []
        lost: list[str] = []
        for recording in call.recordings:
            muted = self._mute(recording, _silences(recording, said, settings.mute_padding_s), lost)
            if muted is not None:
                kept.append(muted)
        update: dict[str, object] = {"recordings": kept}
        if lost:
            update["metadata"] = {**call.metadata, DROPPED_KEY: "; ".join(lost)}
        return call.model_copy(update=update)

    def _drop(self, call: Call, why: str) -> Call:
        for recording in call.recordings:
            sha = stored_sha(recording)
            if sha is not None:
                self._blobs.delete(sha)
        return call.model_copy(update={"recordings": [], "metadata": {**call.metadata, DROPPED_KEY: why}})

    def _mute(self, recording: Recording, silences: tuple[Silence, ...], lost: list[str]) -> Recording | None:
        """The recording muted, or None when it cannot be (why goes to ``lost``): audio that cannot be
        muted is not kept rather than kept unmuted."""
        sha = stored_sha(recording)
        if sha is None or not silences:
            return recording
        with self._lock:
            known = self._done.get((sha, silences))
        if known is None:
            if not self._blobs.exists(sha):
                lost.append(f"recording {sha[:12]} is no longer here to be muted")
                return None
            try:
                muted = mute_audio(self._blobs.read(sha), silences, name=f"blob {sha[:12]}")
            except AudioFormatError as exc:
                log.warning("recording %s cannot be muted, not kept: %s", sha[:12], exc)
                self._blobs.delete(sha)
                lost.append(f"recording {sha[:12]} cannot be muted")
                return None
            known = self._blobs.put(muted)
            if known != sha:
                self._blobs.delete(sha)  # the original holds the unmasked speech
            with self._lock:
                self._done[(sha, silences)] = known
                self._done[(known, silences)] = known
                while len(self._done) > _REMEMBERED:
                    self._done.popitem(last=False)
        if known == sha:
            return recording
        return recording.model_copy(update={"uri": blob_uri(known), "sha256": known})
