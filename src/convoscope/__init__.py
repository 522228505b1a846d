"""convoscope: test, monitor and evaluate conversational voice agents."""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from .model import Call, MetricResult, Recording, Span, ToolCall, Turn
else:
    from .lazy import lazy_getattr

    # The model's names load on first use: ``convoscope --help`` need not build them.
    __getattr__ = lazy_getattr(
        __name__,
        globals(),
        dict.fromkeys(("Call", "MetricResult", "Recording", "Span", "ToolCall", "Turn"), ".model"),
    )


__version__ = "0.1.0"

__all__ = ["Call", "MetricResult", "Recording", "Span", "ToolCall", "Turn", "__version__"]
