"""Keys and users over the API (admins only, by the access table): list, create and revoke keys; give
people a role in the project, change it, or take it away.

A new key's plaintext is in the creation answer and nowhere else, ever; lists show its prefix. A key
made for a user may not carry more than the user's role, and a key given an expiry stops opening the
project at that moment. Another project's key or user is a 404, so existence does not leak.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...errors import NotFound, field_error
from ...store.metadata import ApiKeyInfo
from ...store.users_meta import Role, UserInfo
from ..auth import CurrentPrincipal
from ..deps import get_services
from ..openapi import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["access"])

UserName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^\S(.*\S)?$",
        description="The user's name (e.g. an e-mail address); no leading or trailing space.",
    ),
]


class KeyOut(BaseModel):
    """A key's public facts: never its hash; its plaintext only in :class:`NewKey`."""

    id: str
    name: str
    prefix: str
    role: Role
    user: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyList(BaseModel):
    items: list[KeyOut]


class KeyRequest(BaseModel):
    """What a new key opens and for how long."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.MEMBER
    user: str | None = Field(default=None, min_length=1, max_length=200)
    """The user the key belongs to (its role may not exceed theirs); none for a service key."""
    expires_at: AwareDatetime | None = None
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)
    """An expiry relative to now; give this or ``expires_at``, not both."""


class NewKey(KeyOut):
    key: str
    """The key itself: shown once, here."""


class UserOut(BaseModel):
    name: str
    role: Role
    created_at: datetime


class UserList(BaseModel):
    items: list[UserOut]


class RoleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


def _key(info: ApiKeyInfo) -> KeyOut:
    return KeyOut(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        role=info.role,
        user=info.user,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        expires_at=info.expires_at,
        revoked_at=info.revoked_at,
    )


def _user(info: UserInfo) -> UserOut:
    return UserOut(name=info.name, role=info.role, created_at=info.created_at)


def _expiry(body: KeyRequest) -> datetime | None:
    if body.expires_at is not None and body.expires_in_days is not None:
        raise field_error("expires_in_days", "give expires_at or expires_in_days, not both")
    if body.expires_in_days is not None:
        return datetime.now(UTC) + timedelta(days=body.expires_in_days)
    return body.expires_at


@router.get("/keys", summary="List the project's keys (revoked and expired ones included)")
async def list_keys(request: Request, principal: CurrentPrincipal) -> KeyList:
    keys = await run_in_threadpool(get_services(request).meta.list_api_keys, principal.project.id)
    return KeyList(items=[_key(key) for key in keys])


@router.post("/keys", status_code=201, summary="Create a key", responses=error_responses(404, 422))
async def create_key(request: Request, principal: CurrentPrincipal, body: KeyRequest) -> NewKey:
    """The answer holds the key's plaintext, once. A ``user`` who is not a member is a 404; a role above
    the user's, or an expiry in the past, a 422 naming the field."""
    meta = get_services(request).meta
    plaintext, info = await run_in_threadpool(
        lambda: meta.issue_api_key(
            principal.project.id, name=body.name, role=body.role, expires_at=_expiry(body), user=body.user
        )
    )
    request.state.audit_detail = {"key_id": info.id, "role": info.role.value, "user": info.user}
    return NewKey(key=plaintext, **_key(info).model_dump())


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke a key",
    responses=error_responses(404),
)
async def revoke_key(request: Request, principal: CurrentPrincipal, key_id: str) -> Response:
    """The key stops working at its next request, in every process; its row stays for the audit trail."""
    await run_in_threadpool(
        get_services(request).meta.revoke_api_key, key_id, project_id=principal.project.id
    )
    request.state.audit_detail = {"key_id": key_id}
    return Response(status_code=204)


@router.get("/users", summary="List the project's users and their roles")
async def list_users(request: Request, principal: CurrentPrincipal) -> UserList:
    users = await run_in_threadpool(get_services(request).meta.list_users, principal.project.id)
    return UserList(items=[_user(user) for user in users])


@router.put("/users/{name}", summary="Give a user a role in the project (created on first use)")
async def put_user(
    request: Request, principal: CurrentPrincipal, name: UserName, body: RoleRequest
) -> UserOut:
    """A lowered role lowers the user's keys at their next request."""
    info = await run_in_threadpool(get_services(request).meta.add_user, principal.project.id, name, body.role)
    request.state.audit_detail = {"user": name, "role": body.role.value}
    return _user(info)


@router.delete(
    "/users/{name}",
    status_code=204,
    response_class=Response,
    summary="Take a user out of the project",
    responses=error_responses(404),
)
async def remove_user(request: Request, principal: CurrentPrincipal, name: UserName) -> Response:
    """The user's keys for this project stop working at once."""
    meta = get_services(request).meta
    if await run_in_threadpool(meta.get_user, principal.project.id, name) is None:
        raise NotFound(f"user {name!r} is not a member of this project")
    await run_in_threadpool(meta.remove_user, principal.project.id, name)
    request.state.audit_detail = {"user": name}
    return Response(status_code=204)
