"""Outbound connections to an address a user gave us, kept away from the server's own networks (SSRF guard).

A recording link arrives in a vendor payload and an alert notifier's URL or SMTP host in a project's
settings; anyone who can post to a webhook (an unsigned source, a leaked secret) or edit a project's
settings could otherwise make the server connect to ``http://169.254.169.254/...`` or to an admin port on
loopback. The guard sits in the connection layer rather than in a pre-flight look-up: every TCP
connection, the first and each redirect's, resolves the host once, refuses it when *any* resolved address
is private, loopback, link-local, multicast, unspecified, reserved or otherwise not public (outside the
allowed networks), and then connects to exactly the addresses it checked, so a DNS answer cannot change
between check and connect. TLS still verifies the certificate against the host name given.

:class:`GuardedTransport` is the HTTP side (an httpx transport); :func:`guarded_socket` opens a plain TCP
connection the same way (the email notifier's SMTP connection). The capabilities that connect out
(recordings, alerts) share it from here, below all of them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import httpcore
import httpx

from ..errors import InputError

__all__ = [
    "RECORDINGS_EGRESS",
    "AddressRefused",
    "Egress",
    "GuardedTransport",
    "Network",
    "checked_addresses",
    "guarded_socket",
    "refusal",
]

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Sequence[Address]]


class AddressRefused(InputError):
    """A host on a network the server does not connect to; waiting will not change it."""


@dataclass(frozen=True)
class Egress:
    """Who connects out, for the refusal message: what is not done, and the setting that allows it."""

    refused: str
    """What the server does not do with such an address (``"recordings are not fetched from it"``)."""
    setting: str
    """The setting listing the allowed networks (``"CONVOSCOPE_RECORDING_FETCH_ALLOWED_NETWORKS"``)."""


RECORDINGS_EGRESS = Egress(
    "recordings are not fetched from it", "CONVOSCOPE_RECORDING_FETCH_ALLOWED_NETWORKS"
)
"""The recording fetcher's wording (the default, as before the guard was shared)."""


def refusal(address: Address, allowed: Iterable[Network]) -> str | None:
    """Why ``address`` may not be reached (``"loopback"``, ``"private"``...), or ``None`` when it may.

    An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) is judged as the IPv4 address it carries.
    """
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == network.version and address in network for network in allowed):
        return None
    for kind, hit in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # Shared (carrier-grade NAT) space and the like: Alibaba Cloud's metadata is 100.100.100.200.
        ("non-public", not address.is_global),
    ):
        if hit:
            return kind
    return None


def _resolve(host: str, port: int) -> list[Address]:
    """Every address the system resolver gives for ``host``, in its order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
    found: list[Address] = []
    for info in infos:
        address = ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def checked_addresses(
    host: str,
    port: int,
    allowed: Iterable[Network],
    *,
    egress: Egress = RECORDINGS_EGRESS,
    resolve: Resolver = _resolve,
) -> list[Address]:
    """The addresses of ``host``, resolved once; :class:`AddressRefused` when any of them is not allowed.

    A host that cannot be resolved raises ``httpcore.ConnectError`` (a network failure, worth retrying).
    """
    networks = tuple(allowed)
    addresses = list(resolve(host, port))
    for address in addresses:
        kind = refusal(address, networks)
        if kind is not None:
            shown = host if host == str(address) else f"{host} (resolves to {address})"
            raise AddressRefused(
                f"{shown} is a {kind} address; {egress.refused} unless its network is listed in "
                f"{egress.setting}"
            )
    return addresses


def guarded_socket(
    host: str,
    port: int,
    timeout: float | None,
    allowed: Iterable[Network],
    *,
    egress: Egress = RECORDINGS_EGRESS,
    resolve: Resolver = _resolve,
) -> socket.socket:
    """A TCP connection to ``host`` through the guard: to the first checked address that answers.

    Raises :class:`AddressRefused` for a refused address and ``OSError`` when no address answers (or
    ``httpcore.ConnectError`` when the name does not resolve).
    """
    failure: OSError | None = None
    for address in checked_addresses(host, port, allowed, egress=egress, resolve=resolve):
        try:
            return socket.create_connection((str(address), port), timeout=timeout)
        except OSError as exc:
            failure = exc
    raise failure or OSError(f"{host!r} resolves to no address")


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, connecting only to checked addresses."""

    def __init__(self, allowed: tuple[Network, ...], resolve: Resolver, egress: Egress) -> None:
        self._allowed = allowed
        self._resolve = resolve
        self._egress = egress
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(host, port, self._allowed, egress=self._egress, resolve=self._resolve)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host!r} resolves to no address")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise AddressRefused(f"a local socket is not a network address; {self._egress.refused}")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (timeouts, TLS, error mapping) over the guarded connection backend.

    httpx exposes no hook for the network backend, so the connection pool it builds is replaced by one
    with the same TLS context and the guarded backend; everything above the pool is httpx's.
    """

    def __init__(
        self,
        allowed: Iterable[Network] = (),
        *,
        resolve: Resolver = _resolve,
        egress: Egress = RECORDINGS_EGRESS,
    ) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(tuple(allowed), resolve, egress),
        )
