"""Connectors by name, from the settings a suite or a command line gives (``kind`` + a mapping).

A suite file names its agent as ``{"kind": "openai", "base_url": ..., "model": ...}``; this module is the
one place that turns such a mapping into a connector, so every way of starting a run (CLI, API, a
schedule) accepts the same settings and refuses the same mistakes with the same words. Every problem is
an :class:`~convoscope.errors.InputError` naming the kind and the setting: an unknown kind (listing the
known ones), a missing required setting, a value of the wrong type, and an unknown setting (a typo such
as ``base-url`` would otherwise be silently ignored and the run would fail far from its cause).

Secrets need not be written into a suite: ``api_key_env`` (openai) names an environment variable holding
the key, read when the connector is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from ...errors import InputError
from .base import Connector
from .http_webhook import WebhookConnector
from .openai_chat import OpenAIChatConnector
from .websocket_text import WebSocketConnector

__all__ = ["CONNECTOR_KINDS", "AnyConnector", "connector_from_config"]

if TYPE_CHECKING:
    from ..voice.connector import VoiceConnector

AnyConnector = Union[Connector, "VoiceConnector"]
"""A chat connector, or a voice agent's media-stream endpoint (``twilio``, ``pcm``)."""


class _Settings:
    """The settings of one kind, read once each: what is read is checked, what is left over is a typo."""

    def __init__(self, kind: str, settings: Mapping[str, Any]) -> None:
        if not isinstance(settings, Mapping):
            raise InputError(f"connector {kind!r}: settings must be a mapping, not {type(settings).__name__}")
        self.kind = kind
        self._values = dict(settings)
        self._read: set[str] = set()

    def _take(self, name: str) -> Any:
        self._read.add(name)
        return self._values.get(name)

    def _bad(self, name: str, expected: str, value: Any) -> InputError:
        return InputError(
            f"connector {self.kind!r}: setting {name!r} must be {expected}, not {type(value).__name__}"
        )

    def required_str(self, name: str) -> str:
        value = self._take(name)
        if value is None:
            raise InputError(f"connector {self.kind!r}: setting {name!r} is required")
        if not isinstance(value, str) or not value.strip():
            raise self._bad(name, "a non-empty string", value)
        return value

    def url(self, name: str, schemes: tuple[str, ...]) -> str:
        value = self.required_str(name)
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise InputError(
                f"connector {self.kind!r}: setting {name!r} must be a {' or '.join(schemes)} URL with a host"
            )
        return value

    def optional_str(self, name: str) -> str | None:
        value = self._take(name)
        if value is not None and not isinstance(value, str):
            raise self._bad(name, "a string", value)
        return value

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._take(name)
        if value is None:
            return None
        if not isinstance(value, Mapping) or not all(
            isinstance(key, str) and isinstance(item, str) for key, item in value.items()
        ):
            raise self._bad(name, "a mapping of strings to strings", value)
        return dict(value)

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._take(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._bad(name, "a mapping", value)
        return dict(value)

    def tools(self, name: str) -> list[dict[str, Any]] | None:
        value = self._take(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(tool, Mapping) for tool in value):
            raise self._bad(name, "a list of tool objects", value)
        return [dict(tool) for tool in value]

    def positive_int(self, name: str) -> int | None:
        value = self._take(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"connector {self.kind!r}: setting {name!r} must be a positive integer")
        return value

    def seconds(self, name: str) -> float | None:
        value = self._take(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise InputError(f"connector {self.kind!r}: setting {name!r} must be a number of seconds (≥ 0)")
        return float(value)

    def done(self) -> None:
        unknown = sorted(set(self._values) - self._read - {"kind"})
        if unknown:
            raise InputError(
                f"connector {self.kind!r}: unknown setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(self._read))}"
            )


def _present(**options: Any) -> dict[str, Any]:
    """The optional keyword arguments that were given, so the constructors' defaults apply to the rest."""
    return {key: value for key, value in options.items() if value is not None}


def _openai(settings: _Settings) -> Connector:
    base_url = settings.url("base_url", ("http", "https"))
    model = settings.required_str("model")
    api_key = settings.optional_str("api_key")
    api_key_env = settings.optional_str("api_key_env")
    if api_key_env is not None:
        if api_key is not None:
            raise InputError("connector 'openai': give 'api_key' or 'api_key_env', not both")
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(
                f"connector 'openai': environment variable {api_key_env!r} (api_key_env) is not set"
            )
    options = _present(
        api_key=api_key,
        tools=settings.tools("tools"),
        headers=settings.string_map("headers"),
        extra_body=settings.mapping("extra_body"),
        max_connections=settings.positive_int("max_connections"),
        connect_timeout_s=settings.seconds("connect_timeout_s"),
    )
    settings.done()
    return OpenAIChatConnector(base_url, model=model, **options)


def _webhook(settings: _Settings) -> Connector:
    url = settings.url("url", ("http", "https"))
    options = _present(
        headers=settings.string_map("headers"),
        max_connections=settings.positive_int("max_connections"),
        connect_timeout_s=settings.seconds("connect_timeout_s"),
    )
    settings.done()
    return WebhookConnector(url, **options)


def _websocket(settings: _Settings) -> Connector:
    url = settings.url("url", ("ws", "wss"))
    options = _present(
        headers=settings.string_map("headers"),
        first_reply_timeout_s=settings.seconds("first_reply_timeout_s"),
        open_timeout_s=settings.seconds("open_timeout_s"),
        max_frame_bytes=settings.positive_int("max_frame_bytes"),
    )
    settings.done()
    return WebSocketConnector(url, **options)


def _voice(protocol: str) -> Callable[[_Settings], AnyConnector]:
    def build(settings: _Settings) -> AnyConnector:
        from ..voice.connector import VoiceConnector

        url = settings.url("url", ("ws", "wss"))
        rate = settings.positive_int("sample_rate") if protocol == "pcm" else None
        if rate is not None and rate not in (8000, 16000):
            raise InputError(f"connector {protocol!r}: setting 'sample_rate' must be 8000 or 16000")
        options = _present(
            custom_parameters=settings.string_map("custom_parameters"),
            headers=settings.string_map("headers"),
            sample_rate=rate,
            connect_timeout_s=settings.seconds("connect_timeout_s"),
        )
        settings.done()
        return VoiceConnector(url, protocol=protocol, **options)

    return build


CONNECTOR_KINDS: Mapping[str, Callable[[_Settings], AnyConnector]] = {
    "openai": _openai,
    "webhook": _webhook,
    "websocket": _websocket,
    "twilio": _voice("twilio"),
    "pcm": _voice("pcm"),
}
"""Every connector kind a suite may name, with the function that reads its settings."""


def connector_from_config(kind: str, settings: Mapping[str, Any]) -> AnyConnector:
    """The connector of ``kind`` made from ``settings``; :class:`InputError` naming what is wrong.

    A ``kind`` key inside ``settings`` (a suite's agent block passed whole) is allowed and ignored.
    """
    build = CONNECTOR_KINDS.get(kind)
    if build is None:
        raise InputError(
            f"unknown connector kind {kind!r}; known kinds: {', '.join(sorted(CONNECTOR_KINDS))}"
        )
    return build(_Settings(kind, settings))
