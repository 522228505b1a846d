"""What every notifier shares: config field types, secrets from the environment, the guarded POST with its
failure classes, and the small formatting helpers (numbers, windows, a text sparkline).

A notifier's config is kept in the metadata database, so it never holds a secret: a webhook's signing
secret and an SMTP password are named by an environment variable (``secret_env``, ``password_env``) and
read when the notifier is built. Every outbound connection goes through the egress guard of
:mod:`convoscope.runtime.egress`: a notifier URL on a private, loopback or link-local network (a cloud
metadata address) is refused unless the deployment lists its network.

Failures come back as :class:`~convoscope.alerts.events.DeliveryError`: ``retryable`` for a timeout, a
refused connection, a 408/429/5xx or an SMTP 4xx (:class:`DeliveryRetry`, optionally with the receiver's
``Retry-After``), permanent for anything a retry cannot fix (a 4xx, a refused address, a wrong password).
Error messages name the receiver by scheme, host and port only: a Slack webhook's path is its secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ...runtime.egress import AddressRefused, Egress, GuardedTransport, Network
from ..events import AlertEvent, DeliveryError, Severity

__all__ = [
    "ALERTS_EGRESS",
    "ALLOWED_NETWORKS_SETTING",
    "NAME_PATTERN",
    "DeliveryRetry",
    "EnvName",
    "HttpUrl",
    "NotifierName",
    "NotifierSettings",
    "PartialDelivery",
    "check_http_url",
    "env_secret",
    "format_number",
    "format_window",
    "headline",
    "post",
    "scalar_details",
    "shown_url",
    "sparkline",
    "utc",
]

ALLOWED_NETWORKS_SETTING = "CONVOSCOPE_ALERTS_ALLOWED_NETWORKS"
"""The setting that lists the networks notifiers may reach although they are not public."""

ALERTS_EGRESS = Egress("alerts are not sent to it", ALLOWED_NETWORKS_SETTING)
"""The guard's wording for a refused notifier address."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A notifier's name: letters, digits, ``.``, ``_``, ``-`` (it is part of the delivery job's key)."""

NotifierName = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_PATTERN)]

_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_MAX_URL = 2048
_SNIPPET = 200
_MAX_RETRY_AFTER_S = 3600.0


def check_http_url(value: str) -> str:
    """``value`` when it is an http(s) URL with a host, else a ``ValueError`` saying what is wrong."""
    if len(value) > _MAX_URL:
        raise ValueError(f"must be at most {_MAX_URL} characters")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        scheme = f"{parts.scheme}:" if parts.scheme else "scheme-less"
        raise ValueError(f"must be an http(s) URL, not {scheme}")
    if not parts.hostname:
        raise ValueError("has no host")
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
"""An ``http://`` or ``https://`` URL with a host."""

EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=_ENV_PATTERN)]
"""The name of an environment variable that holds a secret."""


class NotifierSettings(BaseModel):
    """The fields every notifier config has; unknown fields are refused (a typo is not ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Seconds to connect, and to wait for each answer, before the attempt counts as a retryable failure."""


class DeliveryRetry(DeliveryError):
    """A retryable delivery failure; ``after_s`` is the receiver's own ``Retry-After`` when it sent one."""

    def __init__(self, message: str, *, after_s: float | None = None) -> None:
        super().__init__(message, retryable=True)
        self.after_s = after_s


class PartialDelivery(DeliveryError):
    """The event reached some recipients but not all: not retried (the others would get it twice), and
    recorded as delivered, with the refusals as the job's error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def env_secret(env: Mapping[str, str], variable: str, *, field: str) -> str:
    """The secret held by environment variable ``variable``; an error naming the field when it is unset."""
    value = env.get(variable, "")
    if not value.strip():
        raise DeliveryError(f"{field}: environment variable {variable} is not set or empty", retryable=False)
    return value


def shown_url(url: str) -> str:
    """A URL as errors and logs show it: scheme, host and port (the path and query may be secrets)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _snippet(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _SNIPPET else line[: _SNIPPET - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(seconds, _MAX_RETRY_AFTER_S) if math.isfinite(seconds) and seconds >= 0 else None


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float,
    allowed_networks: Iterable[Network] = (),
) -> httpx.Response:
    """POST ``body`` to ``url`` through the egress guard; the 2xx response, else a :class:`DeliveryError`.

    Redirects are not followed (a receiver that moved is a configuration to fix, not to chase). A
    timeout, a connection failure, 408, 425, 429 and 5xx are retryable; other statuses are permanent.
    """
    shown = shown_url(url)
    transport = GuardedTransport(allowed_networks, egress=ALERTS_EGRESS)
    try:
        # trust_env=False: a proxy from the environment would connect on our behalf, past the guard.
        with httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
        ) as client:
            response = client.post(url, content=body, headers=dict(headers))
    except AddressRefused as exc:
        raise DeliveryError(f"{shown}: {exc}", retryable=False) from None
    except httpx.TimeoutException:
        raise DeliveryRetry(f"{shown}: no answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryRetry(f"{shown}: {type(exc).__name__}: {_snippet(str(exc))}") from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = _snippet(response.text)
    if status in (408, 425, 429) or status >= 500:
        raise DeliveryRetry(f"{shown} answered {status}: {detail}", after_s=_retry_after(response))
    if 300 <= status < 400:
        moved = shown_url(response.headers.get("location", ""))
        raise DeliveryError(
            f"{shown} answered {status}, a redirect to {moved}: configure the final URL", retryable=False
        )
    raise DeliveryError(f"{shown} answered {status}: {detail}", retryable=False)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive time is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_number(value: float | None) -> str:
    """Four significant digits, no exponent for everyday magnitudes; ``n/a`` for none or not a number."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def format_window(seconds: float | None) -> str:
    """A window as a person says it: ``90 s``, ``15 min``, ``2 h``, ``1.5 d``."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return "n/a"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{format_number(round(seconds / size, 2))} {unit}"
    return f"{format_number(round(seconds, 2))} s"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(series: Sequence[float], width: int = 24) -> str:
    """The last ``width`` values as bars from ▁ (the lowest shown) to █ (the highest); a missing or
    non-finite value is a space, and a flat series is a row of ▄."""
    values = list(series)[-width:] if width > 0 else []
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    bars = []
    for value in values:
        if not isinstance(value, int | float) or not math.isfinite(value):
            bars.append(" ")
        elif high == low:
            bars.append(_BARS[3])
        else:
            bars.append(_BARS[round((value - low) / (high - low) * 7)])
    return "".join(bars)


_SEVERITY_WORD = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "critical"}


def headline(event: AlertEvent) -> str:
    """``FIRING · critical · <rule name>`` or ``RESOLVED · critical · <rule name>``."""
    severity = _SEVERITY_WORD.get(event.severity, str(event.severity))
    return f"{event.state.upper()} · {severity} · {event.rule_name}"


def scalar_details(event: AlertEvent, limit: int = 6) -> list[tuple[str, str]]:
    """Up to ``limit`` of the event's details that read as one short value (numbers, short strings)."""
    shown: list[tuple[str, str]] = []
    for key, value in event.details.items():
        if len(shown) >= limit:
            break
        if isinstance(value, bool):
            shown.append((str(key), "yes" if value else "no"))
        elif isinstance(value, int | float):
            shown.append((str(key), format_number(float(value))))
        elif isinstance(value, str) and len(value) <= 80 and re.fullmatch(r"[^\n\r]*", value):
            shown.append((str(key), value))
    return shown
