"""Vendor events to stored calls: the server half of the webhook framework.

The endpoint (``api/webhooks.py``) checks an event and commits it to the outbox under the kind
``source:<name>``; the outbox worker hands such rows here. Each event is kept in the metadata store's
per-call event list (a replayed event is recognised there), the call is rebuilt from all its events, and
what the pure adapters cannot know is filled in here: the project's channel map for recordings whose map
the vendor does not document, audio carried inside a payload stored as a blob, and the ingest warnings.
The call is then stored through ``Services.store_calls``, which plans its follow-ups (recording fetch,
audio analysis, evaluators).

**A call's id is fixed by its first event.** The id is a UUIDv7 of the call's identity ``(project, source,
external_id)`` and a start time (``model/ids.py``). A vendor call's start can change after it was first
stored: when its first event says nothing of when it started, the receive time stands in (flagged in
``metadata.ingest_warnings``), and a later event that brings the real start replaces it. Deriving the id
from the final start would move the call to a new id, leaving its jobs (recording fetch, audio analysis,
evaluators: ``jobs`` rows keyed by call id) and its ``scores`` under an id that no longer resolves. So, as
OTLP assembly keeps a call's first start, the id is computed from the start the *first* event gave, real
or stand-in (:func:`anchored_id`), by :meth:`CallEvents.build`, which the endpoint and the worker both use;
the store keeps an id of the call's own identity whatever start the call now has
(``model.ids.stored_call_id``). The id never changes, so nothing has to follow it: the re-stored call
replaces its row, keeps its jobs and scores, and its follow-ups are planned again under the same id. For
such a call the id's time part is when its first event was received, not its start. Because the id is a
pure function of the kept events, a replay or a re-ingest still computes it without reading the store.

Audio carried inside a payload (ElevenLabs' ``post_call_audio``) is normally stored when the event is
received (``audio_intake``); the event then names the blob, or says why the bytes could not be stored.
Either way the call's ``recording.store`` job row says how it went: done, or failed with the reason, so
audio that was sent but is not playable never vanishes without a word on the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..audio.probe import probe_audio
from ..errors import AudioFormatError, InputError, PayloadError
from ..ingest.canonical import CallLimits
from ..ingest.sources import (
    ATTACHMENT_SCHEME,
    SOURCE_NAMES,
    Assembled,
    IgnoredEvent,
    Source,
    SourceEvent,
    get_source,
)
from ..model import Call, Recording, Role, call_id_for
from ..model.blob_ref import blob_uri, stored_sha
from ..runtime.kinds import RECORDING_STORE
from ..store.base import StoredCall
from ..store.jobqueue import NewSourceEvent, setting_at
from ..store.metadata import MetadataStore, OutboxItem

if TYPE_CHECKING:
    from .services import Services

__all__ = [
    "KIND_PREFIX",
    "CallEvents",
    "Prepared",
    "SourceEventIngest",
    "anchored_id",
    "attachment_outcome",
    "channel_map_setting",
    "check_bounds",
    "decode_event",
    "first_started_at",
    "keep_hosted",
    "outbox_kind",
    "parse_channel_map",
    "prepare_call",
    "register",
    "secret_setting",
    "source_of_kind",
    "stored_events",
]

log = logging.getLogger("convoscope.vendor_ingest")

KIND_PREFIX = "source:"
"""Outbox rows of this kind prefix hold one raw vendor event; ``calls`` rows hold canonical calls."""

WARNINGS_KEY = "ingest_warnings"


def outbox_kind(source: str) -> str:
    """The outbox kind of an event of ``source``."""
    return f"{KIND_PREFIX}{source}"


def source_of_kind(kind: str) -> str | None:
    """The source an outbox kind names, ``None`` for canonical rows."""
    return kind[len(KIND_PREFIX) :] if kind.startswith(KIND_PREFIX) else None


def secret_setting(settings: Mapping[str, Any], source: str) -> str | None:
    """The webhook secret a project set for ``source`` (``settings.sources.<source>.secret``)."""
    value = setting_at(dict(settings), ("sources", source, "secret"))
    return value if isinstance(value, str) and value else None


def parse_channel_map(value: Any, where: str) -> dict[int, Role]:
    """``"user,agent"``, ``["user", "agent"]`` or ``{"0": "user", "1": "agent"}`` → channel → role."""
    try:
        if isinstance(value, str):
            roles = [part.strip() for part in value.split(",") if part.strip()]
            return {index: Role(role) for index, role in enumerate(roles)}
        if isinstance(value, list):
            return {index: Role(role) for index, role in enumerate(value)}
        if isinstance(value, dict):
            return {int(channel): Role(role) for channel, role in value.items()}
    except (ValueError, TypeError):
        pass
    raise PayloadError(
        f"{where}: {value!r} is not a channel map; expected e.g. 'user,agent' (channel 0 first)",
        [{"loc": where, "msg": "expected roles in channel order (user, agent, system, tool)"}],
    )


def channel_map_setting(settings: Mapping[str, Any], source: str) -> dict[int, Role]:
    """The project's channel map for ``source`` recordings whose vendor documents none (empty if unset)."""
    value = setting_at(dict(settings), ("sources", source, "channel_map"))
    if value in (None, "", [], {}):
        return {}
    return parse_channel_map(value, f"sources.{source}.channel_map")


def decode_event(body: bytes) -> Any:
    """The JSON of an event body; invalid JSON is a 400 naming the position (Bland's docs sample is one)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body is not valid JSON: {exc}") from None


def _fill_channel_maps(
    recordings: Sequence[Recording], channel_map: dict[int, Role], warnings: list[str]
) -> list[Recording]:
    filled = []
    for i, recording in enumerate(recordings):
        if recording.channel_map or not channel_map or recording.channels == 1:
            filled.append(recording)
            continue
        if recording.channels is not None and recording.channels != len(channel_map):
            warnings.append(
                f"recordings[{i}]: the project's channel map names {len(channel_map)} channels, "
                f"the recording has {recording.channels}; map left unknown"
            )
            filled.append(recording)
            continue
        filled.append(recording.model_copy(update={"channel_map": channel_map}))
    return filled


def _store_attachments(
    recordings: Sequence[Recording],
    assembled: Assembled,
    put: Callable[[bytes], str],
    failures: dict[str, str],
) -> list[Recording]:
    """Audio that came inside a payload goes to the blob store; its recording points at our copy.

    Audio that cannot be stored keeps its recording without a ``uri``; why goes into ``failures``, by the
    recording's ``source_url``.
    """
    stored = []
    for recording in recordings:
        url = recording.source_url or ""
        if not url.startswith(ATTACHMENT_SCHEME) or recording.uri:
            stored.append(recording)
            continue
        name = url[len(ATTACHMENT_SCHEME) :]
        data = assembled.attachments.get(name)
        if data is None:
            failures[url] = assembled.failed_attachments.get(
                name, f"attachment {name!r} is not in the payload"
            )
            stored.append(recording)
            continue
        try:
            info = probe_audio(data, filename=name)
        except AudioFormatError as exc:
            failures[url] = f"attachment {name!r} is not audio: {exc}"
            stored.append(recording)
            continue
        sha = put(data)
        stored.append(
            recording.model_copy(
                update={
                    "uri": blob_uri(sha),
                    "sha256": sha,
                    "format": recording.format or info.format,
                    "sample_rate": recording.sample_rate or info.sample_rate,
                    "channels": recording.channels or info.channels,
                    "duration_s": recording.duration_s or info.duration_s,
                }
            )
        )
    return stored


@dataclass(frozen=True)
class Prepared:
    """An assembled call as it will be stored, and what became of the audio its payloads carried."""

    call: Call
    attachment_failures: Mapping[str, str]
    """Why each recording carried in a payload (by ``source_url``) is not stored, for those that are not."""

    def with_call(self, call: Call) -> Prepared:
        """The same outcome for ``call`` (the call after a later step, e.g. :func:`keep_hosted`)."""
        return Prepared(call, self.attachment_failures)


def attachment_outcome(prepared: Prepared) -> tuple[bool, str | None]:
    """Whether the call has recordings carried in payloads, and why the first unstored one is not stored.

    ``(False, None)``: nothing to report; ``(True, None)``: every such recording is stored here;
    ``(True, reason)``: one is not, and the call's ``recording.store`` job shows ``reason`` as its failure.
    """
    carried = [
        (index, recording)
        for index, recording in enumerate(prepared.call.recordings)
        if (recording.source_url or "").startswith(ATTACHMENT_SCHEME)
    ]
    for index, recording in carried:
        if stored_sha(recording) is None:
            url = recording.source_url or ""
            reason = prepared.attachment_failures.get(url, "the audio carried in the event is not stored")
            return True, f"recordings[{index}]: {reason}"
    return bool(carried), None


def check_bounds(call: Call, limits: CallLimits) -> None:
    """The per-call bounds of canonical ingest, applied to a call assembled from vendor events."""
    for name, items, bound in (
        ("turns", call.turns, limits.max_turns_per_call),
        ("tool_calls", call.tool_calls, limits.max_tool_calls_per_call),
    ):
        if len(items) > bound:
            raise PayloadError(
                f"{name}: the assembled call has {len(items)}; at most {bound}",
                [{"loc": name, "msg": f"{len(items)} items; at most {bound}", "type": "too_long"}],
            )


def prepare_call(
    assembled: Assembled,
    *,
    limits: CallLimits,
    channel_map: dict[int, Role],
    put_blob: Callable[[bytes], str] | None = None,
    started_at_of_first: datetime | None = None,
) -> Prepared:
    """The assembled call as stored: project channel map, attachments as blobs, warnings in metadata.

    Without ``put_blob`` (the endpoint's check before the outbox) attachments are left as they are.
    """
    warnings = list(assembled.warnings)
    call = assembled.call
    check_bounds(call, limits)
    recordings = _fill_channel_maps(call.recordings, channel_map, warnings)
    failures: dict[str, str] = {}
    if put_blob is not None:
        recordings = _store_attachments(recordings, assembled, put_blob, failures)
    update: dict[str, Any] = {"recordings": recordings}
    if started_at_of_first is not None and started_at_of_first != call.started_at:
        update["started_at"] = started_at_of_first
    if warnings:
        update["metadata"] = {**call.metadata, WARNINGS_KEY: warnings}
    return Prepared(call.model_copy(update=update), failures)


def keep_hosted(call: Call, stored: Call | None) -> Call:
    """``call`` with the copies already re-hosted for ``stored`` (same ``source_url``) carried over.

    A later event rebuilds the call from vendor payloads, which only know the vendor's links; without
    this the re-stored call would lose our copy and plan a new download of a link that may have expired.
    """
    if stored is None:
        return call
    hosted = {r.source_url: r for r in stored.recordings if r.uri and r.source_url}
    if not hosted:
        return call
    recordings = []
    for recording in call.recordings:
        ours = hosted.get(recording.source_url or "") if recording.uri is None else None
        if ours is None:
            recordings.append(recording)
        else:
            recordings.append(
                ours if ours.channel_map else ours.model_copy(update={"channel_map": recording.channel_map})
            )
    return call.model_copy(update={"recordings": recordings})


def _alone(source: Source, event: Any, received_at: datetime) -> Assembled | None:
    """The call one event makes by itself; ``None`` when it makes none alone."""
    try:
        return source.assemble([event], received_at=received_at)
    except PayloadError:
        return None


def first_started_at(
    source: Source, events: Sequence[Any], received_at: datetime | None = None
) -> datetime | None:
    """The start time the first event gave, so every later event of a call keeps that start.

    ``None`` (the full assembly decides) when the first event alone does not make a call, or makes one
    only provisionally, with warnings (ElevenLabs audio that came before its transcription knows only when
    it was sent; an event with no start at all starts when it was received): a start that is a guess
    must not pin the call, so a later event that brings the real one replaces it.
    """
    if len(events) < 2 or received_at is None:
        return None
    first = _alone(source, events[0], received_at)
    return None if first is None or first.warnings else first.call.started_at


@dataclass(frozen=True)
class CallEvents:
    """Every stored event of one vendor call, parsed, and when the first of them was received."""

    events: list[Any]
    received_at: datetime

    def assemble(self, source: Source) -> Assembled:
        """The call these events make; the receive time stands in for a start no event gives."""
        return source.assemble(self.events, received_at=self.received_at)

    def first_started_at(self, source: Source) -> datetime | None:
        """:func:`first_started_at` of these events."""
        return first_started_at(source, self.events, self.received_at)

    def build(
        self,
        source: Source,
        project_id: str,
        *,
        limits: CallLimits,
        channel_map: dict[int, Role],
        put_blob: Callable[[bytes], str] | None = None,
    ) -> Prepared:
        """The call as stored (:func:`prepare_call`), with the id it keeps for life (:func:`anchored_id`)."""
        assembled = self.assemble(source)
        first = assembled if len(self.events) == 1 else _alone(source, self.events[0], self.received_at)
        pinned = first.call.started_at if first is not None and not first.warnings else None
        prepared = prepare_call(
            assembled,
            limits=limits,
            channel_map=channel_map,
            put_blob=put_blob,
            started_at_of_first=pinned if len(self.events) > 1 else None,
        )
        call = prepared.call
        anchor = first.call.started_at if first is not None else call.started_at
        call_id = anchored_id(project_id, call, anchor)
        return prepared.with_call(call.model_copy(update={"id": call_id}))


def anchored_id(project_id: str, call: Call, first_start: datetime) -> str:
    """The id of a vendor call: its identity at the start its first event gave, real or stand-in.

    The id is fixed by the first event, so it never changes when a later event brings the real start
    (the store keeps an id of the call's identity, ``model.ids.stored_call_id``): the call's row, jobs and
    scores stay under one id for the life of the call.
    """
    return call_id_for(project_id, call.source, call.external_id, first_start)


def stored_events(meta: MetadataStore, project_id: str, source: str, external_id: str) -> CallEvents | None:
    """The call's kept events (the worker's view, this one included); ``None`` when none is kept."""
    records = meta.source_event_records(project_id, source, external_id)
    if not records:
        return None
    return CallEvents([orjson.loads(raw) for raw, _ in records], min(at for _, at in records))


def events_with(
    meta: MetadataStore,
    project_id: str,
    source: str,
    event: SourceEvent,
    payload: Any,
    received_at: datetime,
) -> CallEvents:
    """The call's stored events plus ``payload``, received at ``received_at`` (the endpoint's view)."""
    stored = stored_events(meta, project_id, source, event.external_id)
    if stored is None:
        return CallEvents([payload], received_at)
    return CallEvents([*stored.events, payload], min(stored.received_at, received_at))


@dataclass(frozen=True)
class _Identified:
    """An outbox row's event, recognised by its source: what the claim's one event write needs."""

    item: OutboxItem
    name: str
    source: Source
    event: SourceEvent

    def kept(self, payload: bytes) -> NewSourceEvent:
        """The event to keep, with ``payload`` (the row's, masked where the project redacts)."""
        return NewSourceEvent(
            self.item.project_id,
            self.name,
            self.event.external_id,
            self.event.event_key,
            payload,
            self.item.received_at,
        )


class SourceEventIngest:
    """The outbox worker's handler of ``source:<name>`` rows (registered by :func:`register`).

    The events of a claim are kept in one metadata transaction (a synced commit per event cost more than
    everything else a webhook does), then each row's call is rebuilt from every stored event of it.
    A claim of rows is stored in one insert per project: per-call inserts cost the column store far more
    than the assembly does. Within a claim the last row of a call wins.
    """

    def __init__(self, services: Services, limits: CallLimits) -> None:
        self._services = services
        self._limits = limits

    def __call__(self, items: Sequence[OutboxItem]) -> dict[int, str]:
        """Store the rows' calls; ``{row id: error}`` for rows whose events cannot make a call."""
        failed: dict[int, str] = {}
        identified: list[_Identified] = []
        for item in items:
            try:
                identified.append(_identify(item))
            except InputError as exc:
                failed[item.id] = str(exc)
        redact = self._services.redaction.event
        fresh = self._services.meta.add_source_events(
            [row.kept(redact(row.item.project_id, row.item.payload)) for row in identified]
        )
        batches: dict[str, dict[tuple[str, str], Prepared]] = {}
        versions: dict[str, int] = {}
        settings: dict[str, dict[str, Any]] = {}
        for row, new in zip(identified, fresh, strict=True):
            item = row.item
            try:
                prepared = self.prepare(row, new, settings)
            except InputError as exc:
                failed[item.id] = str(exc)
                continue
            call = prepared.call
            batches.setdefault(item.project_id, {})[(call.source, call.external_id)] = prepared
            version = int(item.received_at.timestamp() * 1_000_000)
            versions[item.project_id] = max(versions.get(item.project_id, 0), version)
        for project_id, batch in batches.items():
            calls = [prepared.call for prepared in batch.values()]
            self._services.store_calls(project_id, calls, version=versions[project_id])
            self._record_attachments(project_id, batch.values())
        return failed

    def _record_attachments(self, project_id: str, batch: Iterable[Prepared]) -> None:
        """Write the ``recording.store`` outcome of each call that carried audio (one upsert per batch)."""
        outcomes: dict[str, str | None] = {}
        for prepared in batch:
            carried, error = attachment_outcome(prepared)
            if carried:
                outcomes[_id_of(prepared.call)] = error
        self._services.meta.record_outcomes(project_id, RECORDING_STORE, outcomes)

    def prepare(self, row: _Identified, fresh: bool, settings: dict[str, dict[str, Any]]) -> Prepared:
        """Rebuild the call of a kept event from every stored event of it; InputError when it cannot be.

        ``fresh`` says whether the event was new; ``settings`` caches each project's settings document
        for the length of one claim.
        """
        item, name, source, event = row.item, row.name, row.source, row.event
        meta = self._services.meta
        if not fresh:
            log.info("%s event %s of %s replayed", name, event.event_key, event.external_id)
        kept = stored_events(meta, item.project_id, name, event.external_id)
        if kept is None:  # kept in this claim's transaction, so only a store failure gets here
            raise PayloadError(f"{name} event {event.event_key} of {event.external_id} was not kept")
        if item.project_id not in settings:
            settings[item.project_id] = meta.project_settings(item.project_id)
        prepared = kept.build(
            source,
            item.project_id,
            limits=self._limits,
            channel_map=channel_map_setting(settings[item.project_id], name),
            put_blob=self._services.blobs.put,
        )
        if fresh and len(kept.events) == 1:
            return prepared  # the call's first event: nothing of it is stored yet
        call = prepared.call
        stored = _call_of(self._services.store.get_call(item.project_id, _id_of(call)))
        return prepared.with_call(keep_hosted(call, stored))


def _identify(item: OutboxItem) -> _Identified:
    """The source and identity of a row's event; InputError when the row holds no readable event."""
    name = source_of_kind(item.kind)
    if name is None:
        raise PayloadError(f"outbox row {item.id} of kind {item.kind!r} is not a vendor event")
    source = get_source(name)
    try:
        event = source.identify(decode_event(item.payload))
    except IgnoredEvent as ignored:  # the endpoint commits no such event; an older row may hold one
        raise PayloadError(f"outbox row {item.id}: {ignored}") from None
    return _Identified(item, name, source, event)


def _id_of(call: Call) -> str:
    """The id :meth:`CallEvents.build` gave the call."""
    if call.id is None:
        raise PayloadError(f"the call of {call.source} {call.external_id} was built without an id")
    return call.id


def _call_of(stored: StoredCall | None) -> Call | None:
    return stored.call if stored is not None else None


def register(services: Services, limits: CallLimits) -> None:
    """Route every vendor source's outbox rows to :class:`SourceEventIngest`."""
    handler = SourceEventIngest(services, limits)
    for name in SOURCE_NAMES:
        services.worker.register_kind(outbox_kind(name), handler)
