"""Email notifier: one message per event over SMTP, plain text with an HTML alternative.

The connection goes through the egress guard (the SMTP host is resolved once, checked, and connected
to by address; TLS still verifies the certificate against the host name). ``security`` is ``starttls``
(the default: upgrade a plain connection, refuse a server that does not offer it), ``tls`` (implicit TLS,
port 465) or ``none``. A login is optional; its password is read from the environment variable named by
``password_env`` when the notifier is built and never stored, and it is not sent over an unencrypted
connection unless ``allow_plaintext_auth`` says so (a relay on a trusted network).

The subject carries the state, severity and rule (``[convoscope] FIRING [critical] p95 latency``); the
body the summary, the numbers, a text sparkline and the call links (:func:`email_message`, pure).
SMTP's own classes decide retries: a 4xx reply (a greylisting server, a full mailbox queue), a timeout
or a dropped connection is retried; a 5xx reply, a failed login or a missing STARTTLS is not.
"""

from __future__ import annotations

import html
import re
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Annotated, Literal

import httpcore
from pydantic import AfterValidator, Field, model_validator

from ...runtime.egress import AddressRefused, Network, guarded_socket
from ..events import AlertEvent, DeliveryError, Severity
from .base import (
    ALERTS_EGRESS,
    DeliveryRetry,
    EnvName,
    NotifierSettings,
    PartialDelivery,
    env_secret,
    format_number,
    format_window,
    headline,
    scalar_details,
    sparkline,
    utc,
)

__all__ = ["EmailConfig", "EmailNotifier", "email_message"]

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


def _address(value: str) -> str:
    if len(value) > 320 or not _ADDRESS.match(value):
        raise ValueError(f"{value[:80]!r} is not an address like name@example.com")
    return value


Address = Annotated[str, AfterValidator(_address)]
"""An address as ``local@domain`` (no display name)."""

_HOST = r"^[A-Za-z0-9.:\[\]-]+$"
_COLOURS = {Severity.CRITICAL: "#E01E5A", Severity.WARNING: "#ECB22E", Severity.INFO: "#36C5F0"}
_RESOLVED_COLOUR = "#2EB67D"


class EmailConfig(NotifierSettings):
    """An SMTP server and who gets the mail."""

    kind: Literal["email"] = "email"
    host: str = Field(min_length=1, max_length=253, pattern=_HOST)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """``starttls`` (upgrade, required), ``tls`` (implicit TLS, usually port 465) or ``none``."""
    username: str | None = Field(default=None, min_length=1, max_length=320)
    """Login name; none: no login."""
    password_env: EnvName | None = None
    """Environment variable holding the login's password (required with ``username``)."""
    allow_plaintext_auth: bool = False
    """Allow the login over an unencrypted connection (``security: none``)."""
    sender: Address
    """The From address."""
    sender_name: str = Field(default="convoscope", max_length=100, pattern=r"^[^\r\n<>\"]*$")
    to: list[Address] = Field(min_length=1, max_length=50)
    """Recipients."""
    subject_prefix: str = Field(default="[convoscope]", max_length=60, pattern=r"^[^\r\n]*$")
    max_links: int = Field(default=10, ge=0, le=50)
    """Most calls listed with their links."""
    helo_name: str | None = Field(default=None, max_length=253, pattern=_HOST)
    """The name given in EHLO; none: this machine's fully qualified name."""

    @model_validator(mode="after")
    def _login(self) -> EmailConfig:
        if self.username is not None and self.password_env is None:
            raise ValueError("password_env: a login (username) needs the variable holding its password")
        if self.password_env is not None and self.username is None:
            raise ValueError("username: password_env is set but there is no username to log in with")
        if self.username is not None and self.security == "none" and not self.allow_plaintext_auth:
            raise ValueError(
                "security: a login over an unencrypted connection sends the password in clear; "
                "use starttls or tls, or set allow_plaintext_auth"
            )
        return self


def _subject(event: AlertEvent, prefix: str) -> str:
    state = "FIRING" if event.state == "firing" else "RESOLVED"
    subject = f"{prefix} {state} [{event.severity}] {event.rule_name}".strip()
    return " ".join(subject.split())[:250]


def _numbers(event: AlertEvent) -> list[tuple[str, str]]:
    rows = [
        ("Value" if event.state == "firing" else "Value now", format_number(event.value)),
        ("Threshold", format_number(event.threshold)),
        ("Sample size", f"{event.sample_size} call{'s' if event.sample_size != 1 else ''}"),
        ("Window", format_window(event.window_s)),
    ]
    trend = sparkline(event.series)
    if trend:
        rows.append(("Trend", f"{trend}  (last {min(len(event.series), 24)} buckets, oldest first)"))
    return rows + scalar_details(event, limit=10)


def _text(event: AlertEvent, max_links: int) -> str:
    lines = [headline(event), "", event.summary, ""]
    rows = _numbers(event)
    width = max(len(label) for label, _ in rows) + 1
    lines += [f"{label + ':':<{width}} {value}" for label, value in rows]
    calls = list(event.call_ids)[:max_links]
    if calls:
        lines += ["", "Calls:"]
        lines += [f"  {call_id}  {event.call_url(call_id) or ''}".rstrip() for call_id in calls]
        if len(event.call_ids) > len(calls):
            lines.append(f"  and {len(event.call_ids) - len(calls)} more")
    at = utc(event.at)
    lines += [
        "",
        f"Rule {event.rule_id} · project {event.project_id} · event {event.id} · {at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    return "\n".join(lines) + "\n"


def _html(event: AlertEvent, max_links: int) -> str:
    esc = html.escape
    colour = _RESOLVED_COLOUR
    if event.state == "firing":
        colour = _COLOURS.get(event.severity, _COLOURS[Severity.INFO])
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{esc(label)}</th>'
        f'<td style="font-family:monospace">{esc(value)}</td></tr>'
        for label, value in _numbers(event)
    )
    calls = list(event.call_ids)[:max_links]
    items = []
    for call_id in calls:
        url = event.call_url(call_id)
        shown = f'<a href="{esc(url)}">{esc(call_id)}</a>' if url else f"<code>{esc(call_id)}</code>"
        items.append(f"<li>{shown}</li>")
    if len(event.call_ids) > len(calls):
        items.append(f"<li>and {len(event.call_ids) - len(calls)} more</li>")
    calls_html = f"<p><b>Calls</b></p><ul>{''.join(items)}</ul>" if items else ""
    at = utc(event.at)
    return (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f'<div style="border-left:6px solid {colour};padding-left:12px">'
        f'<h2 style="margin:0 0 8px 0">{esc(headline(event))}</h2>'
        f"<p>{esc(event.summary)}</p>"
        f"<table>{rows}</table>{calls_html}"
        f'<p style="color:#666;font-size:small">Rule {esc(event.rule_id)} · project {esc(event.project_id)}'
        f" · event {esc(event.id)} · {at:%Y-%m-%d %H:%M:%S} UTC</p>"
        "</div></body></html>"
    )


def email_message(event: AlertEvent, config: EmailConfig) -> EmailMessage:
    """The message for ``event`` (pure): headers, the plain text, and its HTML alternative."""
    message = EmailMessage()
    message["Subject"] = _subject(event, config.subject_prefix)
    message["From"] = f'"{config.sender_name}" <{config.sender}>' if config.sender_name else config.sender
    message["To"] = ", ".join(config.to)
    message["Date"] = format_datetime(utc(event.at))
    message["Message-ID"] = make_msgid(domain=config.sender.rsplit("@", 1)[1])
    message["X-Convoscope-Event"] = f"alert.{event.state}"
    message["X-Convoscope-Event-Id"] = event.id
    message.set_content(_text(event, config.max_links))
    message.add_alternative(_html(event, config.max_links), subtype="html")
    return message


class _GuardedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose connection goes through the egress guard (and, for ``tls``, is wrapped)."""

    def __init__(
        self,
        *,
        timeout: float,
        allowed: tuple[Network, ...],
        context: ssl.SSLContext,
        implicit_tls: bool,
        local_hostname: str | None,
    ) -> None:
        self._allowed = allowed
        self._context = context
        self._implicit_tls = implicit_tls
        super().__init__(timeout=timeout, local_hostname=local_hostname)

    def open(self, host: str, port: int) -> None:
        self._host = host  # STARTTLS verifies the certificate against this name
        code, reply = self.connect(host, port)
        if code != 220:
            self.close()
            raise smtplib.SMTPConnectError(code, reply)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = guarded_socket(host, port, timeout, self._allowed, egress=ALERTS_EGRESS)
        if self._implicit_tls:
            return self._context.wrap_socket(sock, server_hostname=host)
        return sock


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return f"{exc.smtp_code} {' '.join(text.split())}"[:300]


class EmailNotifier:
    """Delivers events by mail through one SMTP server."""

    def __init__(
        self,
        name: str,
        config: EmailConfig,
        *,
        env: Mapping[str, str],
        allowed_networks: Iterable[Network] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Reads the password from ``env`` now (a missing one is an error naming ``password_env``)."""
        self._name = name
        self._config = config
        self._password = (
            env_secret(env, config.password_env, field="password_env") if config.password_env else None
        )
        self._allowed = tuple(allowed_networks)
        self._context = ssl_context or ssl.create_default_context()

    @property
    def name(self) -> str:
        return self._name

    def deliver(self, event: AlertEvent) -> None:
        config = self._config
        shown = f"smtp://{config.host}:{config.port}"
        message = email_message(event, config)
        try:
            refused = self._send(message)
        except AddressRefused as exc:
            raise DeliveryError(f"{shown}: {exc}", retryable=False) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{shown} refused the login of {config.username!r}: {_reply(exc)}", retryable=False
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{shown}: {exc}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            replies = {address: f"{code} {text!r}" for address, (code, text) in exc.recipients.items()}
            detail = "; ".join(f"{address}: {reply}" for address, reply in replies.items())
            if all(400 <= code < 500 for code, _ in exc.recipients.values()):
                raise DeliveryRetry(f"{shown} deferred every recipient: {detail}") from None
            raise DeliveryError(f"{shown} refused every recipient: {detail}", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise DeliveryRetry(f"{shown} answered {_reply(exc)} (temporary)") from None
            raise DeliveryError(f"{shown} answered {_reply(exc)}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{shown}: TLS certificate not accepted: {exc.verify_message}", retryable=False
            ) from None
        except TimeoutError:
            raise DeliveryRetry(f"{shown}: no answer within {config.timeout_s:g} s") from None
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryRetry(f"{shown}: connection closed: {exc}") from None
        except OSError as exc:
            raise DeliveryRetry(f"{shown}: {type(exc).__name__}: {exc}") from None
        except httpcore.ConnectError as exc:  # the host's name does not resolve (now)
            raise DeliveryRetry(f"{shown}: {exc}") from None
        if refused:
            detail = "; ".join(f"{address}: {code} {text!r}" for address, (code, text) in refused.items())
            raise PartialDelivery(f"{shown} delivered to some recipients but refused {detail}")

    def _send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        config = self._config
        with _GuardedSMTP(
            timeout=config.timeout_s,
            allowed=self._allowed,
            context=self._context,
            implicit_tls=config.security == "tls",
            local_hostname=config.helo_name,
        ) as smtp:
            smtp.open(config.host, config.port)
            smtp.ehlo()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS (security: starttls); set security to none "
                        "only for a relay on a trusted network"
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if config.username is not None and self._password is not None:
                smtp.login(config.username, self._password)
            return smtp.send_message(message)
