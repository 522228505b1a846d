"""Generic webhook notifier: the event as versioned JSON, signed with HMAC-SHA256, POSTed to a URL.

The body is :func:`webhook_body` (``schema_version`` 1). When the config names a secret
(``secret_env``), ``X-Convoscope-Signature: t=<unix seconds>,v1=<hex>`` carries
HMAC-SHA256(secret, ``f"{t}."`` + raw body), the scheme of Stripe-style signatures and of convoscope's
own generic ingest source; a receiver recomputes it over the bytes it received and refuses a timestamp
outside its replay window (the recipe is in ``docs/alerts-notifiers.md``). ``X-Convoscope-Delivery`` is
the same for every attempt of one event to one notifier, so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, field_validator

from ...runtime.egress import Network
from ..events import AlertEvent
from .base import EnvName, HttpUrl, NotifierSettings, env_secret, post, utc

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "WEBHOOK_SCHEMA_VERSION",
    "WebhookConfig",
    "WebhookNotifier",
    "encode_body",
    "sign",
    "webhook_body",
]

WEBHOOK_SCHEMA_VERSION = 1
"""Version of the JSON body; a change that is not only an added field gets a new number."""

SIGNATURE_HEADER = "X-Convoscope-Signature"
EVENT_HEADER = "X-Convoscope-Event"
DELIVERY_HEADER = "X-Convoscope-Delivery"

_RESERVED = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent"}
)
_MAX_HEADERS = 20

HeaderName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
HeaderValue = Annotated[str, Field(max_length=4096, pattern=r"^[^\r\n\x00]*$")]


def _check_header_names(names: Iterable[str]) -> None:
    for name in names:
        lowered = name.lower()
        if lowered in _RESERVED or lowered.startswith("x-convoscope-"):
            raise ValueError(f"header {name!r} is set by convoscope and cannot be configured")


class WebhookConfig(NotifierSettings):
    """A generic webhook: where to POST, the secret's variable, and extra headers."""

    kind: Literal["webhook"] = "webhook"
    url: HttpUrl
    """The receiver (http or https)."""
    secret_env: EnvName | None = None
    """Environment variable holding the signing secret; unset: the body is sent unsigned."""
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict, max_length=_MAX_HEADERS)
    """Extra headers sent as they are (not secrets: they are stored with the config)."""
    headers_env: dict[HeaderName, EnvName] = Field(default_factory=dict, max_length=_MAX_HEADERS)
    """Extra headers whose value is read from an environment variable (an ``Authorization`` token)."""

    @field_validator("headers", "headers_env")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        _check_header_names(value)
        return value


def webhook_body(event: AlertEvent) -> dict[str, Any]:
    """The event as the webhook's JSON document (``schema_version`` first, times in ISO 8601 UTC)."""
    return {
        "schema_version": WEBHOOK_SCHEMA_VERSION,
        "type": f"alert.{event.state}",
        "id": event.id,
        "project_id": event.project_id,
        "rule_id": event.rule_id,
        "rule_name": event.rule_name,
        "state": event.state,
        "severity": str(event.severity),
        "at": utc(event.at).isoformat(),
        "summary": event.summary,
        "value": event.value,
        "threshold": event.threshold,
        "sample_size": event.sample_size,
        "window_s": event.window_s,
        "call_ids": list(event.call_ids),
        "call_urls": [event.call_url(call_id) for call_id in event.call_ids] if event.ui_base_url else [],
        "series": list(event.series),
        "details": dict(event.details),
        "ui_base_url": event.ui_base_url,
    }


def encode_body(document: Mapping[str, Any]) -> bytes:
    """The body's bytes (compact JSON; a non-finite number is ``null``, an unknown object its text)."""
    return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Convoscope-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256 of "t." + body>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookNotifier:
    """Delivers events to one configured webhook."""

    def __init__(
        self,
        name: str,
        config: WebhookConfig,
        *,
        env: Mapping[str, str],
        allowed_networks: Iterable[Network] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Reads the secret and the ``headers_env`` values from ``env`` now (a missing one is an error
        naming its field)."""
        self._name = name
        self._config = config
        self._secret: str | None = None
        if config.secret_env:
            self._secret = env_secret(env, config.secret_env, field="secret_env")
        self._headers = dict(config.headers)
        for header, variable in config.headers_env.items():
            self._headers[header] = env_secret(env, variable, field=f"headers_env.{header}")
        self._allowed = tuple(allowed_networks)
        self._clock = clock

    @property
    def name(self) -> str:
        return self._name

    def request(self, event: AlertEvent) -> tuple[bytes, dict[str, str]]:
        """The body and headers one delivery sends (the signature made now)."""
        body = encode_body(webhook_body(event))
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "User-Agent": "convoscope-alerts",
            EVENT_HEADER: f"alert.{event.state}",
            DELIVERY_HEADER: f"{event.id}:{self._name}",
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, int(self._clock()), body)
        return body, headers

    def deliver(self, event: AlertEvent) -> None:
        body, headers = self.request(event)
        config = self._config
        post(config.url, body, headers, timeout_s=config.timeout_s, allowed_networks=self._allowed)
