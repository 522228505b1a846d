"""Deterministic metrics, one module per family; importing this package registers them all."""

from __future__ import annotations

from . import endreason, injection, latency, loops, phrases, pii, saydo, speech, structured, tools

__all__ = [
    "endreason",
    "injection",
    "latency",
    "loops",
    "phrases",
    "pii",
    "saydo",
    "speech",
    "structured",
    "tools",
]
