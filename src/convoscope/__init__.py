"""convoscope: test, monitor and evaluate conversational voice agents."""

from __future__ import annotations

from .model import Call, MetricResult, Recording, Span, ToolCall, Turn

__version__ = "0.1.0"

__all__ = ["Call", "MetricResult", "Recording", "Span", "ToolCall", "Turn", "__version__"]
