"""The simulated caller's voice and ears as the settings configure them.

Offline by default: espeak-ng speaks, and an LLM caller hears through the bundled Whisper model (chosen
by the run when it needs ears). A configured OpenAI-compatible TTS or STT endpoint replaces either, for
every voice run of the server or the CLI alike.
"""

from __future__ import annotations

from typing import Any

from ...config import Settings
from .session import Transcribe
from .stt import HttpTranscriber
from .tts import HttpSpeaker, Speaker

__all__ = ["ears_from_settings", "speaker_from_settings", "voice_io"]


def _secret(value: object) -> str | None:
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else None


def speaker_from_settings(settings: Settings) -> Speaker | None:
    """The TTS endpoint's speaker, or None for espeak-ng."""
    if not settings.voice_tts_base_url:
        return None
    return HttpSpeaker(
        settings.voice_tts_base_url,
        api_key=_secret(settings.voice_tts_api_key),
        model=settings.voice_tts_model,
        voice=settings.voice_tts_voice,
    )


def ears_from_settings(settings: Settings) -> Transcribe | None:
    """The STT endpoint's transcriber, or None (the run then takes Whisper when it needs ears)."""
    if not settings.voice_stt_base_url:
        return None
    transcriber = HttpTranscriber(
        settings.voice_stt_base_url,
        api_key=_secret(settings.voice_stt_api_key),
        model=settings.voice_stt_model,
    )
    return transcriber.transcribe


def voice_io(settings: Settings) -> dict[str, Any]:
    """``run_suite``'s voice keywords (``speaker``, ``transcribe``) from the settings."""
    return {"speaker": speaker_from_settings(settings), "transcribe": ears_from_settings(settings)}
