"""Whether a recording is stored here: ``Recording.uri`` ``blob:<sha256>`` names our own copy.

A recording can also be known only by a vendor's link (``source_url``) that a ``recording.fetch`` job has
not copied yet, by a name inside a payload, or by a URI elsewhere; none of those is a recording one can
play from this server. Everything that asks "does this call have a recording" (the stored
``has_recording`` flag, the list filter, the recording endpoint, audio analysis) asks this module, so the
answer is one rule.
"""

from __future__ import annotations

import re

from .call import Recording

__all__ = ["BLOB_SCHEME", "blob_uri", "stored_sha"]

BLOB_SCHEME = "blob:"
"""The URI scheme of a recording whose bytes are in the blob store under their SHA-256."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def blob_uri(sha: str) -> str:
    """The ``uri`` of a recording stored under ``sha``."""
    return f"{BLOB_SCHEME}{sha}"


def stored_sha(recording: Recording) -> str | None:
    """The SHA-256 of our copy when ``recording`` is stored here, else ``None``."""
    uri = recording.uri or ""
    if not uri.startswith(BLOB_SCHEME):
        return None
    sha = uri[len(BLOB_SCHEME) :]
    return sha if _SHA256.fullmatch(sha) else None
