"""Notifiers: where alert events are sent, one small module per kind, like the vendor adapters.

Each kind is a config model (checked with the field named on error), a pure formatting function and the
send: :mod:`.slack` (a Block Kit message to an incoming webhook), :mod:`.webhook` (the event as versioned,
HMAC-signed JSON) and :mod:`.email` (SMTP, plain text with an HTML alternative). :mod:`.base` holds what
they share (the guarded POST, failure classes, formatting helpers), :mod:`.registry` the union of configs,
parsing and building, and :mod:`.deliver` the ``alerts.deliver`` job that sends one event through one
notifier, retried with backoff and delivered once. ``docs/alerts-notifiers.md`` is the user's guide.
"""

from __future__ import annotations

from .base import ALLOWED_NETWORKS_SETTING, DeliveryRetry, PartialDelivery, sparkline
from .deliver import (
    AlertSource,
    Delivered,
    DeliveryJob,
    DeliveryMarks,
    RetryPolicy,
    SettingsMarks,
    delivery_jobs,
    delivery_key,
    delivery_statuses,
)
from .email import EmailConfig, EmailNotifier, email_message
from .registry import (
    NOTIFIERS_PATH,
    NotifierConfig,
    build_notifier,
    check_notifier_name,
    configured_notifiers,
    parse_notifier,
    sample_event,
)
from .slack import SlackConfig, SlackNotifier, slack_message
from .webhook import (
    SIGNATURE_HEADER,
    WEBHOOK_SCHEMA_VERSION,
    WebhookConfig,
    WebhookNotifier,
    sign,
    webhook_body,
)

__all__ = [
    "ALLOWED_NETWORKS_SETTING",
    "NOTIFIERS_PATH",
    "SIGNATURE_HEADER",
    "WEBHOOK_SCHEMA_VERSION",
    "AlertSource",
    "Delivered",
    "DeliveryJob",
    "DeliveryMarks",
    "DeliveryRetry",
    "EmailConfig",
    "EmailNotifier",
    "NotifierConfig",
    "PartialDelivery",
    "RetryPolicy",
    "SettingsMarks",
    "SlackConfig",
    "SlackNotifier",
    "WebhookConfig",
    "WebhookNotifier",
    "build_notifier",
    "check_notifier_name",
    "configured_notifiers",
    "delivery_jobs",
    "delivery_key",
    "delivery_statuses",
    "email_message",
    "parse_notifier",
    "sample_event",
    "slack_message",
    "sign",
    "sparkline",
    "webhook_body",
]
