"""The email notifier against a real SMTP server on loopback (aiosmtpd): login without TLS (allowed by the
config), the message's subject, text and HTML parts, and how SMTP's answers become retries or failures
(a wrong password, a temporary refusal, a server without STARTTLS, a recipient refused among others).
"""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from convoscope.alerts.events import AlertEvent, DeliveryError, Severity
from convoscope.alerts.notifiers import (
    NOTIFIERS_PATH,
    DeliveryJob,
    EmailNotifier,
    PartialDelivery,
    SettingsMarks,
    build_notifier,
    configured_notifiers,
    delivery_jobs,
    delivery_statuses,
    parse_notifier,
)
from convoscope.alerts.notifiers.base import DeliveryRetry
from convoscope.errors import NotFound, PayloadError
from convoscope.runtime.jobs import JobRetry, JobRunner
from convoscope.runtime.kinds import ALERTS_DELIVER
from convoscope.store.metadata import MetadataStore

# The test server takes a login without TLS on purpose (the notifier's allow_plaintext_auth case).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

LOOPBACK = (ip_network("127.0.0.1/32"),)
USER, PASSWORD = "alerts@example.test", "s3cret-pw"
ENV = {"SMTP_PASSWORD": PASSWORD, "WRONG_PASSWORD": "nope"}


@dataclass
class Mailbox:
    """What the server received, and how it answers recipients (address -> SMTP reply)."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.box.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.box.messages.append((envelope, parsed))
        return "250 Message accepted"


class _LoopbackController(Controller):
    """aiosmtpd's controller on an ephemeral port (its readiness probe needs the real one)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _authenticator(box: Mailbox) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == USER
            and data.password.decode() == PASSWORD
        ):
            box.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return check


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on 127.0.0.1 that requires a login, offers no STARTTLS and allows AUTH in clear."""
    box = Mailbox()
    controller = _LoopbackController(
        _Handler(box),
        hostname="127.0.0.1",
        port=0,
        authenticator=_authenticator(box),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def config(port: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": USER,
        "password_env": "SMTP_PASSWORD",
        "allow_plaintext_auth": True,
        "sender": "alerts@example.test",
        "to": ["oncall@example.test", "lead@example.test"],
        "helo_name": "convoscope.test",
        "timeout_s": 5,
    }
    data.update(changes)
    return data


def event(**changes: Any) -> AlertEvent:
    fields: dict[str, Any] = {
        "id": "ev-1",
        "project_id": "p",
        "rule_id": "p95-latency",
        "rule_name": "p95 agent latency",
        "state": "firing",
        "severity": Severity.CRITICAL,
        "at": datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        "summary": "p95 agent latency 2.31 s over 1.5 s <in 15 min>",
        "value": 2.31,
        "threshold": 1.5,
        "sample_size": 120,
        "window_s": 900.0,
        "call_ids": ("call-a", "call-b"),
        "series": (1.0, 2.0, 3.0),
        "ui_base_url": "http://ui.test",
    }
    fields.update(changes)
    return AlertEvent(**fields)


def deliver(data: dict[str, Any], sent: AlertEvent | None = None) -> None:
    notifier = build_notifier("mail", parse_notifier("mail", data), env=ENV, allowed_networks=LOOPBACK)
    notifier.deliver(sent or event())


def test_mail_is_sent_with_login_subject_text_and_html(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    deliver(config(port))

    assert box.logins == [USER]
    ((envelope, message),) = box.messages
    assert envelope.mail_from == "alerts@example.test"
    assert envelope.rcpt_tos == ["oncall@example.test", "lead@example.test"]
    assert message["Subject"] == "[convoscope] FIRING [critical] p95 agent latency"
    assert message["To"] == "oncall@example.test, lead@example.test"
    assert message["X-Convoscope-Event"] == "alert.firing"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert "FIRING · critical · p95 agent latency" in plain
    assert "p95 agent latency 2.31 s over 1.5 s <in 15 min>" in plain
    assert "Value:       2.31" in plain and "Threshold:   1.5" in plain and "Window:      15 min" in plain
    assert "▁▅█" in plain and "call-a  http://ui.test/calls/call-a" in plain
    markup = html.get_content()
    assert "&lt;in 15 min&gt;" in markup and '<a href="http://ui.test/calls/call-b">call-b</a>' in markup

    deliver(config(port), event(id="ev-2", state="resolved", value=1.1))
    resolved = box.messages[1][1]
    assert resolved["Subject"] == "[convoscope] RESOLVED [critical] p95 agent latency"
    body = resolved.get_body(("plain",))
    assert body is not None and "Value now:   1.1" in body.get_content()


def test_a_wrong_password_fails_for_good(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    with pytest.raises(DeliveryError, match=f"refused the login of '{USER}': 535") as raised:
        deliver(config(port, password_env="WRONG_PASSWORD"))
    assert not raised.value.retryable and "nope" not in str(raised.value)
    assert box.messages == []


def test_a_server_without_starttls_is_refused_when_starttls_is_asked(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as raised:
        deliver(config(port, security="starttls", allow_plaintext_auth=False))
    assert not raised.value.retryable and box.logins == [] and box.messages == []


def test_a_login_in_clear_needs_to_be_allowed() -> None:
    with pytest.raises(PayloadError, match="security: a login over an unencrypted connection"):
        parse_notifier("mail", config(25, allow_plaintext_auth=False))


def test_a_temporary_refusal_is_retried(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    box.rcpt_replies = {addr: "451 4.7.1 Greylisted, try again later" for addr in config(port)["to"]}
    with pytest.raises(DeliveryRetry, match="deferred every recipient.*451"):
        deliver(config(port))
    box.rcpt_replies = {"oncall@example.test": "550 5.1.1 No such user"}
    box.rcpt_replies["lead@example.test"] = "550 5.1.1 No such user"
    with pytest.raises(DeliveryError, match="refused every recipient") as raised:
        deliver(config(port))
    assert not raised.value.retryable and box.messages == []


def test_loopback_smtp_is_refused_unless_allowed(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = build_notifier("mail", parse_notifier("mail", config(port)), env=ENV)
    with pytest.raises(DeliveryError, match="127.0.0.1 is a loopback address") as raised:
        notifier.deliver(event())
    assert not raised.value.retryable and box.logins == []


class Source:
    def __init__(self, meta: MetadataStore, events: list[AlertEvent]) -> None:
        self.meta = meta
        self.events = {e.id: e for e in events}

    def load_event(self, project_id: str, event_id: str) -> AlertEvent:
        if event_id not in self.events:
            raise NotFound(f"alert event {event_id} not found")
        return self.events[event_id]

    def load_notifier(self, project_id: str, name: str) -> Any:
        return configured_notifiers(self.meta.project_settings(project_id))[name]


def test_the_job_retries_a_greylisted_mail_and_records_a_partial_refusal_once(
    smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = smtp
    with MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}") as meta:
        project = meta.ensure_project("default").id
        meta.update_project_settings(project, (*NOTIFIERS_PATH, "mail"), config(port))
        sent = event(project_id=project)
        source = Source(meta, [sent])
        handler = DeliveryJob(source, SettingsMarks(meta), env=ENV, allowed_networks=LOOPBACK)

        box.rcpt_replies = {addr: "451 4.3.0 Try again later" for addr in config(port)["to"]}
        meta.enqueue_jobs(project, delivery_jobs(sent, ["mail"]))
        (job,) = meta.claim_jobs([ALERTS_DELIVER], 1)
        with pytest.raises(JobRetry, match="email notifier 'mail': .*451") as raised:
            handler(job)
        assert raised.value.after_s == 60.0

        box.rcpt_replies = {"lead@example.test": "550 5.1.1 No such user"}
        meta.enqueue_jobs(project, delivery_jobs(sent, ["mail"]))
        runner = JobRunner(meta, {ALERTS_DELIVER: handler})
        runner.run_until_idle()
        status = delivery_statuses(meta, project, sent.id, ["mail"])["mail"]
        assert status.status == "failed"
        assert "delivered to some recipients but refused lead@example.test: 550" in (status.error or "")
        assert [envelope.rcpt_tos for envelope, _ in box.messages] == [["oncall@example.test"]]

        meta.enqueue_jobs(project, delivery_jobs(sent, ["mail"]))  # marked delivered: not mailed twice
        runner.run_until_idle()
        assert len(box.messages) == 1
        assert delivery_statuses(meta, project, sent.id, ["mail"])["mail"].status == "done"


def test_partial_delivery_is_not_retryable() -> None:
    assert not PartialDelivery("x").retryable


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_starttls_then_login_and_the_certificate_is_checked(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    box = Mailbox()
    controller = _LoopbackController(
        _Handler(box),
        hostname="127.0.0.1",
        port=0,
        authenticator=_authenticator(box),
        auth_required=True,
        tls_context=server_context,
        require_starttls=True,
    )
    controller.start()
    try:
        data = config(controller.port, security="starttls", allow_plaintext_auth=False)
        parsed = parse_notifier("mail", data)
        trusting = ssl.create_default_context(cafile=str(cert))
        notifier = EmailNotifier("mail", parsed, env=ENV, allowed_networks=LOOPBACK, ssl_context=trusting)
        notifier.deliver(event())
        assert box.logins == [USER] and len(box.messages) == 1

        stranger = EmailNotifier("mail", parsed, env=ENV, allowed_networks=LOOPBACK)  # the system's CAs
        with pytest.raises(DeliveryError, match="TLS certificate not accepted") as raised:
            stranger.deliver(event())
        assert not raised.value.retryable and len(box.messages) == 1
    finally:
        controller.stop()
