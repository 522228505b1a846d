"""The one exception tree of convoscope.

Every error that crosses a module boundary is one of these, so the server can map a class to a status
code in one handler and the CLI can print one line without a traceback::

    ConvoscopeError
     ├── InputError            the caller sent something we cannot accept (4xx)
     │    ├── PayloadError     malformed JSON, a wrong type, a missing field (422 / 400)
     │    ├── PayloadTooLarge  a body or a call over its size bound (413)
     │    ├── SignatureError   a webhook signature that does not verify (401)
     │    └── AudioFormatError a recording that is not audio, truncated or of the wrong shape (422)
     ├── AuthError             no key, or a key that does not open this project (401 / 403)
     ├── NotFound              the thing asked for does not exist in this project (404)
     ├── StoreError            the store failed or is held by another process (503)
     └── JudgeError            an LLM judge endpoint failed (502)

Messages say what went wrong and where (a field path, a file, a line), never a secret.
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "AuthError",
    "CallRefused",
    "ConvoscopeError",
    "Forbidden",
    "InputError",
    "JudgeError",
    "NotFound",
    "PayloadError",
    "PayloadTooLarge",
    "SignatureError",
    "StoreError",
    "Unsupported",
    "field_error",
]


class ConvoscopeError(Exception):
    """Base of every error convoscope raises on purpose."""


class InputError(ConvoscopeError):
    """The caller sent something we cannot accept."""


class PayloadError(InputError):
    """A body that is not valid JSON or does not match the schema.

    ``errors`` holds one entry per problem, each with the field path (``loc``) and a message, so an API
    response or a CLI line can point at the exact place.
    """

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def field_error(where: str, message: str) -> PayloadError:
    """The error for one field: the message names it, and ``errors`` carries it as ``loc`` (a 422)."""
    return PayloadError(f"{where}: {message}", [{"loc": where, "msg": message, "type": "value_error"}])


class PayloadTooLarge(InputError):
    """A request body, or one call inside it, over its configured bound."""


class SignatureError(InputError):
    """A webhook whose signature is missing or does not verify."""


class AudioFormatError(InputError):
    """Bytes that are not a readable recording of the expected shape."""


class AuthError(ConvoscopeError):
    """A missing or unknown API key."""


class Forbidden(ConvoscopeError):
    """A known key whose role does not allow what was asked."""


class NotFound(ConvoscopeError):
    """The requested object does not exist, or not in the caller's project."""


class StoreError(ConvoscopeError):
    """The store could not be opened, queried or written."""


class Unsupported(StoreError):
    """The configured store cannot do what was asked (a 501): not a fault, a limit of that deployment."""


class CallRefused(StoreError):
    """The engine refused a write and named the rows it refused: ``indexes`` are those calls' positions
    in the calls given to the write, so a caller can set them aside without searching for them.
    ``others_written``: every other call of the write was stored; else none is known to be."""

    def __init__(self, message: str, indexes: list[int], *, others_written: bool) -> None:
        super().__init__(message)
        self.indexes = indexes
        self.others_written = others_written


class JudgeError(ConvoscopeError):
    """An LLM judge endpoint failed after its retries."""
