"""Seeding the demo project: generated calls, and the shipped recordings put into the blob store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..demo.data import demo_calls, recording_bytes
from ..server.services import Services
from ..server.worker import assign_identity

__all__ = ["seed_demo"]


def seed_demo(services: Services, *, count: int) -> int:
    """Generate and store demo calls unless the default project already has calls; returns how many."""
    project_id = services.default_project.id
    if services.store.count_calls(project_id) > 0:
        return 0
    calls = []
    for call in demo_calls(now=datetime.now(UTC), count=count):
        recordings = []
        for recording in call.recordings:
            if recording.sha256 is not None:
                sha = services.blobs.put(recording_bytes(recording.sha256))
                recording = recording.model_copy(update={"uri": f"blob:{sha}"})
            recordings.append(recording)
        calls.append(assign_identity(project_id, call.model_copy(update={"recordings": recordings})))
    services.store_calls(project_id, calls, version=int(time.time() * 1_000_000))  # plans their jobs too
    return len(calls)
