"""An alert event: a rule started or stopped firing, with the numbers and the calls behind it.

The event is what every notifier formats and what the API lists, so it carries everything a person
needs to act without opening convoscope (the value, the threshold, the sample size, the window) and the
ids of the calls that caused it, to open them when they do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from ..errors import ConvoscopeError

__all__ = ["AlertEvent", "DeliveryError", "Notifier", "Severity"]


class Severity(StrEnum):
    """How urgent an alert is (notifiers show it; Slack colours it)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class AlertEvent:
    """One change of a rule's state."""

    id: str
    project_id: str
    rule_id: str
    rule_name: str
    state: Literal["firing", "resolved"]
    severity: Severity
    at: datetime
    summary: str
    """One line a person reads first: what, how much, against what, over which window."""
    value: float | None = None
    threshold: float | None = None
    sample_size: int = 0
    window_s: float | None = None
    call_ids: Sequence[str] = ()
    """The calls that caused it (a bounded sample, newest first)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Rule-kind specifics (the EWMA and its baseline, the spike factor, the new failure reason...)."""
    series: Sequence[float] = ()
    """Recent bucket values of the rule's metric, oldest first (for a sparkline)."""
    ui_base_url: str | None = None
    """Where the convoscope UI is reachable, for links to the calls (None: no links)."""

    def call_url(self, call_id: str) -> str | None:
        """The UI link of one call, when the UI's address is known."""
        return f"{self.ui_base_url.rstrip('/')}/calls/{call_id}" if self.ui_base_url else None


class DeliveryError(ConvoscopeError):
    """A notifier could not deliver; ``retryable`` says whether trying again later may succeed
    (a timeout, a 5xx, a refused SMTP connection) or not (a 4xx, a rejected address)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    """Somewhere alert events are sent: one small module per kind (Slack, webhook, email)."""

    @property
    def name(self) -> str: ...

    def deliver(self, event: AlertEvent) -> None:
        """Send one event; raises :class:`DeliveryError` when it could not be delivered."""
        ...
