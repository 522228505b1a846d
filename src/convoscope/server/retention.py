"""The server's side of deletion and retention: one :class:`~convoscope.store.retention.Eraser` over
the services' stores, a deleted recording's waveform dropped from the UI's cache, and the periodic sweep
that applies every project's retention setting.

The sweep runs once shortly after the server starts, then every ``SWEEP_INTERVAL_S``; each pass runs in a
worker thread (the deletions wait for ClickHouse mutations) and a failure is logged and retried at the
next pass.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import Unsupported
from ..store.retention import Eraser, RetentionResult

if TYPE_CHECKING:
    from .services import Services

__all__ = ["SWEEP_INTERVAL_S", "RetentionSweeper", "eraser_of"]

log = logging.getLogger("convoscope.server.retention")

SWEEP_INTERVAL_S = 3600.0
"""Seconds between two passes of the retention sweep (the limits are in days)."""

_FIRST_PASS_S = 30.0


def eraser_of(services: Services) -> Eraser:
    """The eraser over the services' stores, forgetting deleted recordings' waveforms."""
    from .ui.peaks import peaks_cache  # the UI imports the services: not at module level

    return Eraser(services.store, services.meta, services.blobs, on_blob_deleted=peaks_cache.forget)


class RetentionSweeper:
    """Applies every project's retention setting periodically while the server runs."""

    def __init__(self, services: Services, *, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._services = services
        self.interval_s = interval_s

    def sweep(self) -> list[RetentionResult]:
        """One pass over every project with a setting; what each removed."""
        results = eraser_of(self._services).apply_all()
        for result in results:
            if result.calls_deleted or result.recordings_expired or result.raw_payload_rows:
                log.info("retention: %s", result.as_json())
        return results

    async def run(self) -> None:
        """Sweep after a short delay, then every ``interval_s``, until cancelled."""
        await asyncio.sleep(_FIRST_PASS_S)
        while True:
            try:
                await asyncio.to_thread(self.sweep)
            except Unsupported as exc:  # a limit of this deployment, said once a pass without a trace
                log.warning("the retention sweep cannot run here: %s", exc)
            except Exception:
                log.exception("the retention sweep failed; it runs again at the next pass")
            await asyncio.sleep(self.interval_s)
