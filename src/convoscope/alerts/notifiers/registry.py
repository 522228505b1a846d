"""The notifier kinds: one config type over all of them, parsing with the field named, and building.

A project's notifiers are kept by name; each config is a JSON object whose ``kind`` picks the model
(``slack``, ``webhook``, ``email``). :func:`parse_notifier` checks one and names the offending field
(``notifier 'ops': url: must be an http(s) URL``); :func:`build_notifier` reads its secrets from the
environment and returns the :class:`~convoscope.alerts.events.Notifier` that sends.

Until the alert rules keep notifiers elsewhere, they live in the project's settings document under
``alerts.notifiers.<name>`` (:data:`NOTIFIERS_PATH`, :func:`configured_notifiers`), where
``convoscope alerts test`` finds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from ...errors import InputError, PayloadError
from ...runtime.egress import Network
from ..events import AlertEvent, Notifier, Severity
from .base import NAME_PATTERN
from .email import EmailConfig, EmailNotifier
from .slack import SlackConfig, SlackNotifier
from .webhook import WebhookConfig, WebhookNotifier

__all__ = [
    "NOTIFIERS_PATH",
    "NotifierConfig",
    "build_notifier",
    "check_notifier_name",
    "configured_notifiers",
    "parse_notifier",
    "sample_event",
]

NotifierConfig = SlackConfig | WebhookConfig | EmailConfig
"""One notifier's config; ``kind`` says which."""

_ADAPTER: TypeAdapter[NotifierConfig] = TypeAdapter(Annotated[NotifierConfig, Field(discriminator="kind")])

NOTIFIERS_PATH = ("alerts", "notifiers")
"""Where a project's notifiers are kept in its settings document (name -> config)."""

_MAX_NAME = 128


def check_notifier_name(name: str) -> str:
    """``name`` when it can name a notifier (letters, digits, ``.``, ``_``, ``-``; at most 128)."""
    if not (0 < len(name) <= _MAX_NAME and re.fullmatch(NAME_PATTERN, name)):
        raise InputError(
            f"notifier name {name!r}: use 1 to {_MAX_NAME} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _problem(error: Mapping[str, Any]) -> dict[str, object]:
    """One validation error as ``{"loc": "field.path", "msg": ...}``; a check over several fields names
    its field at the start of its message (``password_env: ...``), which becomes the location."""
    parts = [str(part) for part in error["loc"]]
    if parts and parts[0] in ("slack", "webhook", "email"):
        parts = parts[1:]  # the union's tag, not a field
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts = ["kind"]
        message = "must be one of slack, webhook, email"
    elif not parts and (named := re.match(r"^([a-z_]+): (.+)$", message, re.DOTALL)):
        parts, message = [named.group(1)], named.group(2)
    return {"loc": ".".join(parts) or "(config)", "msg": message}


def parse_notifier(name: str, data: Any) -> NotifierConfig:
    """The config of notifier ``name``; :class:`PayloadError` naming each bad field otherwise."""
    check_notifier_name(name)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        errors = [_problem(error) for error in exc.errors(include_url=False, include_input=False)]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PayloadError(f"notifier {name!r}: {first['loc']}: {first['msg']}{more}", errors) from None


def build_notifier(
    name: str,
    config: NotifierConfig,
    *,
    env: Mapping[str, str],
    allowed_networks: Iterable[Network] = (),
) -> Notifier:
    """The notifier that sends with ``config``; its secrets are read from ``env`` now (a missing one is a
    :class:`~convoscope.alerts.events.DeliveryError`, not retryable, naming the field)."""
    if isinstance(config, SlackConfig):
        return SlackNotifier(name, config, env=env, allowed_networks=allowed_networks)
    if isinstance(config, WebhookConfig):
        return WebhookNotifier(name, config, env=env, allowed_networks=allowed_networks)
    return EmailNotifier(name, config, env=env, allowed_networks=allowed_networks)


def configured_notifiers(
    project_settings: Mapping[str, Any],
) -> dict[str, NotifierConfig]:
    """Every notifier kept in a project's settings document, by name (a bad one raises, named)."""
    node: Any = project_settings
    for part in NOTIFIERS_PATH:
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise PayloadError(f"settings {'.'.join(NOTIFIERS_PATH)}: expected an object of notifiers by name")
    return {str(name): parse_notifier(str(name), data) for name, data in node.items()}


def sample_event(
    project_id: str,
    *,
    state: Literal["firing", "resolved"] = "firing",
    ui_base_url: str | None = None,
    at: datetime | None = None,
) -> AlertEvent:
    """A made-up event with every field filled, for ``convoscope alerts test`` and the docs."""
    moment = at or datetime.now(UTC)
    return AlertEvent(
        id=f"test-{int(moment.timestamp())}",
        project_id=project_id,
        rule_id="test-p95-latency",
        rule_name="Test alert: p95 agent latency",
        state=state,
        severity=Severity.WARNING,
        at=moment,
        summary=(
            "A test from convoscope alerts test: p95 agent latency 2.31 s over 1.5 s "
            "in the last 15 min (120 calls)"
            if state == "firing"
            else "A test from convoscope alerts test: p95 agent latency back to 1.12 s (under 1.5 s)"
        ),
        value=2.31 if state == "firing" else 1.12,
        threshold=1.5,
        sample_size=120,
        window_s=900.0,
        call_ids=("0190f3a2-0000-7000-8000-000000000001", "0190f3a2-0000-7000-8000-000000000002"),
        details={"metric": "agent_latency_p95_s", "test": True},
        series=(1.1, 1.2, 1.15, 1.3, 1.6, 1.9, 2.2, 2.31) if state == "firing" else (2.3, 1.9, 1.4, 1.12),
        ui_base_url=ui_base_url,
    )
