"""The canonical call model: pydantic shapes that cross every module boundary.

Imports nothing else of convoscope (only the lazy-name helper below it), so every layer can depend on it.
"""

from __future__ import annotations

import typing

from ..lazy import lazy_getattr

if typing.TYPE_CHECKING:
    from .call import Call, CostLine, LatencyStats, Recording, SimulationRef, ToolCall, Turn, Usage, Word
    from .document import Document, DocumentStage
    from .enums import CallSource, Direction, EndReason, MetricSource, Modality, Role, SpanKind
    from .ids import call_id_for
    from .metric import MetricResult
    from .modality import modality_of
    from .trace import Span
else:
    # Names load on first use, so a command that needs only the enums (the CLI's options) does not pay
    # for building the pydantic models. Type checkers read the imports above.
    _HOMES = {
        **dict.fromkeys(
            ("Call", "CostLine", "LatencyStats", "Recording", "SimulationRef", "ToolCall", "Turn"), ".call"
        ),
        **dict.fromkeys(("Usage", "Word"), ".call"),
        **dict.fromkeys(
            ("CallSource", "Direction", "EndReason", "MetricSource", "Modality", "Role", "SpanKind"), ".enums"
        ),
        **dict.fromkeys(("Document", "DocumentStage"), ".document"),
        "call_id_for": ".ids",
        "modality_of": ".modality",
        "MetricResult": ".metric",
        "Span": ".trace",
    }

    __getattr__ = lazy_getattr(__name__, globals(), _HOMES)


__all__ = [
    "Call",
    "CallSource",
    "CostLine",
    "Direction",
    "Document",
    "DocumentStage",
    "EndReason",
    "LatencyStats",
    "MetricResult",
    "MetricSource",
    "Modality",
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
    "modality_of",
]
