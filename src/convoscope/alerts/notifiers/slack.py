"""Slack incoming-webhook notifier: one Block Kit message per event.

The message (:func:`slack_message`) leads with what a person needs in a channel: a header saying
FIRING or RESOLVED with the severity and the rule's name (a red/orange/blue dot or a green check), the
summary, then, in an attachment coloured by severity (green once resolved), the numbers (value against
threshold, sample size, window), a text sparkline of the metric's recent buckets, links to up to
``max_links`` of the calls behind it, and the rule, project and time. ``text`` is the plain fallback that
notifications and screen readers use.

Slack answers ``200`` with the body ``ok``; a 4xx names the problem (``invalid_payload``,
``no_service``, ``channel_is_archived``) and is not retried, a 429 or 5xx is. The webhook URL is itself a
secret, so it may be named by an environment variable (``url_env``) instead of stored (``url``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import orjson
from pydantic import Field, model_validator

from ...runtime.egress import Network
from ..events import AlertEvent, DeliveryError, Severity
from .base import (
    EnvName,
    HttpUrl,
    NotifierSettings,
    check_http_url,
    env_secret,
    format_number,
    format_window,
    post,
    scalar_details,
    shown_url,
    sparkline,
    utc,
)

__all__ = ["SlackConfig", "SlackNotifier", "slack_message"]

_HEADER_CHARS = 150
_TEXT_CHARS = 3000
_FIELD_CHARS = 2000

_COLOURS = {Severity.CRITICAL: "#E01E5A", Severity.WARNING: "#ECB22E", Severity.INFO: "#36C5F0"}
_RESOLVED_COLOUR = "#2EB67D"
_DOTS = {Severity.CRITICAL: ":red_circle:", Severity.WARNING: ":large_orange_circle:"}
_INFO_DOT = ":large_blue_circle:"


class SlackConfig(NotifierSettings):
    """A Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    kind: Literal["slack"] = "slack"
    url: HttpUrl | None = None
    """The webhook URL, stored with the config; or ``url_env``."""
    url_env: EnvName | None = None
    """Environment variable holding the webhook URL (the URL is a secret: whoever has it can post)."""
    max_links: int = Field(default=5, ge=0, le=20)
    """Most calls linked in one message."""

    @model_validator(mode="after")
    def _one_url(self) -> SlackConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("url: give exactly one of url and url_env")
        return self


def _escape(text: str) -> str:
    """Text safe inside Slack mrkdwn (``&``, ``<`` and ``>`` would start an entity or a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str, label: str) -> str:
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe_url}|{_escape(label).replace('|', '¦')}>"


def _short(call_id: str) -> str:
    """A call id short enough for a link's text: its end (a UUIDv7 starts with its time, ends at random)."""
    return call_id if len(call_id) <= 12 else "…" + call_id[-8:]


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def slack_message(event: AlertEvent, *, max_links: int = 5) -> dict[str, Any]:
    """The Block Kit payload of ``event`` (pure: no I/O)."""
    firing = event.state == "firing"
    severity = str(event.severity)
    state = "FIRING" if firing else "RESOLVED"
    mark = (_DOTS.get(event.severity, _INFO_DOT)) if firing else ":white_check_mark:"
    title = _cut(f"{mark} {state} · {severity} · {event.rule_name}", _HEADER_CHARS)
    fallback = _escape(f"[{state}] {severity}: {event.rule_name}: {event.summary}")

    fields = [
        _mrkdwn(f"*{'Value' if firing else 'Value now'}*\n`{format_number(event.value)}`"),
        _mrkdwn(f"*Threshold*\n`{format_number(event.threshold)}`"),
        _mrkdwn(f"*Sample size*\n{event.sample_size} call{'s' if event.sample_size != 1 else ''}"),
        _mrkdwn(f"*Window*\n{format_window(event.window_s)}"),
    ]
    for key, value in scalar_details(event, limit=6):
        fields.append(_mrkdwn(_cut(f"*{_escape(key)}*\n{_escape(value)}", _FIELD_CHARS)))
    details: list[dict[str, Any]] = [{"type": "section", "fields": fields[:10]}]

    trend = sparkline(event.series)
    if trend:
        shown = min(len(event.series), 24)
        caption = f"`{trend}`  last {shown} bucket{'s' if shown != 1 else ''}, oldest first"
        details.append({"type": "context", "elements": [_mrkdwn(caption)]})

    calls = list(event.call_ids)[:max_links]
    if calls:
        items = []
        for call_id in calls:
            url = event.call_url(call_id)
            items.append(_link(url, _short(call_id)) if url else f"`{_escape(call_id)}`")
        more = len(event.call_ids) - len(calls)
        text = f"*Calls:* {' · '.join(items)}" + (f" and {more} more" if more > 0 else "")
        details.append({"type": "section", "text": _mrkdwn(_cut(text, _TEXT_CHARS))})

    at = utc(event.at)
    when = f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"
    details.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    _cut(
                        f"rule `{_escape(event.rule_id)}` · project `{_escape(event.project_id)}` · {when}",
                        _TEXT_CHARS,
                    )
                )
            ],
        }
    )
    return {
        "text": _cut(fallback, _TEXT_CHARS),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
            {"type": "section", "text": _mrkdwn(_cut(_escape(event.summary), _TEXT_CHARS))},
        ],
        "attachments": [
            {"color": _COLOURS.get(event.severity, _COLOURS[Severity.INFO]) if firing else _RESOLVED_COLOUR}
            | {"blocks": details}
        ],
    }


class SlackNotifier:
    """Delivers events to one Slack incoming webhook."""

    def __init__(
        self,
        name: str,
        config: SlackConfig,
        *,
        env: Mapping[str, str],
        allowed_networks: Iterable[Network] = (),
    ) -> None:
        self._name = name
        self._config = config
        if config.url is not None:
            self._url = config.url
        else:
            variable = config.url_env or ""
            value = env_secret(env, variable, field="url_env").strip()
            try:
                self._url = check_http_url(value)
            except ValueError as exc:
                raise DeliveryError(f"url_env: the URL in {variable} {exc}", retryable=False) from None
        self._allowed = tuple(allowed_networks)

    @property
    def name(self) -> str:
        return self._name

    def deliver(self, event: AlertEvent) -> None:
        body = orjson.dumps(slack_message(event, max_links=self._config.max_links))
        response = post(
            self._url,
            body,
            {"Content-Type": "application/json; charset=utf-8", "User-Agent": "convoscope-alerts"},
            timeout_s=self._config.timeout_s,
            allowed_networks=self._allowed,
        )
        answer = response.text.strip()
        if answer != "ok":
            raise DeliveryError(
                f"{shown_url(self._url)} answered {response.status_code} "
                f"without Slack's ok: {answer[:200]!r}",
                retryable=False,
            )
