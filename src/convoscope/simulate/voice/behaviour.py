"""How a simulated caller behaves on a live line, frame by frame, from its persona.

The caller listens to what the telephone side plays. It knows the agent has finished a turn when the
agent's audio has been silent for ``end_of_turn_s`` after speech (voice activity on the agent's channel,
webrtcvad behind an energy gate: the same backend the project's audio analysis offers as its cheap
option), so a scripted caller needs no speech recognition at all. It then waits its ``reaction_s`` and
says its next line. While the agent talks it may barge in (``interruption_tendency`` is the chance per
agent turn, ``barge_in_after_s`` of agent speech is when; or at a keyword, heard by transcribing the
agent's turn so far every ``keyword_check_s`` of its speech) and may backchannel ("mm-hmm" every
``backchannel_every_s``) without taking the turn. When the agent stays silent past the persona's
patience it asks "Hello? Are you there?" once (or hangs up, as the persona says).

Everything here is plain state updated once per 20 ms frame, so one process can run hundreds of callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import webrtcvad  # type: ignore[import-untyped]

from .codec import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Pcm
from .playout import SILENT_FRAME

__all__ = ["AgentListener", "VoiceBehaviour", "frames_of"]


def frames_of(seconds: float) -> int:
    """Whole 20 ms frames in ``seconds`` (at least one for any positive time)."""
    return max(1, math.ceil(seconds * 1000 / FRAME_MS - 1e-9)) if seconds > 0 else 0


@dataclass(frozen=True)
class VoiceBehaviour:
    """The caller's timing on the line (from its persona; seconds)."""

    reaction_s: float = 0.3
    """How long the caller pauses after the agent's turn before it answers."""
    end_of_turn_s: float = 0.8
    """Agent silence after speech that the caller takes as the end of the agent's turn."""
    patience_s: float = 15.0
    prompt_when_idle: bool = True
    barge_in_chance: float = 0.0
    barge_in_after_s: float = 1.5
    barge_in_keyword: str | None = None
    """Barge in as soon as the agent is heard saying this (needs the caller's ears)."""
    keyword_check_s: float = 0.5
    """How much more agent speech the caller hears before transcribing the turn again for the keyword."""
    backchannel_every_s: float | None = None
    backchannel_text: str = "mm-hmm"
    max_call_s: float = 300.0


class AgentListener:
    """Voice activity on the agent's played audio, and the agent's turns as the caller perceives them."""

    def __init__(self, *, vad_mode: int = 2, floor_db: float = -50.0, end_of_turn_s: float = 0.8) -> None:
        self._vad = webrtcvad.Vad(vad_mode)
        # Energy of a 20 ms frame at the floor level, so the gate is one integer dot product.
        self._floor_energy = (10 ** (floor_db / 20) * 32768.0) ** 2 * FRAME_SAMPLES
        self._end_frames = frames_of(end_of_turn_s)
        self.turn_open = False
        self.turn_start = 0
        """Frame where the current (or last) agent turn began."""
        self.last_voice = -1
        """Frame of the agent's last voiced frame (-1: never)."""
        self.voiced_in_turn = 0
        self.turns_heard = 0

    def hear(self, frame_index: int, pcm: Pcm) -> bool:
        """Update on one played frame; True when this frame ended the agent's turn."""
        voiced = self._voiced(pcm)
        if voiced:
            if not self.turn_open:
                self.turn_open = True
                self.turn_start = frame_index
                self.voiced_in_turn = 0
            self.voiced_in_turn += 1
            self.last_voice = frame_index
            return False
        if self.turn_open and frame_index - self.last_voice >= self._end_frames:
            self.turn_open = False
            self.turns_heard += 1
            return True
        return False

    def speaking(self, frame_index: int, *, within: int = 2) -> bool:
        """Whether the agent is audibly talking now (voice in the last ``within`` frames)."""
        return self.turn_open and frame_index - self.last_voice < within

    def _voiced(self, pcm: Pcm) -> bool:
        if pcm is SILENT_FRAME:
            return False
        wide = pcm.astype(np.int64)
        if int(np.dot(wide, wide)) < self._floor_energy:
            return False
        return bool(self._vad.is_speech(pcm.tobytes(), SAMPLE_RATE))
