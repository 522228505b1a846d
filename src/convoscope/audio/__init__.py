"""Audio: reading and checking recordings. Imports only the model and the errors, never the store."""

from __future__ import annotations

from .load import LoadedAudio, load_recording
from .probe import AudioInfo, probe_audio
from .segments import VAD_PARAMS_VERSION, ChannelActivity, Segment, Speech, VadParams
from .vad import SileroBackend, VadFrames, VoiceActivityDetector, WebRtcBackend, detect_speech

__all__ = [
    "VAD_PARAMS_VERSION",
    "AudioInfo",
    "ChannelActivity",
    "LoadedAudio",
    "Segment",
    "SileroBackend",
    "Speech",
    "VadFrames",
    "VadParams",
    "VoiceActivityDetector",
    "WebRtcBackend",
    "detect_speech",
    "load_recording",
    "probe_audio",
]
