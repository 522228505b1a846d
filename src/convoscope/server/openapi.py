"""The OpenAPI document: every status a route can answer, declared by rule from the route itself.

A client (or a fuzzer) reads the document to learn what a request may get back, so a status the server
answers and the document does not declare is a contract broken. Declaring error statuses by hand on
every route drifts as routes are added; instead, each status comes from a fact about the route that
makes the server answer it:

* 401 and 403: the route resolves a project from an API key, whose role may fall short of the route's
  (a ``current_project`` or ``current_principal`` dependency, or a route that declares its ``security``
  itself because it authenticates inside the handler);
* 422: the route has a body model, or a parameter that can fail validation (a query parameter, a typed
  or constrained path parameter); a route that reads its raw body declares its own 422 if it has one;
* 404: the route has path parameters (an id that names nothing in the project, or an empty segment,
  matches no route);
* 413: the route takes a body (the body bound applies to every body);
* 400: the route takes ``multipart/form-data`` or a body model (a body that cannot be decoded at all);
* 503: every documented route reads or writes a store (``StoreError``);
* 405: another template fits the same paths with other methods (``/ingest/{source}`` and
  ``/ingest/{ingest_id}``), so a request for one can land on the other's path.

A route adds what only it can answer (``404`` for a call id in a body, ``400`` for an unknown metric
name, ``415`` for a content type) with ``responses=error_responses(...)`` on its decorator, and a route
whose errors have another shape (the OTLP receiver's ``google.rpc.Status``) declares them itself: the
rules never replace a status a route declared. Every error declared here has the ``Error`` body.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from ..model import Call
from .auth import current_principal, current_project
from .errors import Error

__all__ = ["BEARER", "KEY_QUERY", "error_responses", "install_openapi"]

BEARER = "bearer"
"""The security scheme of the project API key (``Authorization: Bearer <key>``)."""
KEY_QUERY = "key"
"""The same key as a ``?key=`` query parameter, for webhook senders that cannot set a header."""

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"
_FRAMEWORK_SCHEMAS = ("HTTPValidationError", "ValidationError")
"""FastAPI's validation error body, which ``errors.py`` answers as an ``Error`` instead."""
_WHY = {
    400: "The request cannot be read (a malformed body, or a value the server cannot use).",
    401: "Missing, unknown, revoked or expired API key.",
    403: "The key's role does not allow this operation (see the access table in the docs).",
    404: "The path or an id in the request names nothing in this project.",
    413: "The body is larger than its configured bound.",
    405: "The path belongs to another operation's template, which takes other methods (see `Allow`).",
    415: "The body's Content-Type is not one this route takes.",
    422: "A parameter or the body fails its schema; `details` gives each field path.",
    501: "This deployment's store cannot do it (deletion on a ClickHouse cluster); the message says why.",
    503: "A store failed or is unavailable.",
}


_SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "A project API key (`convoscope keys create`).",
    },
    KEY_QUERY: {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "The project API key in the URL, for senders that cannot set headers.",
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for statuses a route answers beyond the rules, each with the ``Error`` body."""
    return {
        status: {"model": Error, "description": _WHY.get(status, HTTPStatus(status).phrase)}
        for status in statuses
    }


def install_openapi(app: FastAPI) -> None:
    """Build the app's OpenAPI document once, with the ``Call`` schema and the rules' error statuses."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            _publish_call_schema(schemas)
            schemas.setdefault("Error", Error.model_json_schema(ref_template="#/components/schemas/{model}"))
            for name, definition in schemas["Error"].pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            components.setdefault("securitySchemes", {}).update(_SECURITY_SCHEMES)
            for route, operation in _operations(app, schema):
                _declare(route, operation)
            _declare_shared_paths(schema.get("paths", {}))
            for name in _FRAMEWORK_SCHEMAS:
                schemas.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _publish_call_schema(schemas: dict[str, Any]) -> None:
    """Put the canonical ``Call`` schema where the ingest body refers to it."""
    call_schema = Call.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in call_schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["Call"] = call_schema


def _operations(app: FastAPI, schema: dict[str, Any]) -> Iterator[tuple[RouteContext, dict[str, Any]]]:
    """Each documented operation with its route (routes of included routers reached through them)."""
    paths = schema.get("paths", {})
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        item = paths.get(route.path_format or "", {})
        for method in sorted(route.methods or ()):
            operation = item.get(method.lower())
            if operation is not None:
                yield route, operation


def _declare(route: RouteContext, operation: dict[str, Any]) -> None:
    """Add the statuses the route's own shape makes it answer; keep every status it declared."""
    statuses: set[int] = {503}
    if _authenticated(route.dependant):
        operation.setdefault("security", [{BEARER: []}])
    if "security" in operation:
        statuses.update((401, 403))
    body = operation.get("requestBody")
    if body is not None:
        statuses.add(413)
        if "multipart/form-data" in body.get("content", {}):
            statuses.add(400)
    if route.body_field is not None:
        statuses.update((400, 422))
    if route.dependant.path_params:
        statuses.add(404)
    if any(_can_fail(p, path=False) for p in _params(route.dependant, "query", "header", "cookie")) or any(
        _can_fail(p, path=True) for p in route.dependant.path_params
    ):
        statuses.add(422)
    responses = operation.setdefault("responses", {})
    if _FRAMEWORK_422 in str(responses.get("422", {})):
        del responses["422"]  # the framework's own, declared for any parameter, in its own shape
    for status in sorted(statuses):
        responses.setdefault(str(status), _error_response(status))
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400 and "content" not in response:
            response["content"] = {"application/json": {"schema": _ERROR_REF}}


def _declare_shared_paths(paths: dict[str, Any]) -> None:
    """405 where a request for this template can land on another template's path with other methods.

    ``POST /api/v1/ingest/17`` is the path of ``GET /api/v1/ingest/{ingest_id}``, which takes no POST.
    """
    for path, item in paths.items():
        for other, other_item in paths.items():
            if other == path or not _overlap(path, other):
                continue
            for method, operation in item.items():
                if method not in other_item:
                    operation["responses"].setdefault("405", _error_response(405))


def _overlap(a: str, b: str) -> bool:
    """Whether some URL path fits both templates (a ``{param}`` segment fits any one segment)."""
    left, right = a.strip("/").split("/"), b.strip("/").split("/")
    return len(left) == len(right) and all(
        x == y or x.startswith("{") or y.startswith("{") for x, y in zip(left, right, strict=True)
    )


def _error_response(status: int) -> dict[str, Any]:
    return {"description": _WHY[status], "content": {"application/json": {"schema": _ERROR_REF}}}


_AUTH_DEPENDENCIES = (current_project, current_principal)


def _authenticated(dependant: Dependant) -> bool:
    return any(d.call in _AUTH_DEPENDENCIES or _authenticated(d) for d in dependant.dependencies)


def _params(dependant: Dependant, *kinds: str) -> Iterator[Any]:
    for kind in kinds:
        yield from getattr(dependant, f"{kind}_params")
    for sub in dependant.dependencies:
        yield from _params(sub, *kinds)


def _can_fail(param: Any, *, path: bool) -> bool:
    """Whether a value sent for the parameter can fail its validation.

    A plain string path parameter cannot (the route matched, so it has a value); an optional plain
    string query parameter cannot either. Anything typed, constrained (in pydantic, or a declared
    schema constraint the handler checks) or required can.
    """
    info = param.field_info
    constrained = bool(info.metadata or info.json_schema_extra)  # checked by pydantic or by the handler
    plain = info.annotation in (str, typing.Optional[str]) and not constrained  # noqa: UP045
    return not (plain and (path or not info.is_required()))
