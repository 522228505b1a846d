"""Audio: reading and checking recordings. Imports only the model and the errors, never the store."""

from __future__ import annotations

from .probe import AudioInfo, probe_audio

__all__ = ["AudioInfo", "probe_audio"]
