"""Whether a call was spoken or typed, so that voice-only measures are never applied to a text chat.

The call model has no field for it: the source says it for every voice platform and framework, a stored
recording says it for any call, and the producers of text conversations (the GenAI trace mappers, chat
simulations) write ``metadata["modality"]``. A call from the generic REST ingest with none of these is
taken as voice, the product's first use; its sender can say ``"chat"`` in the metadata.
"""

from __future__ import annotations

from .call import Call
from .enums import CallSource, Modality

__all__ = ["MODALITY_KEY", "modality_of"]

MODALITY_KEY = "modality"
"""``metadata`` key a producer sets to ``voice`` or ``chat``."""

_VOICE_SOURCES = frozenset(
    {
        CallSource.VAPI,
        CallSource.RETELL,
        CallSource.ELEVENLABS,
        CallSource.BLAND,
        CallSource.WEBEX,
        CallSource.PIPECAT,
        CallSource.LIVEKIT,
    }
)


def modality_of(call: Call) -> Modality:
    """The call's modality: what its metadata says, else voice for a voice source or a recording."""
    said = call.metadata.get(MODALITY_KEY)
    if said in (Modality.VOICE.value, Modality.CHAT.value):
        return Modality(said)
    if call.source in _VOICE_SOURCES or call.recordings:
        return Modality.VOICE
    if call.source is CallSource.SIMULATION:
        return Modality.CHAT  # a voice simulation has its recording
    return Modality.VOICE
