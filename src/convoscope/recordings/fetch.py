"""The ``recording.fetch`` job: copy a vendor's recording into our blob store before its link expires.

Vendor links are short-lived (Retell's webhook guide speaks of ten minutes; Vapi's presigned URLs carry
an expiry), so a call stored with a recording that has a ``source_url`` but no ``uri`` gets this job
(:func:`plan_recording_fetch`). The handler downloads each such recording over HTTP with a size bound, a
per-read timeout and an overall deadline, checks that the bytes are audio (``convoscope.audio.probe``),
stores them content-addressed and re-stores the call with ``uri``/``sha256``/``format``/``channels``/
``duration_s`` filled in, through the job context's ``store_calls`` so the audio analysis gets planned.

Failures are sorted by whether waiting can help: a timeout, a connection error, a 5xx or a 429 raises
``JobRetry`` with an exponential backoff; an expired or forbidden link (4xx), a body over the bound or
bytes that are not audio fail the job for good, with a message that shows on the call. Messages name the
link without its query string, which for presigned URLs is a credential.

The download is written to a temporary file in the blob store as it arrives (``BlobStore.writer``), probed
there and renamed into place, so a recording of hundreds of megabytes never sits in memory.

A recording that is not stored here is not served; :func:`unstored_reason` says why in the words of its
job: ``pending`` (being fetched, or being stored), ``failed: <reason>``, or ``none`` (nothing here fetches
it). Audio that arrived inside a payload has no fetch; its outcome is the ``recording.store`` row that
``vendor_ingest`` writes on the call.

The link comes from whoever posted the webhook, so only http(s) is fetched (a redirect to another scheme
fails the job) and every connection, redirects included, goes through ``egress.GuardedTransport``: a host
that resolves to a private, loopback, link-local or multicast address fails the job unless its network
is in ``Settings.recording_fetch_allowed_networks``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..audio.probe import AudioInfo, probe_audio, probe_audio_file
from ..errors import AudioFormatError, ConvoscopeError, InputError, NotFound, PayloadTooLarge
from ..ingest.sources import ATTACHMENT_SCHEME
from ..model import Call, Recording
from ..model.blob_ref import blob_uri
from ..runtime.context import JobContext
from ..runtime.jobs import JobRetry
from ..runtime.kinds import RECORDING_FETCH, RECORDING_STORE
from ..store.base import CallStore
from ..store.blobs import BlobWriter
from ..store.jobqueue import JobStatus
from ..store.metadata import Job, JobSpec
from .egress import GuardedTransport, Network

__all__ = [
    "RECORDING_FETCH",
    "RECORDING_STORE",
    "FetchLimits",
    "RecordingFetchError",
    "RecordingFetchJob",
    "needs_fetch",
    "plan_recording_fetch",
    "unstored_reason",
]

_FETCHABLE = ("http://", "https://")
_RETRY_STATUSES = frozenset({408, 425, 429})


class RecordingFetchError(InputError):
    """A recording link that cannot give us the audio, and will not by waiting (expired, forbidden, gone)."""


@dataclass(frozen=True)
class FetchLimits:
    """Bounds of one download; ``retry_base_s`` doubles per attempt up to ``retry_max_s``."""

    max_bytes: int = 200 * 1024 * 1024
    read_timeout_s: float = 30.0
    deadline_s: float = 600.0
    retry_base_s: float = 10.0
    retry_max_s: float = 600.0
    chunk_bytes: int = 1024 * 1024

    def backoff_s(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: base, 2x base, 4x base, ... capped."""
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempt - 1)))


def needs_fetch(recording: Recording) -> bool:
    """A recording we only know by a vendor's http(s) link."""
    return recording.uri is None and (recording.source_url or "").startswith(_FETCHABLE)


def plan_recording_fetch(project_id: str, call: Call) -> list[JobSpec]:
    """The follow-up of a stored call: one fetch job when any recording is still only a vendor link."""
    if call.id is None or not any(needs_fetch(r) for r in call.recordings):
        return []
    return [JobSpec(kind=RECORDING_FETCH, call_id=call.id)]


def _shown(url: str) -> str:
    """The link without its query string or credentials (a presigned URL's signature is a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


class RecordingFetchJob:
    """The handler of ``recording.fetch`` jobs."""

    def __init__(
        self,
        *,
        store: CallStore,
        put_blob: Callable[[bytes], str],
        store_calls: Callable[[str, Sequence[Call]], object],
        limits: FetchLimits = FetchLimits(),
        allowed_networks: Sequence[Network] = (),
        blob_writer: Callable[[], BlobWriter] | None = None,
    ) -> None:
        """``blob_writer``, when given, streams each download to disk; without it a download is held in
        memory and stored with ``put_blob``."""
        self._store = store
        self._put_blob = put_blob
        self._blob_writer = blob_writer
        self._store_calls = store_calls
        self._limits = limits
        self._allowed_networks = tuple(allowed_networks)

    @classmethod
    def of(cls, context: JobContext, *, limits: FetchLimits | None = None) -> RecordingFetchJob:
        """The handler over the job context; the size bound is the server's upload bound."""
        chosen = limits or FetchLimits(max_bytes=context.settings.max_recording_bytes)
        return cls(
            store=context.store,
            put_blob=context.blobs.put,
            store_calls=lambda project_id, calls: context.store_calls(project_id, calls),
            limits=chosen,
            allowed_networks=context.settings.recording_fetch_allowed_networks,
            blob_writer=context.blobs.writer,
        )

    def __call__(self, job: Job) -> None:
        """Re-host every recording of the call that is only a link; re-store the call once."""
        stored = self._store.get_call(job.project_id, job.call_id)
        if stored is None:
            raise NotFound(f"call {job.call_id} not found")
        call = stored.call
        recordings: list[Recording] = []
        failure: ConvoscopeError | None = None
        for index, recording in enumerate(call.recordings):
            if not needs_fetch(recording):
                recordings.append(recording)
                continue
            try:
                recordings.append(self._rehost(recording, job.attempts))
            except ConvoscopeError as exc:
                recordings.append(recording)
                if failure is None or isinstance(exc, JobRetry):
                    failure = _at(index, exc)
        if recordings != list(call.recordings):
            self._store_calls(job.project_id, [call.model_copy(update={"recordings": recordings})])
        if failure is not None:
            raise failure

    def _rehost(self, recording: Recording, attempt: int) -> Recording:
        url = recording.source_url or ""
        if not url.startswith(_FETCHABLE):
            raise RecordingFetchError(f"{_shown(url)}: only http(s) links are fetched")
        name = urlsplit(url).path.rsplit("/", 1)[-1] or None
        if self._blob_writer is None:
            chunks: list[bytes] = []
            self._download(url, attempt, chunks.append)
            data = b"".join(chunks)
            info = _checked(recording, url, lambda: probe_audio(data, filename=name))
            sha = self._put_blob(data)
        else:
            with self._blob_writer() as writer:
                self._download(url, attempt, writer.write)
                writer.flush()
                info = _checked(recording, url, lambda: probe_audio_file(writer.path, filename=name))
                sha = writer.commit()
        return recording.model_copy(
            update={
                "uri": blob_uri(sha),
                "sha256": sha,
                "format": info.format,
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "duration_s": info.duration_s,
            }
        )

    def _download(self, url: str, attempt: int, write: Callable[[bytes], None]) -> None:
        """Write the body of ``url`` to ``write`` piece by piece, within the size bound and deadline."""
        limits = self._limits
        shown = _shown(url)
        timeout = httpx.Timeout(limits.read_timeout_s)
        started = time.monotonic()
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        transport = GuardedTransport(self._allowed_networks)
        try:
            with (
                httpx.Client(
                    transport=transport, timeout=timeout, follow_redirects=True, trust_env=False
                ) as client,
                client.stream("GET", url) as response,
            ):
                self._check_status(response, shown, attempt)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise PayloadTooLarge(
                        f"{shown}: recording of {declared} bytes is over the {limits.max_bytes}-byte limit"
                    )
                size = 0
                for chunk in response.iter_bytes(limits.chunk_bytes):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise PayloadTooLarge(f"{shown}: recording is over the {limits.max_bytes}-byte limit")
                    if time.monotonic() - started > limits.deadline_s:
                        raise JobRetry(
                            f"{shown}: download took over {limits.deadline_s:.0f}s",
                            after_s=limits.backoff_s(attempt),
                        )
                    write(chunk)
        except httpx.TimeoutException:
            raise JobRetry(
                f"{shown}: no data for {limits.read_timeout_s:.0f}s (timed out); will retry",
                after_s=limits.backoff_s(attempt),
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise RecordingFetchError(f"{shown}: redirected to a link that is not http(s): {exc}") from None
        except httpx.HTTPError as exc:
            raise JobRetry(
                f"{shown}: {type(exc).__name__}: {exc}; will retry", after_s=limits.backoff_s(attempt)
            ) from None

    def _check_status(self, response: httpx.Response, shown: str, attempt: int) -> None:
        status = response.status_code
        if status < 400:
            return
        reason = f"{shown} answered HTTP {status} {response.reason_phrase}".rstrip()
        if status >= 500 or status in _RETRY_STATUSES:
            raise JobRetry(f"{reason}; will retry", after_s=self._limits.backoff_s(attempt))
        if status in (401, 403):
            raise RecordingFetchError(f"{reason}: the link has expired or is not public")
        raise RecordingFetchError(reason)


def _checked(recording: Recording, url: str, probe: Callable[[], AudioInfo]) -> AudioInfo:
    """The downloaded file's description; AudioFormatError when it is not audio or not what was described."""
    try:
        info = probe()
    except AudioFormatError as exc:
        raise AudioFormatError(f"{_shown(url)} did not return audio: {exc}") from None
    if recording.channels is not None and recording.channels != info.channels:
        raise AudioFormatError(
            f"{_shown(url)}: the vendor describes {recording.channels} channel(s), "
            f"the file has {info.channels}"
        )
    return info


def unstored_reason(recording: Recording, jobs: Sequence[JobStatus]) -> str:
    """Why ``recording`` (not stored here) cannot be served, from the call's jobs.

    ``pending: ...`` while a fetch is queued or retrying, ``failed: <reason>`` once it failed for good or
    the audio sent with the call was not a recording, ``none: ...`` when nothing here will fetch it.
    """
    by_kind = {job.kind: job for job in jobs}
    url = recording.source_url or ""
    if needs_fetch(recording):
        job = by_kind.get(RECORDING_FETCH)
        if job is None or job.status in ("pending", "running"):
            last = f" (last try: {job.error})" if job is not None and job.error else ""
            return f"pending: being fetched from {_shown(url)}{last}"
        if job.status == "failed":
            return f"failed: {job.error}"
        return f"none: the fetch from {_shown(url)} ended without storing it"
    if url.startswith(ATTACHMENT_SCHEME):
        job = by_kind.get(RECORDING_STORE)
        if job is not None and job.status == "failed":
            return f"failed: {job.error}"
        return "pending: the audio sent with the call is being stored"
    return "none: only a reference elsewhere is known, which convoscope does not fetch"


def _at(index: int, exc: ConvoscopeError) -> ConvoscopeError:
    """The error, its message prefixed with the recording it is about."""
    message = f"recordings[{index}]: {exc}"
    if isinstance(exc, JobRetry):
        return JobRetry(message, after_s=exc.after_s)
    return type(exc)(message)
