"""Judge metrics: questions about a call answered by an LLM through any OpenAI-compatible endpoint.

Importing this package registers every built-in judge metric.
"""

from __future__ import annotations

from .base import JudgeMetric, JudgeParams, NotScorable, Outcome, render_transcript
from .conversation import InstructionFollowing, Relevancy, ResponseConsistency
from .ending import AppropriateTermination, VoicemailDetection
from .experience import Csat, UserSentiment
from .hallucination import Hallucination
from .outcome import ExpectedOutcome

__all__ = [
    "AppropriateTermination",
    "Csat",
    "ExpectedOutcome",
    "Hallucination",
    "InstructionFollowing",
    "JudgeMetric",
    "JudgeParams",
    "NotScorable",
    "Outcome",
    "Relevancy",
    "ResponseConsistency",
    "UserSentiment",
    "VoicemailDetection",
    "render_transcript",
]
