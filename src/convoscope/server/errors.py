"""One mapping from our exception tree to HTTP responses.

Bodies are ``{"error": {"type", "message", "details"}}``; details list field paths for validation
errors. Messages never carry secrets or internals.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..errors import (
    AudioFormatError,
    AuthError,
    ConvoscopeError,
    JudgeError,
    NotFound,
    PayloadError,
    PayloadTooLarge,
    SignatureError,
    StoreError,
)

__all__ = ["install_error_handlers", "status_for"]

_STATUS: list[tuple[type[ConvoscopeError], int]] = [
    (PayloadTooLarge, 413),
    (SignatureError, 401),
    (AudioFormatError, 422),
    (PayloadError, 422),
    (AuthError, 401),
    (NotFound, 404),
    (StoreError, 503),
    (JudgeError, 502),
]


def status_for(exc: ConvoscopeError) -> int:
    """The HTTP status of an error class (400 for any other input error)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _body(kind: str, message: str, details: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"error": {"type": kind, "message": message, "details": details or []}}


async def _convoscope_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConvoscopeError)
    details = exc.errors if isinstance(exc, PayloadError) else []
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return JSONResponse(
        _body(type(exc).__name__, str(exc), details), status_code=status_for(exc), headers=headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details: list[dict[str, object]] = [
        {
            "loc": ".".join(str(p) for p in err.get("loc", ())),
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]
    message = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
    return JSONResponse(_body("PayloadError", f"invalid request: {message}", details), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on an app."""
    app.add_exception_handler(ConvoscopeError, _convoscope_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
