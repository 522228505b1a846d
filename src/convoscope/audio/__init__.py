"""Audio: reading and checking recordings. Imports only the model and the errors, never the store."""

from __future__ import annotations

from .probe import AudioInfo, probe_audio
from .segments import VAD_PARAMS_VERSION, ChannelActivity, Segment, Speech, VadParams

__all__ = [
    "VAD_PARAMS_VERSION",
    "AudioInfo",
    "ChannelActivity",
    "Segment",
    "Speech",
    "VadParams",
    "probe_audio",
]
