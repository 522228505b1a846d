"""One mapping from every error a request can meet to HTTP responses of one shape.

Bodies are ``{"error": {"type", "message", "details"}}``; details list field paths for validation
errors. Messages never carry secrets or internals. Besides our own tree, the framework raises its own
errors before a handler runs (an unknown path, a method the path does not take, a multipart body the
parser cannot read, a request that fails its declared parameters); each is answered here in the same
shape, so a client parses one error body whatever went wrong. ``Error`` is that body as a model, for the
OpenAPI document.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field, JsonValue
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..errors import (
    AudioFormatError,
    AuthError,
    ConvoscopeError,
    Forbidden,
    JudgeError,
    NotFound,
    PayloadError,
    PayloadTooLarge,
    SignatureError,
    StoreError,
    Unsupported,
)

__all__ = ["Error", "ErrorBody", "error_body", "install_error_handlers", "status_for"]


class ErrorBody(BaseModel):
    """What went wrong: the error class, a sentence naming what and where, and one entry per problem."""

    type: str = Field(description="The error class, e.g. PayloadError, NotFound, MethodNotAllowed.")
    message: str
    details: list[dict[str, JsonValue]] = Field(
        description="One entry per problem; validation errors give the field path as `loc`."
    )


class Error(BaseModel):
    """Every error response of the API has this body."""

    error: ErrorBody


_STATUS: list[tuple[type[ConvoscopeError], int]] = [
    (PayloadTooLarge, 413),
    (SignatureError, 401),
    (AudioFormatError, 422),
    (PayloadError, 422),
    (AuthError, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Unsupported, 501),
    (StoreError, 503),
    (JudgeError, 502),
]


def status_for(exc: ConvoscopeError) -> int:
    """The HTTP status of an error class (400 for any other input error)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(kind: str, message: str, details: list[dict[str, object]] | None = None) -> dict[str, object]:
    """The ``Error`` body, for a route that answers an error without raising."""
    return {"error": {"type": kind, "message": message, "details": details or []}}


async def _convoscope_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConvoscopeError)
    details = exc.errors if isinstance(exc, PayloadError) else []
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthError) else None
    return JSONResponse(
        error_body(type(exc).__name__, str(exc), details), status_code=status_for(exc), headers=headers
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
    return JSONResponse(error_body("PayloadError", f"invalid request: {message}", details), status_code=422)


_HTTP_TYPES = {400: "PayloadError", 404: "NotFound", 413: "PayloadTooLarge", 422: "PayloadError"}
"""Framework statuses that mean the same as one of our error classes carry its name."""


def _http_type(status: int) -> str:
    """``MethodNotAllowed`` for 405 and so on: the status phrase, for statuses with no class of ours."""
    if status in _HTTP_TYPES:
        return _HTTP_TYPES[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "HTTPError"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split())


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at the request's path, so ``Allow`` lists the whole resource.

    The framework's own 405 names only the first route whose path matched, and a path served by
    several routes (``GET`` and ``POST /api/v1/calls``) would advertise one method. A route counts only
    if its path parameters also validate (``/api/v1/ingest/{ingest_id}`` takes an integer), so a path
    shared by two templates lists the methods of the one it belongs to.
    """
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, child = route.matches(request.scope)
        if match is Match.NONE or not _path_params_valid(route, child.get("path_params", {})):
            continue
        methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _path_params_valid(route: object, values: dict[str, object]) -> bool:
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return True
    for param in dependant.path_params:
        _, errors = param.validate(values.get(param.alias), {}, loc=("path", param.alias))
        if errors:
            return False
    return True


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's errors (unknown path, method not allowed, unreadable multipart) in our shape."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    details: list[dict[str, object]] = []
    status = exc.status_code
    allow = _allowed_methods(request) if status == 405 else []
    if status == 405 and not allow:
        status = 404  # the path matched a template whose parameters it does not fit: nothing is there
    if status == 405:
        headers["Allow"] = ", ".join(allow)
        message = f"method {request.method} is not allowed on {request.url.path}; allowed: {', '.join(allow)}"
    elif status == 404 and message in (HTTPStatus.NOT_FOUND.phrase, HTTPStatus.METHOD_NOT_ALLOWED.phrase):
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 400 and request.headers.get("content-type", "").startswith("multipart/"):
        details = [{"loc": "body", "msg": message}]
        message = f"invalid multipart/form-data body: {message}"
    return JSONResponse(error_body(_http_type(status), message, details), status_code=status, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug, answered in the same shape without internals (the server still logs the traceback)."""
    return JSONResponse(error_body("InternalError", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping on an app."""
    app.add_exception_handler(ConvoscopeError, _convoscope_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
