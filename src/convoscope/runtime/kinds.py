"""The job kinds, named once below every capability.

A kind is the contract between the capability that queues a job and the one that waits for it: the
evaluators hold a call's evaluation until its audio analysis is settled, and the ingest path records the
outcome of storing an inline recording under the recordings capability's kind. Naming the kinds here lets
capabilities refer to each other's jobs without importing each other.
"""

from __future__ import annotations

__all__ = [
    "ALERTS_DELIVER",
    "AUDIO_ANALYZE",
    "EVALS_RUN",
    "OTLP_ASSEMBLE",
    "OTLP_KIND",
    "OTLP_LOGS_KIND",
    "RECORDING_FETCH",
    "RECORDING_STORE",
]

RECORDING_FETCH = "recording.fetch"
"""Download a recording the vendor gave only as a link, and keep it in the blob store."""

RECORDING_STORE = "recording.store"
"""The outcome of storing audio that came inside a payload: never queued, written on the call when the
call is stored (done, or failed with why the bytes are not a recording)."""

AUDIO_ANALYZE = "audio.analyze"
"""Turn-taking metrics from a stored call's recording."""

EVALS_RUN = "evals.run"
"""The project's evaluators over a stored call."""

OTLP_KIND = "otlp"
"""Outbox kind of a raw OTLP trace export."""

OTLP_LOGS_KIND = "otlp_logs"
"""Outbox kind of a raw OTLP log export (records joined to their spans when a call is assembled)."""

OTLP_ASSEMBLE = "otlp.assemble"
"""Assemble one conversation (job key = the conversation key) into a call."""

ALERTS_DELIVER = "alerts.deliver"
"""Deliver one alert event through one notifier (job key = ``f"{event id}:{notifier name}"``)."""
