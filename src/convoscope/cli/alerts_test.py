"""``convoscope alerts test``: a made-up alert event through notifiers, to see that alerts reach people.

With no option, every notifier configured in the project (its settings document, ``alerts.notifiers``) is
tried; ``--notifier NAME`` picks some of them, and ``--slack-url``, ``--webhook-url`` or ``--smtp-host``
try a notifier given on the command line without configuring it. Each is sent the same sample event,
synchronously and once (no retries: the point is to see the error), and gets one line: ``delivered`` or
why not. Exit 1 when any failed, 2 for options it cannot use.

Secrets come from environment variables named in the configs (``--secret-env``, ``--smtp-password-env``),
read from this process's environment. Notifier addresses go through the same egress guard as the
server's deliveries; ``--allow-network`` lists a non-public network that may be reached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ..errors import InputError, NotFound
from ._shared import BAD_INPUT_EXIT, DataDir, Project, command_group, fail, run_reporting_errors

if TYPE_CHECKING:
    from ..alerts.notifiers import NotifierConfig
    from ..runtime.egress import Network

__all__ = ["adhoc_notifiers", "alerts_test_command", "app", "send_test_alerts"]

app = command_group("Alerts: rules over the stored metrics, and the notifiers that deliver them.")
"""The ``convoscope alerts`` group (its first command is ``test``; others may join it)."""

console = Console()


def adhoc_notifiers(
    *,
    slack_url: str | None = None,
    webhook_url: str | None = None,
    secret_env: str | None = None,
    smtp_host: str | None = None,
    smtp_port: int = 587,
    smtp_security: str = "starttls",
    smtp_user: str | None = None,
    smtp_password_env: str | None = None,
    smtp_from: str | None = None,
    smtp_to: Sequence[str] = (),
    timeout_s: float = 10.0,
) -> dict[str, NotifierConfig]:
    """The notifiers given by options (named ``cli-slack``, ``cli-webhook``, ``cli-email``), each checked
    like a stored config; an error names the option."""
    from ..alerts.notifiers import parse_notifier
    from ..errors import PayloadError

    wanted: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    if slack_url is not None:
        wanted["cli-slack"] = ({"kind": "slack", "url": slack_url}, {"url": "--slack-url"})
    if webhook_url is not None:
        config: dict[str, Any] = {"kind": "webhook", "url": webhook_url}
        if secret_env is not None:
            config["secret_env"] = secret_env
        wanted["cli-webhook"] = (config, {"url": "--webhook-url", "secret_env": "--secret-env"})
    elif secret_env is not None:
        raise InputError("--secret-env signs a --webhook-url; give the URL too")
    if smtp_host is None:
        if smtp_user is not None or smtp_password_env is not None or smtp_from is not None or smtp_to:
            raise InputError("--smtp-user, --smtp-password-env, --smtp-from and --smtp-to need --smtp-host")
    else:
        if smtp_from is None or not smtp_to:
            raise InputError("--smtp-host needs --smtp-from and at least one --smtp-to")
        email: dict[str, Any] = {
            "kind": "email",
            "host": smtp_host,
            "port": smtp_port,
            "security": smtp_security,
            "sender": smtp_from,
            "to": list(smtp_to),
        }
        if smtp_user is not None:
            email["username"] = smtp_user
        if smtp_password_env is not None:
            email["password_env"] = smtp_password_env
        options = {
            "host": "--smtp-host",
            "port": "--smtp-port",
            "security": "--smtp-security",
            "username": "--smtp-user",
            "password_env": "--smtp-password-env",
            "sender": "--smtp-from",
            "to": "--smtp-to",
        }
        wanted["cli-email"] = (email, options)
    found: dict[str, NotifierConfig] = {}
    for name, (data, options) in wanted.items():
        try:
            found[name] = parse_notifier(name, {**data, "timeout_s": timeout_s})
        except PayloadError as exc:
            first = exc.errors[0] if exc.errors else {}
            field = str(first.get("loc", "")).split(".", 1)[0]
            raise InputError(f"{options.get(field, field)}: {first.get('msg', exc)}") from None
    return found


def send_test_alerts(
    notifiers: Mapping[str, NotifierConfig],
    *,
    project_id: str,
    env: Mapping[str, str],
    allowed_networks: Sequence[Network] = (),
    resolved: bool = False,
    ui_base_url: str | None = None,
) -> list[tuple[str, str | None]]:
    """Send the sample event through each notifier once; ``(name, None)`` when delivered, else
    ``(name, why not)``."""
    from ..alerts.events import DeliveryError
    from ..alerts.notifiers import build_notifier, sample_event

    event = sample_event(project_id, state="resolved" if resolved else "firing", ui_base_url=ui_base_url)
    outcomes: list[tuple[str, str | None]] = []
    for name, config in notifiers.items():
        try:
            build_notifier(name, config, env=env, allowed_networks=allowed_networks).deliver(event)
        except DeliveryError as exc:
            retry = " (would be retried)" if exc.retryable else ""
            outcomes.append((name, f"{config.kind}: {exc}{retry}"))
        else:
            outcomes.append((name, None))
    return outcomes


def _networks(values: Sequence[str]) -> list[Network]:
    from ipaddress import ip_network

    found: list[Network] = []
    for value in values:
        try:
            found.append(ip_network(value, strict=False))
        except ValueError:
            raise InputError(f"--allow-network {value!r} is not a network (e.g. 10.0.0.0/8)") from None
    return found


def _configured(data_dir: Path | None, project: str, names: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The project's id and its configured notifiers (those named, or all)."""
    from ..alerts.notifiers import configured_notifiers
    from ..store.metadata import MetadataStore
    from .locate import command_settings

    settings = command_settings(data_dir, reads_only=True)
    with MetadataStore(settings.resolved_metadata_url) as meta:
        info = meta.get_project(project)
        if info is None:
            raise NotFound(f"project {project!r} not found in {settings.data_dir}")
        notifiers = configured_notifiers(meta.project_settings(info.id))
    unknown = [name for name in names if name not in notifiers]
    if unknown:
        known = ", ".join(sorted(notifiers)) or "none"
        raise NotFound(
            f"notifier {', '.join(map(repr, unknown))} not configured in project {project!r} ({known})"
        )
    if names:
        notifiers = {name: notifiers[name] for name in names}
    return info.id, notifiers


def alerts_test_command(
    notifier: Annotated[
        list[str] | None,
        typer.Option(
            "--notifier",
            metavar="NAME",
            help="A configured notifier to try (repeatable; default: all of them).",
        ),
    ] = None,
    slack_url: Annotated[
        str | None, typer.Option("--slack-url", help="A Slack incoming webhook URL.")
    ] = None,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="A webhook receiver URL.")] = None,
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Variable holding the webhook's signing secret.")
    ] = None,
    smtp_host: Annotated[
        str | None, typer.Option("--smtp-host", help="SMTP server to send a test mail.")
    ] = None,
    smtp_port: Annotated[int, typer.Option("--smtp-port", help="SMTP port.")] = 587,
    smtp_security: Annotated[
        str, typer.Option("--smtp-security", help="starttls, tls (implicit, port 465) or none.")
    ] = "starttls",
    smtp_user: Annotated[str | None, typer.Option("--smtp-user", help="SMTP login name.")] = None,
    smtp_password_env: Annotated[
        str | None, typer.Option("--smtp-password-env", help="Variable holding the SMTP password.")
    ] = None,
    smtp_from: Annotated[str | None, typer.Option("--smtp-from", help="The mail's From address.")] = None,
    smtp_to: Annotated[
        list[str] | None, typer.Option("--smtp-to", metavar="ADDRESS", help="A recipient (repeatable).")
    ] = None,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Send a resolved event instead of a firing one.")
    ] = False,
    allow_network: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-network",
            metavar="CIDR",
            help="A non-public network (CIDR) notifiers may reach (repeatable).",
        ),
    ] = None,
    ui_url: Annotated[
        str | None, typer.Option("--ui-url", help="The convoscope UI's address, for the sample's call links.")
    ] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each receiver.")] = 10.0,
    project: Project = "default",
    data_dir: DataDir = None,
) -> None:
    """Send a made-up alert through notifiers (all configured ones by default) and say which got it."""

    def run() -> list[tuple[str, str | None]]:
        try:
            adhoc, networks = _options()
        except InputError as exc:
            fail(str(exc), BAD_INPUT_EXIT)
        project_id = project
        notifiers: dict[str, Any] = {}
        if notifier or not adhoc:
            project_id, notifiers = _configured(data_dir, project, notifier or [])
            if not notifiers:
                fail(
                    f"no notifier is configured in project {project!r}; give --slack-url, --webhook-url "
                    "or --smtp-host to try one",
                    BAD_INPUT_EXIT,
                )
        notifiers.update(adhoc)
        return send_test_alerts(
            notifiers,
            project_id=project_id,
            env=os.environ,
            allowed_networks=networks,
            resolved=resolved,
            ui_base_url=ui_url,
        )

    def _options() -> tuple[dict[str, Any], list[Network]]:
        adhoc = adhoc_notifiers(
            slack_url=slack_url,
            webhook_url=webhook_url,
            secret_env=secret_env,
            smtp_host=smtp_host,
            smtp_port=smtp_port,
            smtp_security=smtp_security,
            smtp_user=smtp_user,
            smtp_password_env=smtp_password_env,
            smtp_from=smtp_from,
            smtp_to=smtp_to or (),
            timeout_s=timeout_s,
        )
        return adhoc, _networks(allow_network or [])

    outcomes = run_reporting_errors(run)
    for name, error in outcomes:
        if error is None:
            console.print(f"{name}: delivered", highlight=False, soft_wrap=True)
        else:
            console.print(f"{name}: [red]failed[/red]: {error}", highlight=False, soft_wrap=True)
    if any(error is not None for _, error in outcomes):
        raise typer.Exit(code=1)


app.command("test")(alerts_test_command)
