"""The paging contract every vendor client follows, the registry of clients and their HTTP error mapping.

A pull is a sequence of pages. A page carries the events it found, the cursor that resumes *after* it
(``None`` on the last page) and the newest call start time it saw. The caller stores the cursor once a
page's events are durably ingested, so an interrupted pull resumes at the first page not yet stored, and
stores the newest start time at the end, so the next pull asks only for newer calls. Cursors are opaque
strings; only the client that made one reads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from ...errors import AuthError, ConvoscopeError, InputError, NotFound, PayloadError

__all__ = [
    "PULLERS",
    "Page",
    "Puller",
    "PullerSpec",
    "get_puller",
    "parse_since",
    "request",
    "request_json",
]


@dataclass(frozen=True)
class Page:
    """One page of a vendor's call list, as webhook-shaped events."""

    events: list[Any]
    cursor: str | None
    """Where the next page starts; ``None`` when this was the last one."""
    newest: datetime | None = None
    """The latest call start time among this page's calls (the next pull's lower bound)."""
    skipped: int = 0
    """Listed calls left out (older than ``since``), so progress can still count them."""
    total: int | None = None
    """How many calls the whole list holds, when the vendor says (Bland's ``count``)."""


class Puller(Protocol):
    """A vendor's call list, page by page."""

    source: str

    def page(self, *, since: datetime | None, cursor: str | None) -> Page:
        """The page at ``cursor`` (``None``: the first) of calls that started at or after ``since``."""
        ...


@dataclass(frozen=True)
class PullerSpec:
    """How to reach one vendor: its public API root, its auth header, and the client class."""

    base_url: str
    auth_headers: Callable[[str], dict[str, str]]
    factory: Callable[..., Puller]
    audio: bool = False
    """Whether the factory takes ``with_audio``: the vendor serves audio apart from the call (ElevenLabs)."""


PULLERS: tuple[str, ...] = ("vapi", "retell", "elevenlabs", "bland")
"""The vendors ``convoscope pull`` can page through, each a module of this package with a ``SPEC``."""


def get_puller(name: str) -> PullerSpec:
    """The spec of the vendor client called ``name``; NotFound for a vendor with no list API here."""
    if name not in PULLERS:
        raise NotFound(f"cannot pull from {name!r}; pull supports {', '.join(PULLERS)}")
    spec = importlib.import_module(f"{__package__}.{name}").SPEC
    assert isinstance(spec, PullerSpec)
    return spec


def parse_since(value: str) -> datetime:
    """``--since``: an ISO date (midnight UTC) or date-time (UTC unless it carries an offset)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"--since: {value!r} is not an ISO date such as 2025-01-31 or 2025-01-31T12:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def request(http: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
    """One vendor API call; failures become our errors with the vendor's own message.

    401/403 is the vendor refusing the API key (AuthError), 404 a missing object (NotFound); any other
    answer of 400 or more or a network failure is a ConvoscopeError naming the request, so
    ``convoscope pull`` stops with one clear line and the saved cursor stays where it was.
    """
    try:
        response = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise ConvoscopeError(f"{what}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        detail = response.text[:300].strip()
        message = f"{what}: the vendor answered {response.status_code}: {detail}"
        if response.status_code in (401, 403):
            raise AuthError(f"{message} (check the API key)")
        if response.status_code == 404:
            raise NotFound(message)
        raise ConvoscopeError(message)
    return response


def request_json(http: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
    """:func:`request`'s answer as JSON; a body that is not JSON is a PayloadError."""
    response = request(http, method, url, what=what, **kwargs)
    try:
        return response.json()
    except ValueError:
        raise PayloadError(f"{what}: the vendor's answer is not JSON") from None
