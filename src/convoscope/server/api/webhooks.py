"""``POST /api/v1/ingest/{source}``: vendor webhooks, acknowledged only once the raw event is durable.

The project comes from the API key, as on every ``/api`` route: ``Authorization: Bearer <key>``, or, for
platforms whose webhook settings take a URL and nothing else (Retell, ElevenLabs, Bland), a ``?key=<key>``
query parameter on the webhook URL. When the project holds a secret for the source
(``convoscope sources configure``), the vendor's signature is verified on the raw body before anything
else is read (401 on a missing, bad or stale one). The event is then decoded (400 for invalid JSON),
identified, and the call is assembled from the call's stored events plus this one, so a payload that
cannot become a call is refused now with a 4xx naming the field, not failed later in the worker. Only
then is the raw body committed to the outbox (kind ``source:<name>``) and 202 returned; the worker
(``server/vendor_ingest.py``) stores the event and the call.

An event the adapter acknowledges without keeping (``IgnoredEvent``: Vapi's server messages that are no
part of a call's record, and those that ask their server for an answer) gets 200 with ``accepted: false``
and the ``reason``, and nothing is committed: a vendor that posts every message type to one URL must not
see refusals, or it retries them. The body has no key a vendor acts on (no ``results``, ``assistant``,
``destination`` or ``error``), so it answers nothing.

A source whose events carry a recording as base64 (ElevenLabs) is read as a stream instead
(``server/audio_intake.py``): the signature is checked and the audio decoded into the blob store piece by
piece, and the event is kept with a reference to the blob in place of the base64. A recording that is not
audio is reported in the 202's ``warnings`` and on the call as a failed ``recording.store`` job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from ...errors import AuthError
from ...ingest.inline_audio import InlineAudioSource
from ...ingest.sources import SOURCE_NAMES, IgnoredEvent, Source, get_source
from ...store.metadata import ProjectInfo
from ..audio_intake import AudioIntake
from ..auth import authenticate, current_project
from ..deps import get_services
from ..openapi import BEARER, KEY_QUERY, error_responses
from ..services import Services, limits_of
from ..vendor_ingest import (
    channel_map_setting,
    decode_event,
    events_with,
    outbox_kind,
    secret_setting,
)

__all__ = [
    "KEY_PARAM",
    "PULLED_HEADER",
    "accept_event",
    "accept_intake",
    "open_intake",
    "router",
    "webhook_project",
]

router = APIRouter(prefix="/api/v1", tags=["ingest"])


class _SourceConvertor(Convertor[str]):
    """Routes ``/ingest/{source}`` for any segment but a number, so ``/ingest/17`` (an ingest id) is
    never this route's: a method it lacks there is a 405 naming the id path's methods. An unknown
    vendor name still reaches the handler, whose 404 lists the known ones."""

    regex = "(?![0-9]+$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("vendor_source", _SourceConvertor())

KEY_PARAM = "key"
"""The query parameter that carries the API key for senders that cannot set an Authorization header."""

FEED_BYTES = 1024 * 1024
"""How much of a streamed body is gathered before it is handed to a worker thread to hash and decode."""

PULLED_HEADER = "x-convoscope-pulled"
"""Set to ``1`` by ``convoscope pull``: the event was fetched from the vendor's API with the user's own
vendor key, so there is no vendor signature to check. Honoured only with the key in the Authorization
header (a key in a webhook URL may have leaked into a log; the signature is what guards that route)."""


async def webhook_project(request: Request) -> ProjectInfo:
    """The project of the Bearer key, else of the ``?key=`` parameter; 401 when neither opens one."""
    if request.headers.get("authorization"):
        return await current_project(request)
    key = request.query_params.get(KEY_PARAM, "").strip()
    if not key:
        raise AuthError(
            f"missing API key: send 'Authorization: Bearer <key>' or add ?{KEY_PARAM}=<key> to the URL"
        )
    return (await authenticate(request, key)).project


def accept_event(
    services: Services,
    project_id: str,
    source: Source,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    verify_signature: bool = True,
) -> dict[str, Any]:
    """Verify, decode, identify and assemble one event, then commit it to the outbox."""
    if isinstance(source, InlineAudioSource):
        intake = open_intake(
            services, project_id, source, headers, now=now, verify_signature=verify_signature
        )
        try:
            intake.feed((body,))
            return accept_intake(services, project_id, source, intake, received_at=now)
        finally:
            intake.discard()
    meta = services.meta
    settings = meta.project_settings(project_id)
    secret = secret_setting(settings, source.name)
    if secret is not None and verify_signature:
        source.verify(headers, body, secret, now=now)
    payload = decode_event(body)
    return _accept(services, project_id, source, settings, body, payload, received_at=now)


def open_intake(
    services: Services,
    project_id: str,
    source: InlineAudioSource,
    headers: Mapping[str, str],
    *,
    now: datetime,
    verify_signature: bool = True,
) -> AudioIntake:
    """A streamed body's intake; the signature header is checked now, before the body is read (401)."""
    settings = services.meta.project_settings(project_id)
    secret = secret_setting(settings, source.name)
    check = source.begin_verify(headers, secret, now=now) if secret is not None and verify_signature else None
    return AudioIntake(
        source, services.blobs, check=check, max_envelope=services.settings.max_body_bytes, settings=settings
    )


def accept_intake(
    services: Services,
    project_id: str,
    source: InlineAudioSource,
    intake: AudioIntake,
    *,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Finish a streamed body and accept its event like :func:`accept_event`; its audio is stored last."""
    received = intake.finish()
    warnings = (
        [f"{received.audio}; the call keeps no recording of it"] if isinstance(received.audio, str) else []
    )
    return _accept(
        services,
        project_id,
        source,
        intake.settings,
        received.body,
        received.payload,
        store_blobs=intake.commit,
        warnings=warnings,
        received_at=received_at,
    )


def _no_blobs() -> list[str]:
    return []


def _accept(
    services: Services,
    project_id: str,
    source: Source,
    settings: dict[str, Any],
    body: bytes,
    payload: Any,
    *,
    store_blobs: Callable[[], list[str]] = _no_blobs,
    warnings: list[str] | None = None,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Identify and assemble the event (4xx naming the field), store its blobs, commit it, answer.

    ``received_at`` (default now) goes into the outbox row, so a call whose events carry no start time
    gets the same start, and id, here and in the worker.
    """
    meta = services.meta
    received = received_at or datetime.now(UTC)
    try:
        event = source.identify(payload)
    except IgnoredEvent as ignored:
        return {
            "accepted": False,
            "source": source.name,
            "event_type": ignored.event_type,
            "reason": ignored.reason,
        }
    events = events_with(meta, project_id, source.name, event, payload, received)
    call = events.build(
        source,
        project_id,
        limits=limits_of(services.settings),
        channel_map=channel_map_setting(settings, source.name),
    ).call
    blob_refs = store_blobs()
    ingest_id = meta.enqueue(
        project_id,
        kind=outbox_kind(source.name),
        payload=body,
        content_type="application/json",
        blob_refs=blob_refs,
        received_at=received,
    )
    services.worker.notify()
    return {
        "accepted": True,
        "ingest_id": ingest_id,
        "source": source.name,
        "external_id": event.external_id,
        "event_type": event.event_type,
        "id": call.id,
        "warnings": _warnings(call.metadata.get("ingest_warnings")) + (warnings or []),
    }


def _warnings(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


async def _receive_streamed(
    services: Services,
    project_id: str,
    source: InlineAudioSource,
    headers: Mapping[str, str],
    request: Request,
    *,
    now: datetime,
    verify_signature: bool,
) -> dict[str, Any]:
    """Read the body piece by piece into the intake (in a worker thread, a megabyte at a time)."""
    intake = await run_in_threadpool(
        open_intake, services, project_id, source, headers, now=now, verify_signature=verify_signature
    )
    try:
        pending: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            pending.append(chunk)
            size += len(chunk)
            if size >= FEED_BYTES:
                await run_in_threadpool(intake.feed, pending)
                pending, size = [], 0
        if pending:
            await run_in_threadpool(intake.feed, pending)
        return await run_in_threadpool(accept_intake, services, project_id, source, intake, received_at=now)
    finally:
        intake.discard()


@router.post(
    "/ingest/{source:vendor_source}",
    status_code=202,
    summary="Receive one vendor webhook event (retell, vapi, elevenlabs, bland, generic)",
    responses={
        200: {"description": "Acknowledged and not kept: an event that is no part of a call's record"},
        **error_responses(400, 422),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "security": [{BEARER: []}, {KEY_QUERY: []}],
    },
)
async def ingest_vendor_event(
    source: Annotated[
        str,
        Path(
            description=f"One of: {', '.join(SOURCE_NAMES)}; another name is a 404 listing them.",
            json_schema_extra={"enum": list(SOURCE_NAMES)},
        ),
    ],
    request: Request,
) -> JSONResponse:
    """Answer 202 with the call's id once the raw event is committed; the worker stores the call.

    An event the source acknowledges without keeping (Vapi's messages that are no call record) gets 200
    with ``accepted: false`` and the reason.

    ``GET /api/v1/ingest/{ingest_id}`` tells when it is stored. A replayed event is accepted again and
    changes nothing.
    """
    project = await webhook_project(request)
    adapter = get_source(source)
    services = get_services(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    pulled = "authorization" in headers and headers.get(PULLED_HEADER) == "1"
    if isinstance(adapter, InlineAudioSource):
        streamed = await _receive_streamed(
            services,
            project.id,
            adapter,
            headers,
            request,
            now=datetime.now(UTC),
            verify_signature=not pulled,
        )
        return JSONResponse(streamed, status_code=_status(streamed))
    body = await request.body()
    result = await run_in_threadpool(
        accept_event,
        services,
        project.id,
        adapter,
        headers,
        body,
        now=datetime.now(UTC),
        verify_signature=not pulled,
    )
    return JSONResponse(result, status_code=_status(result))


def _status(result: dict[str, Any]) -> int:
    """202 for an event committed to the outbox, 200 for one acknowledged and not kept."""
    return 202 if result["accepted"] else 200
