"""What each metric on a call page measures: the sentence shown beside a score, and where its docs are.

Evaluator metrics describe themselves in the registry (``Metric.description``, what ``GET /api/v1/metrics``
lists), and a project's custom metrics join the registry when its evaluator is built from the project's
settings. The turn-taking metrics are not registry classes (one analysis emits them all), so their
one-line definitions are kept here, condensed from ``docs/metrics/turn-taking.md``, which stays the full
reference (rules, parameters, thresholds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Definition", "definitions"]

_TURN_TAKING_DOCS = "docs/metrics/turn-taking.md"

_GAP = (
    "of the response gap: for each agent turn answering a user turn, agent speech onset minus the end of "
    "the user's turn, measured on the recording (negative: the agent started early)."
)
_TURN_TAKING: dict[str, str] = {
    "response_gap_p50_s": f"Median {_GAP}",
    "response_gap_p90_s": f"90th percentile {_GAP}",
    "response_gap_p95_s": f"95th percentile {_GAP}",
    "response_gap_p99_s": f"99th percentile {_GAP}",
    "time_to_first_audio_s": "The worst agent turn's first audible onset after the end of the user turn it "
    "answers (what a caller hears, unlike a TTS first-byte time).",
    "agent_interruptions": "Times the agent cut in on the user (an overlap at a floor change of at least "
    "min_overlap_s).",
    "agent_interruptions_per_turn": "Agent interruptions of the user per agent turn.",
    "agent_interruptions_per_min": "Agent interruptions of the user per call minute.",
    "user_interruptions": "Barge-ins: times the user cut in on the agent.",
    "user_interruptions_per_min": "User barge-ins per call minute.",
    "stop_time_s": "Median time the agent took to stop talking after a barge-in it yielded to.",
    "missed_barge_ins": "Barge-ins the agent did not yield to (it talked on); passes at zero.",
    "talk_over_s": "Total seconds both parties spoke at once.",
    "backchannels": "Short speech ('uh-huh') inside the other party's speech; not interruptions.",
    "long_silences": "Gaps and pauses longer than long_silence_s (dead air); passes at zero.",
    "longest_silence_s": "The longest stretch of mutual silence.",
    "unanswered_user_turns": "User turns with no agent speech within unanswered_after_s after their end.",
    "agent_talk_ratio": "Agent speech seconds over the call's duration.",
    "first_response_s": "Call start to the agent's first speech onset.",
    "echo_self_interruptions": "Candidates for the agent stopping for its own echo on the user channel "
    "(for review, no verdict).",
    "user_words_per_min": "User words in the transcript per minute of user speech on the recording.",
    "agent_words_per_min": "Agent words in the transcript per minute of agent speech on the recording.",
    "unattributed_latency_s": "Median, over agent turns with reported components, of the audio gap minus "
    "the components (EOU + STT + LLM TTFT + TTS TTFB): time no component explains.",
    "vendor_e2e_minus_audio_gap_s": "Median of the vendor's end-to-end latency minus the audio gap; "
    "negative means the vendor under-reports what the caller hears.",
    "agent_clipping": "Share of the agent's speech samples at or above clipping_level of full scale "
    "(distortion from a saturated TTS or gain stage).",
}


@dataclass(frozen=True, slots=True)
class Definition:
    """A metric's one-paragraph definition and the docs page that explains it in full."""

    text: str
    docs: str | None
    judge: bool = False
    """An LLM judge: its results are trusted only as far as people's labels agree with them."""


def definitions(settings: Mapping[str, Any]) -> dict[str, Definition]:
    """Every known metric's definition: the registry's (with the project's custom metrics) and the
    turn-taking ones."""
    from ...evals import registry
    from ...evals.project import ProjectEvaluator

    ProjectEvaluator(settings)  # registers the project's custom metrics (a refused one is skipped)
    found = {
        name: Definition(cls.description, f"docs/metrics/{name}.md", judge=cls.kind.value == "judge")
        for name, cls in registry.all_metrics().items()
    }
    for name, text in _TURN_TAKING.items():
        found[f"turn_taking.{name}"] = Definition(text, _TURN_TAKING_DOCS)
    return found
