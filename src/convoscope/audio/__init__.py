"""Audio: reading recordings, voice activity, turn-taking events and metrics. Imports only the model and
the errors, never the store."""

from __future__ import annotations

import typing

from ..lazy import lazy_getattr

if typing.TYPE_CHECKING:
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
else:
    # Names load on first use: reading a recording's header (``probe``, used by ingest) or one analysis
    # step must not import every other step with numpy, soxr and onnxruntime (most of a server's start).
    _HOMES = {
        "TURN_TAKING_PARAMS_VERSION": ".events",
        "TurnTakingEvents": ".events",
        "TurnTakingParams": ".events",
        "extract_events": ".events",
        "LoadedAudio": ".load",
        "load_recording": ".load",
        "OVERLAP_METRICS": ".metrics",
        "not_scorable": ".metrics",
        "turn_taking_metrics": ".metrics",
        "AudioInfo": ".probe",
        "probe_audio": ".probe",
        "ANALYSIS_VERSION": ".report",
        "AnalysisParams": ".report",
        "TurnTakingAnalysis": ".report",
        "analyze_audio": ".report",
        "parse_overrides": ".report",
        "ChannelActivity": ".segments",
        "Segment": ".segments",
        "Speech": ".segments",
        "VAD_PARAMS_VERSION": ".segments",
        "VadParams": ".segments",
        "transcript_metrics": ".transcript",
        "transcript_segments": ".transcript",
        "SileroBackend": ".vad",
        "VadFrames": ".vad",
        "VoiceActivityDetector": ".vad",
        "WebRtcBackend": ".vad",
        "detect_speech": ".vad",
    }

    __getattr__ = lazy_getattr(__name__, globals(), _HOMES)


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
