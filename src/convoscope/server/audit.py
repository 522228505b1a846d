"""Recording the audit log from the server: a middleware notes each audited request once it is answered,
and a recorder writes the notes in batches.

**Why after the answer.** The entry carries the status the caller got (a refused write is recorded as
refused), which is only known once the response has started.

**Why batched.** Ingest is the busiest write: one audit row per request written on its own would be one
more fsync per request on the 202 path. The recorder gathers entries and writes them every
``flush_s`` (0.2 s by default) in one transaction, from its own thread; reading the log through the API
flushes first, so an entry is visible to the next request. A crash can lose at most the entries of the
last ``flush_s``; the acts they describe (a write committed to the outbox, a read) are not lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store.audit_meta import NewAuditEntry
from ..store.metadata import Principal

__all__ = ["AuditMiddleware", "AuditRecorder", "entry_for"]

log = logging.getLogger("convoscope.audit")

_MAX_BUFFERED = 100_000
"""Entries kept while the database refuses writes; past this the oldest are dropped, loudly."""


class AuditRecorder:
    """A buffer of audit entries and the thread that writes them."""

    def __init__(self, write: Callable[[Sequence[NewAuditEntry]], None], *, flush_s: float = 0.2) -> None:
        self._write = write
        self._flush_s = flush_s
        self._buffer: list[NewAuditEntry] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def record(self, entry: NewAuditEntry) -> None:
        """Queue an entry; it is written within ``flush_s``."""
        with self._lock:
            self._buffer.append(entry)
            if len(self._buffer) > _MAX_BUFFERED:
                del self._buffer[0]
                log.error("audit log writes are failing: the oldest buffered entry was dropped")
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Write every queued entry now (the audit API calls this before it reads)."""
        with self._write_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self._write(batch)
            except Exception:
                with self._lock:
                    self._buffer[:0] = batch
                raise

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            # Let a burst of requests gather into one write; closing cuts the wait short and writes.
            if self._stop.wait(self._flush_s):
                return
            try:
                self.flush()
            except Exception:
                log.exception("could not write the audit log; will try again")


def entry_for(
    principal: Principal,
    action: str,
    target: str,
    *,
    source: str,
    method: str | None = None,
    status: int | None = None,
    detail: dict[str, Any] | None = None,
) -> NewAuditEntry:
    """An entry for an act of ``principal``."""
    return NewAuditEntry(
        project_id=principal.project.id,
        at=datetime.now(UTC),
        actor=principal.actor,
        action=action,
        target=target,
        source=source,
        key_id=principal.key_id,
        role=principal.role.value,
        method=method,
        status=status,
        detail=detail or {},
    )


class AuditMiddleware:
    """Records every request :func:`~convoscope.server.auth.admit` marked for the audit log, with the
    status it was answered."""

    def __init__(self, app: ASGIApp, recorder: Callable[[], AuditRecorder]) -> None:
        self.app = app
        self._recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        status: list[int] = []

        async def noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            principal = state.get("principal")
            action = state.get("audit_action")
            if isinstance(principal, Principal) and action:
                route = getattr(scope.get("route"), "path", None)
                detail = {"route": route} if route else {}
                detail.update(state.get("audit_detail") or {})
                client = scope.get("client")
                self._recorder().record(
                    entry_for(
                        principal,
                        str(action),
                        str(scope.get("path", "")),
                        source=client[0] if client else "unknown",
                        method=str(scope.get("method", "")),
                        status=status[0] if status else 500,
                        detail=detail,
                    )
                )
