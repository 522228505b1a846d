"""What the scripted Pipecat agent says and how long each step takes, shared by the test and the agent.

Plain data with no Pipecat import: the test process stays free of Pipecat (and of the global tracer
provider the agent sets), and hands the script to the agent process as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STT_MODEL = "scripted-stt"
LLM_MODEL = "scripted-llm"
TTS_MODEL = "scripted-tts"


@dataclass(frozen=True)
class ToolUse:
    """A function the LLM calls before it replies, and what the pipeline's function returns."""

    call_id: str
    name: str
    arguments: dict[str, str]
    result: dict[str, str]
    prompt_tokens: int = 60
    completion_tokens: int = 12


@dataclass(frozen=True)
class Exchange:
    """One user utterance and the agent's scripted reply to it."""

    user: str
    agent: str
    prompt_tokens: int
    completion_tokens: int
    barge_in: bool = False
    """The caller starts the next utterance while the agent is still speaking this reply."""
    tool: ToolUse | None = None
    """A function call the LLM makes first; the pipeline runs it and the LLM replies with its result."""


@dataclass(frozen=True)
class Timing:
    """The scripted delays and lengths every span's figures follow from."""

    first_speech_after_s: float = 0.3
    """The caller's silence between the pipeline's start and the first utterance."""
    vad_start_s: float = 0.2
    """How much speech the VAD needed before it reported the start (Pipecat back-dates STT by it)."""
    vad_stop_s: float = 0.2
    """How much silence the VAD needed before it reported the stop."""
    speech_s: float = 0.4
    """Audio the caller sends per utterance."""
    trailing_silence_s: float = 0.1
    """Silence the segmented STT appends to each segment (it is billed audio too)."""
    stt_s: float = 0.05
    llm_s: float = 0.05
    tts_s: float = 0.03
    reply_audio_s: float = 0.3
    """Audio per TTS request; a barge-in reply gets ``barge_in_audio_s``."""
    barge_in_audio_s: float = 2.0
    barge_in_after_s: float = 0.3
    """How long the agent speaks before the caller barges in."""
    chunk_s: float = 0.02


@dataclass(frozen=True)
class AgentRun:
    """Everything the agent process needs: where to export, as whom, and what to say."""

    endpoint: str
    api_key: str
    service_name: str
    conversation_id: str
    exchanges: list[Exchange]
    timing: Timing = field(default_factory=Timing)
    span_attributes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentRun:
        return cls(
            **{
                **data,
                "exchanges": [
                    Exchange(**{**e, "tool": ToolUse(**e["tool"]) if e["tool"] else None})
                    for e in data["exchanges"]
                ],
                "timing": Timing(**data["timing"]),
            }
        )
