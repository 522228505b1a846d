"""Audio: reading recordings, voice activity, turn-taking events and metrics. Imports only the model and
the errors, never the store."""

from __future__ import annotations

from .events import TURN_TAKING_PARAMS_VERSION, TurnTakingEvents, TurnTakingParams, extract_events
from .load import LoadedAudio, load_recording
from .metrics import OVERLAP_METRICS, not_scorable, turn_taking_metrics
from .probe import AudioInfo, probe_audio
from .report import (
    ANALYSIS_VERSION,
    AnalysisParams,
    TurnTakingAnalysis,
    analyze_audio,
    parse_overrides,
)
from .segments import VAD_PARAMS_VERSION, ChannelActivity, Segment, Speech, VadParams
from .transcript import transcript_metrics, transcript_segments
from .vad import SileroBackend, VadFrames, VoiceActivityDetector, WebRtcBackend, detect_speech

__all__ = [
    "ANALYSIS_VERSION",
    "OVERLAP_METRICS",
    "TURN_TAKING_PARAMS_VERSION",
    "VAD_PARAMS_VERSION",
    "AnalysisParams",
    "AudioInfo",
    "ChannelActivity",
    "LoadedAudio",
    "Segment",
    "SileroBackend",
    "Speech",
    "TurnTakingAnalysis",
    "TurnTakingEvents",
    "TurnTakingParams",
    "VadFrames",
    "VadParams",
    "VoiceActivityDetector",
    "WebRtcBackend",
    "analyze_audio",
    "detect_speech",
    "extract_events",
    "load_recording",
    "not_scorable",
    "parse_overrides",
    "probe_audio",
    "transcript_metrics",
    "transcript_segments",
    "turn_taking_metrics",
]
