"""convoscope: test, monitor and evaluate conversational voice agents."""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from .model import Call, MetricResult, Recording, Span, ToolCall, Turn
else:

    def __getattr__(name: str) -> object:
        """The model's names load on first use: ``convoscope --help`` need not build them."""
        if name not in __all__ or name.startswith("_"):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from . import model

        value = getattr(model, name)
        globals()[name] = value
        return value


__version__ = "0.1.0"

__all__ = ["Call", "MetricResult", "Recording", "Span", "ToolCall", "Turn", "__version__"]
