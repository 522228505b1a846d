"""The canonical call model: pydantic shapes that cross every module boundary.

Imports nothing else of convoscope, so every layer can depend on it.
"""

from __future__ import annotations

from .call import Call, CostLine, LatencyStats, Recording, SimulationRef, ToolCall, Turn, Usage, Word
from .enums import CallSource, Direction, EndReason, MetricSource, Role, SpanKind
from .ids import call_id_for
from .metric import MetricResult
from .trace import Span

__all__ = [
    "Call",
    "CallSource",
    "CostLine",
    "Direction",
    "EndReason",
    "LatencyStats",
    "MetricResult",
    "MetricSource",
    "Recording",
    "Role",
    "SimulationRef",
    "Span",
    "SpanKind",
    "ToolCall",
    "Turn",
    "Usage",
    "Word",
    "call_id_for",
]
