"""Deleting calls everywhere, and keeping each project's data no longer than its retention setting says.

:class:`Eraser` is the one place a call is deleted, for the API, the command line and the retention
sweep alike: the event store's rows (``store.deletion``), the metadata that names the call
(``store.retention_meta``), the recordings no other call names, and whatever in-process cache the caller
registers (``on_blob_deleted``). Deletion is real: when it returns, no table and no file of the data
directory holds the call, and a restart brings nothing back.

**Retention** is a setting of the project (``settings.retention`` in its settings document):
``calls_days`` deletes whole calls that started longer ago; ``recordings_days`` lets go of the
recordings of older calls (the call stays, with ``has_recording`` false); ``raw_payloads_days`` deletes
the raw vendor events and stored outbox rows received longer ago. ``None`` keeps forever. The server
applies every project's setting periodically and ``convoscope retention apply`` does it on demand.

Why a sweep and not ClickHouse TTL: a TTL is one expression per table, so per-project limits would mean
a ``DELETE WHERE project_id = …`` rule per project in the DDL, rewritten (and, by default, materialized
over every part) whenever any project changes its setting; ``tool_calls`` and ``scores`` hold no call
start to expire by; TTL rows go at a merge, at no moment one can promise, and under ``FINAL`` a
``ReplacingMergeTree`` may show an older version of a call whose newest one expired; and the hourly
rollups would keep counting expired calls. The sweep deletes through the same path as ``delete``, so
every copy goes and the figures stay right.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError, NotFound, PayloadError, StoreError
from .blobs import BlobStore
from .deletion import CallKey, DeletedCalls, ExpiredRecordings
from .metadata import MetadataStore
from .retention_meta import ForgottenCall

__all__ = [
    "SETTINGS_PATH",
    "CallEraser",
    "DeletionResult",
    "Eraser",
    "RetentionResult",
    "RetentionSettings",
    "parse_before",
    "parse_retention",
    "retention_of",
]

log = logging.getLogger(__name__)

SETTINGS_PATH = ("retention",)
"""Where a project's retention setting lives in its settings document."""

_MAX_DAYS = 36_500


class RetentionSettings(BaseModel):
    """How long a project keeps each kind of data, in days; ``None`` keeps it forever."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls_days: int | None = Field(
        default=None, ge=1, le=_MAX_DAYS, strict=True, description="Delete calls that started longer ago."
    )
    recordings_days: int | None = Field(
        default=None,
        ge=1,
        le=_MAX_DAYS,
        strict=True,
        description="Delete the recordings of calls that started longer ago (the calls stay).",
    )
    raw_payloads_days: int | None = Field(
        default=None,
        ge=1,
        le=_MAX_DAYS,
        strict=True,
        description="Delete raw vendor payloads and stored ingest requests received longer ago.",
    )


def parse_retention(value: Any) -> RetentionSettings:
    """A retention setting from JSON; ``PayloadError`` naming each field that is wrong."""
    try:
        return RetentionSettings.model_validate(value)
    except ValidationError as exc:
        errors: list[dict[str, object]] = [
            {"loc": ".".join(str(part) for part in error["loc"]) or "retention", "msg": error["msg"]}
            for error in exc.errors()
        ]
        names = ", ".join(str(error["loc"]) for error in errors)
        raise PayloadError(f"invalid retention setting: {names}", errors) from None


def retention_of(meta: MetadataStore, project_id: str) -> RetentionSettings:
    """The project's retention setting (keep everything when it has none)."""
    stored = meta.project_settings(project_id).get(SETTINGS_PATH[0])
    return parse_retention(stored) if stored else RetentionSettings()


def parse_before(text: str, *, field_name: str = "before") -> datetime:
    """An ISO date (its midnight UTC) or date-time (naive read as UTC); ``PayloadError`` otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise PayloadError(
            f"{field_name} {text!r} is not an ISO date or date-time (e.g. 2026-01-31)",
            [{"loc": field_name, "msg": "expected an ISO date such as 2026-01-31"}],
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@runtime_checkable
class CallEraser(Protocol):
    """What the event store must offer to delete calls (``ClickHouseStore`` does)."""

    def find_call(self, project_id: str, call_id: str) -> CallKey | None: ...

    def calls_started_before(self, project_id: str, before: datetime) -> list[CallKey]: ...

    def delete_calls(self, project_id: str, keys: Sequence[CallKey]) -> DeletedCalls: ...

    def expire_recordings(self, project_id: str, before: datetime) -> ExpiredRecordings: ...

    def blobs_in_use(self, shas: Sequence[str]) -> set[str]: ...


@dataclass
class DeletionResult:
    """What one deletion removed."""

    deleted: int
    call_ids: list[str]
    blobs_deleted: int
    metadata_rows: int

    def as_json(self) -> dict[str, object]:
        return {
            "deleted": self.deleted,
            "call_ids": self.call_ids,
            "blobs_deleted": self.blobs_deleted,
            "metadata_rows": self.metadata_rows,
        }


@dataclass
class RetentionResult:
    """What applying one project's retention removed."""

    project_id: str
    calls_deleted: int = 0
    recordings_expired: int = 0
    blobs_deleted: int = 0
    raw_payload_rows: int = 0
    setting: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "project_id": self.project_id,
            "setting": self.setting,
            "calls_deleted": self.calls_deleted,
            "recordings_expired": self.recordings_expired,
            "blobs_deleted": self.blobs_deleted,
            "raw_payload_rows": self.raw_payload_rows,
        }


class Eraser:
    """Deletes calls from every store and applies retention settings."""

    def __init__(
        self,
        store: object,
        meta: MetadataStore,
        blobs: BlobStore,
        *,
        on_blob_deleted: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(store, CallEraser):
            raise StoreError("this call store cannot delete calls")
        self._store: CallEraser = store
        self._meta = meta
        self._blobs = blobs
        self._on_blob_deleted = on_blob_deleted

    def delete_call(self, project_id: str, call_id: str) -> DeletionResult:
        """Delete one call; ``NotFound`` naming it when the project has no such call."""
        key = self._store.find_call(project_id, call_id)
        if key is None:
            raise NotFound(f"call {call_id} not found")
        return self._delete(project_id, [key])

    def delete_before(self, project_id: str, before: datetime) -> DeletionResult:
        """Delete every call of the project that started before ``before``."""
        if before.tzinfo is None:
            raise InputError("before needs a timezone")
        return self._delete(project_id, self._store.calls_started_before(project_id, before))

    def _delete(self, project_id: str, keys: Sequence[CallKey]) -> DeletionResult:
        deleted = self._store.delete_calls(project_id, keys)
        if not deleted.count:
            return DeletionResult(0, [], 0, 0)
        forgotten = [ForgottenCall(frozenset({k.call_id}), k.source, k.external_id) for k in keys]
        # The ids of older versions (a corrected start) go with the first call: every id is forgotten.
        first = forgotten[0]
        forgotten[0] = ForgottenCall(first.ids | frozenset(deleted.ids), first.source, first.external_id)
        rows = self._meta.forget_calls(project_id, forgotten)
        blobs = self._drop_blobs(deleted.blobs)
        return DeletionResult(deleted.count, sorted(k.call_id for k in keys), blobs, rows)

    def _drop_blobs(self, shas: set[str]) -> int:
        """Delete the blobs no call and no waiting request names any more; returns how many went."""
        if not shas:
            return 0
        keep = self._store.blobs_in_use(sorted(shas)) | self._meta.pending_blob_refs()
        gone = 0
        for sha in sorted(shas - keep):
            if self._blobs.delete(sha):
                gone += 1
            if self._on_blob_deleted is not None:
                self._on_blob_deleted(sha)
        return gone

    def apply(self, project_id: str, *, now: datetime | None = None) -> RetentionResult:
        """Remove what is past the project's limits."""
        moment = now or datetime.now(UTC)
        setting = retention_of(self._meta, project_id)
        result = RetentionResult(project_id, setting=setting.model_dump(mode="json"))
        # Raw payloads first: they live in the metadata database, and expire even where the call store
        # refuses deletion (a ClickHouse cluster).
        if setting.raw_payloads_days is not None:
            result.raw_payload_rows = self._meta.expire_raw_payloads(
                project_id, moment - timedelta(days=setting.raw_payloads_days)
            )
        if setting.calls_days is not None:
            deleted = self.delete_before(project_id, moment - timedelta(days=setting.calls_days))
            result.calls_deleted = deleted.deleted
            result.blobs_deleted += deleted.blobs_deleted
        if setting.recordings_days is not None:
            expired = self._store.expire_recordings(
                project_id, moment - timedelta(days=setting.recordings_days)
            )
            result.recordings_expired = expired.calls
            result.blobs_deleted += self._drop_blobs(expired.blobs)
        return result

    def apply_all(self, *, now: datetime | None = None) -> list[RetentionResult]:
        """Apply every project's retention (projects without a setting are skipped)."""
        results: list[RetentionResult] = []
        for project in self._meta.list_projects():
            if not self._meta.project_settings(project.id).get(SETTINGS_PATH[0]):
                continue
            results.append(self.apply(project.id, now=now))
        return results
