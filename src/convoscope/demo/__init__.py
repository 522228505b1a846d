"""Demo data: a generated week of calls and a few real recordings, for ``convoscope demo`` and the docs."""

from __future__ import annotations

from .data import DemoRecording, DemoToolCall, DemoTurn, demo_calls, demo_recordings, recording_bytes

__all__ = ["DemoRecording", "DemoToolCall", "DemoTurn", "demo_calls", "demo_recordings", "recording_bytes"]
