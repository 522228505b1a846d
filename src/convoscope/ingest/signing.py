"""Webhook signature building blocks shared by the vendor adapters.

Vendors sign alike (an HMAC of the body, often with a timestamp against replays) but spell it differently;
each adapter composes these helpers in its ``verify``. Every comparison is constant-time and every failure
is a SignatureError that names the header at fault but never echoes a secret or an expected digest.
A body too large to hold in memory (ElevenLabs' audio webhook) is checked as it streams in:
:class:`HmacBodyCheck` hashes each piece, and the digest is compared once the last one arrived.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

from ..errors import SignatureError

__all__ = [
    "DEFAULT_REPLAY_WINDOW_S",
    "GENERIC_HEADER",
    "HmacBodyCheck",
    "check_fresh",
    "check_secret",
    "check_signature",
    "epoch_seconds",
    "hmac_hex",
    "parse_pairs",
    "require_header",
    "sign_generic",
    "verify_generic",
]

DEFAULT_REPLAY_WINDOW_S = 300.0
"""How far a signed timestamp may be from our clock: the five minutes Retell's own SDK allows."""

_MILLIS_THRESHOLD = 100_000_000_000
"""Epoch values above this are milliseconds (seconds reach it only in the year 5138)."""


def hmac_hex(secret: str, message: bytes, *, algorithm: str = "sha256") -> str:
    """The hex HMAC of ``message`` under ``secret``."""
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).hexdigest()


class HmacBodyCheck:
    """The HMAC of ``prefix + body`` for a body fed in pieces, compared with the digest a header gave.

    The signature's header is parsed, and its timestamp checked, before the body is read; a body fed here
    is only trusted after :meth:`finish` returned.
    """

    def __init__(
        self, secret: str, prefix: bytes, given: str, header: str, *, algorithm: str = "sha256"
    ) -> None:
        self._mac = hmac.new(secret.encode(), prefix, getattr(hashlib, algorithm))
        self._given = given
        self._header = header

    def update(self, chunk: bytes) -> None:
        """Hash the next piece of the body."""
        self._mac.update(chunk)

    def finish(self) -> None:
        """SignatureError unless the body fed so far is the one the header signed."""
        check_signature(self._mac.hexdigest(), self._given, self._header)


def require_header(headers: Mapping[str, str], name: str) -> str:
    """A header's value (``headers`` keys are lower-case); a missing one is a SignatureError naming it."""
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise SignatureError(f"missing signature header {name}")
    return value


def parse_pairs(value: str, header: str) -> dict[str, str]:
    """``a=1,b=2`` → ``{"a": "1", "b": "2"}``: the shape of timestamped signature headers."""
    pairs: dict[str, str] = {}
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep or not key:
            raise SignatureError(f"{header}: malformed, expected comma-separated key=value pairs")
        pairs[key] = item
    return pairs


def check_signature(expected: str, given: str, header: str) -> None:
    """Constant-time comparison of two hex digests (case-insensitive)."""
    if not hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode()):
        raise SignatureError(f"{header}: signature does not match the body")


def check_secret(expected: str, given: str, header: str) -> None:
    """Constant-time comparison of a shared secret sent as is (schemes with no HMAC)."""
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise SignatureError(f"{header}: secret does not match")


def epoch_seconds(value: str, header: str) -> float:
    """A signed timestamp in epoch seconds or milliseconds, as seconds."""
    try:
        number = float(value)
    except ValueError:
        raise SignatureError(f"{header}: timestamp {value[:32]!r} is not a number") from None
    if number != number or number < 0:  # NaN or negative
        raise SignatureError(f"{header}: timestamp is not a valid time")
    return number / 1000.0 if number >= _MILLIS_THRESHOLD else number


def check_fresh(timestamp_s: float, now: datetime, window_s: float, header: str) -> None:
    """A SignatureError when the signed time is further than ``window_s`` from ``now`` (either way)."""
    skew = abs(now.timestamp() - timestamp_s)
    if skew > window_s:
        raise SignatureError(
            f"{header}: signed {skew:.0f}s away from now, outside the {window_s:.0f}s replay window"
        )


GENERIC_HEADER = "x-convoscope-signature"
"""Our own scheme for senders without one: ``t=<epoch seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""


def sign_generic(secret: str, body: bytes, timestamp_s: int) -> str:
    """The ``x-convoscope-signature`` value a sender attaches to ``body``."""
    return f"t={timestamp_s},v1={hmac_hex(secret, str(timestamp_s).encode() + b'.' + body)}"


def verify_generic(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: datetime,
    window_s: float = DEFAULT_REPLAY_WINDOW_S,
) -> None:
    """Check an ``x-convoscope-signature`` header (see :func:`sign_generic`)."""
    pairs = parse_pairs(require_header(headers, GENERIC_HEADER), GENERIC_HEADER)
    stamp, digest = pairs.get("t"), pairs.get("v1")
    if not stamp or not digest:
        raise SignatureError(f"{GENERIC_HEADER}: expected t=<timestamp>,v1=<signature>")
    check_fresh(epoch_seconds(stamp, GENERIC_HEADER), now, window_s, GENERIC_HEADER)
    check_signature(hmac_hex(secret, stamp.encode() + b"." + body), digest, GENERIC_HEADER)
