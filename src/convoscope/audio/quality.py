"""The agent's audio quality on the call: clipping, measured on its own speech.

Turn-taking metrics read only where each party spoke; a voice that is saturated (a TTS or a gain stage
driven past full scale) is heard as distorted and is cut or clicks, which no segment shows. This metric
reads the agent's samples inside its speech segments: the share at or above ``clipping_level`` of full
scale, with the worst segments as evidence so a person can listen to them. It needs the agent's own
channel, so it exists only for a recording whose channels are known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import JsonValue

from ..model import MetricResult, MetricSource, Role
from .events import TurnTakingParams
from .load import LoadedAudio
from .segments import Segment, VadParams

__all__ = ["AGENT_CLIPPING", "agent_clipping"]

AGENT_CLIPPING = "turn_taking.agent_clipping"
_WORST = 5


def agent_clipping(
    audio: LoadedAudio,
    segments: Sequence[Segment],
    *,
    call_id: str,
    params: TurnTakingParams,
    vad_params: VadParams | None = None,
) -> MetricResult:
    """The share of the agent's speech samples that are clipped (None when the agent never spoke)."""
    track = audio.tracks[Role.AGENT]
    rate = audio.rate_hz
    per_segment: list[tuple[float, float, int, int]] = []
    for segment in segments:
        lo, hi = round(segment.start_s * rate), min(len(track), round(segment.end_s * rate))
        if hi <= lo:
            continue
        clipped = int(np.count_nonzero(np.abs(track[lo:hi]) >= params.clipping_level))
        per_segment.append((segment.start_s, segment.end_s, clipped, hi - lo))
    speech = sum(n for *_, n in per_segment)
    clipped_total = sum(c for _, _, c, _ in per_segment)
    share = clipped_total / speech if speech else None
    worst = sorted(per_segment, key=lambda s: s[2] / s[3], reverse=True)[:_WORST]
    evidence: dict[str, JsonValue] = {
        "clipped_samples": clipped_total,
        "speech_samples": speech,
        "worst_segments": [
            {"segment": [round(start, 3), round(end, 3)], "share": round(c / n, 4)}
            for start, end, c, n in worst
            if c
        ],
    }
    echoed: dict[str, JsonValue] = {
        **params.model_dump(mode="json"),
        "call_duration_s": round(audio.duration_s, 3),
    }
    if vad_params is not None:
        echoed["vad"] = vad_params.model_dump(mode="json")
    return MetricResult(
        call_id=call_id,
        metric=AGENT_CLIPPING,
        version=params.version,
        value=None if share is None else round(share, 6),
        passed=None if share is None else share <= params.clipping_max_share,
        params=echoed,
        evidence=evidence,
        source=MetricSource.AUDIO,
    )
