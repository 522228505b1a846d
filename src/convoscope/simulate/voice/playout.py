"""The telephone side's playout of the agent's audio, and the recording of both directions.

An agent sends its speech in bursts, usually faster than real time; the network buffers it and plays it
at 8 kHz. :class:`Playout` is that buffer on the call's sample clock: audio that arrives while nothing is
playing starts one frame after it arrived (the 20 ms packetisation of a real media path: a fixed,
documented offset that every measured gap carries equally), audio that arrives while earlier audio is
still queued follows it without a gap, a ``clear`` drops what has not been played yet, and a mark is
reported when the audio queued before it has been played (Twilio's echo rule) or dropped by a clear.

Placing a burst at its arrival sample instead of the next frame boundary keeps the recording's timing
exact to the sample rather than to 20 ms, which is what lets a test find an injected 500 ms delay in the
measured response gap within a few milliseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .codec import FRAME_SAMPLES, Pcm

__all__ = ["SILENT_FRAME", "Playout", "Recorder"]

SILENT_FRAME: Pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
SILENT_FRAME.flags.writeable = False
"""One frame of digital silence, shared (read-only): most frames of a call are silent on one side."""


@dataclass
class _Chunk:
    start: int
    """Sample index on the call clock where this audio plays."""
    pcm: Pcm

    @property
    def end(self) -> int:
        return self.start + len(self.pcm)


@dataclass
class Playout:
    """Agent audio queued on the call clock, emitted one 20 ms frame per tick."""

    _chunks: deque[_Chunk] = field(default_factory=deque)
    _marks: deque[tuple[int, str]] = field(default_factory=deque)
    _end: int = 0
    """Where the queued audio ends (0 when nothing was ever queued)."""
    _emitted: int = 0
    """Samples emitted so far: the next frame starts here."""

    @property
    def idle(self) -> bool:
        """Nothing queued beyond what has been played."""
        return self._end <= self._emitted and not self._marks

    def push(self, pcm: Pcm, arrival_sample: int) -> None:
        """Queue audio that arrived at ``arrival_sample``: after what is queued, or a frame after arrival."""
        if pcm.size == 0:
            return
        start = self._end if self._end > self._emitted else max(self._emitted, arrival_sample + FRAME_SAMPLES)
        self._chunks.append(_Chunk(start, pcm))
        self._end = start + len(pcm)

    def mark(self, name: str, arrival_sample: int) -> None:
        """A mark after the audio queued so far."""
        self._marks.append((max(self._end, arrival_sample), name))

    def clear(self) -> list[str]:
        """Drop the unplayed audio; returns the pending marks, which are echoed at once."""
        kept: deque[_Chunk] = deque()
        for chunk in self._chunks:
            if chunk.start < self._emitted:
                kept.append(_Chunk(chunk.start, chunk.pcm[: self._emitted - chunk.start]))
        self._chunks = kept
        self._end = min(self._end, self._emitted)
        names = [name for _, name in self._marks]
        self._marks.clear()
        return names

    def frame(self) -> tuple[Pcm, list[str]]:
        """The next 20 ms of what the caller hears, and the marks whose audio has now finished playing."""
        begin = self._emitted
        stop = begin + FRAME_SAMPLES
        if not self._chunks or self._chunks[0].start >= stop:
            self._emitted = stop
            return SILENT_FRAME, self._marks_until(stop)
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        while self._chunks and self._chunks[0].start < stop:
            chunk = self._chunks[0]
            lo = max(chunk.start, begin)
            hi = min(chunk.end, stop)
            if hi > lo:
                out[lo - begin : hi - begin] = chunk.pcm[lo - chunk.start : hi - chunk.start]
            if chunk.end <= stop:
                self._chunks.popleft()
            else:
                break
        self._emitted = stop
        return out, self._marks_until(stop)

    def _marks_until(self, stop: int) -> list[str]:
        played: list[str] = []
        while self._marks and self._marks[0][0] <= stop:
            played.append(self._marks.popleft()[1])
        return played


class Recorder:
    """Both directions on one clock: frame ``k`` of each channel covers the same 20 ms."""

    def __init__(self) -> None:
        self._caller: list[Pcm] = []
        self._agent: list[Pcm] = []

    def add(self, caller: Pcm, agent: Pcm) -> None:
        self._caller.append(caller)
        self._agent.append(agent)

    @property
    def frames(self) -> int:
        return len(self._caller)

    def agent_since(self, frame: int) -> Pcm:
        """The agent's channel from ``frame`` on (what the caller's ears transcribe)."""
        if frame >= len(self._agent):
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._agent[frame:])

    def stereo(self) -> Pcm:
        """Samples × 2: the caller on the left, the agent on the right."""
        if not self._caller:
            return np.zeros((0, 2), dtype=np.int16)
        return np.stack([np.concatenate(self._caller), np.concatenate(self._agent)], axis=1)
