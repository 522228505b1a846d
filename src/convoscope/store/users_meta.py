"""People and what they may do: users, their role in each project, and the role an API key carries.

**Three roles, ordered.** ``viewer`` reads; ``member`` also writes (ingests calls, runs simulations,
labels reviews, edits alert rules); ``admin`` also manages keys, users, retention, redaction and
deletion, and reads the audit log. A role is per project: one person may administer one project and
only view another.

**A key never outranks its owner.** A key carries its own role, fixed when it is made and never above
its user's role then; when it is used, the effective role is the lower of the key's role and its user's
role *now*, so demoting or removing a person takes effect on their keys at their next request, without
re-issuing them. A key with no user (the first key of a project, a key made on the server's own command
line) stands on its own role.

The role names are plain strings in the tables, compared through :class:`Role`'s rank, so a new role
needs no migration.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import NotFound, field_error
from .meta import Base, ProjectRow

__all__ = [
    "MembershipRow",
    "Role",
    "UserInfo",
    "UserRow",
    "UserStoreMixin",
    "lower_role",
    "parse_role",
]


class Role(StrEnum):
    """A role in a project, from the least to the most allowed."""

    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2}


def parse_role(value: str, *, field: str = "role") -> Role:
    """A role from its name; an unknown name is an input error naming the field and the choices."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise field_error(field, f"unknown role {value!r}; one of: {choices}") from None


def lower_role(a: Role, b: Role) -> Role:
    """The less allowed of two roles."""
    return a if a.rank <= b.rank else b


class UserRow(Base):
    """A person (or a robot account) who signs in with their own keys."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class MembershipRow(Base):
    """A user's role in one project."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


@dataclass(frozen=True)
class UserInfo:
    """A user and their role in the project asked about."""

    id: str
    name: str
    role: Role
    created_at: datetime


class UserStoreMixin:
    """Users and memberships; mixed into :class:`~convoscope.store.metadata.MetadataStore`."""

    _session: Callable[[], AbstractContextManager[Session]]

    def add_user(self, project_id: str, name: str, role: Role) -> UserInfo:
        """Give ``name`` the role in the project, creating the user on first use (a second project adds a
        membership; the same project again changes the role)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise field_error("name", "a user needs a name of 1 to 200 characters")
        with self._session() as session:
            if session.get(ProjectRow, project_id) is None:
                raise NotFound(f"project {project_id} not found")
            user = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
            if user is None:
                user = UserRow(id=uuid.uuid4().hex[:16], name=name, created_at=datetime.now(UTC))
                session.add(user)
                session.flush()
            membership = session.get(MembershipRow, (user.id, project_id))
            if membership is None:
                membership = MembershipRow(
                    user_id=user.id, project_id=project_id, role=role.value, created_at=datetime.now(UTC)
                )
                session.add(membership)
            else:
                membership.role = role.value
            return UserInfo(user.id, user.name, role, membership.created_at)

    def remove_user(self, project_id: str, name: str) -> None:
        """End the user's membership of the project; their keys for it stop working at once."""
        with self._session() as session:
            found = session.execute(
                select(MembershipRow)
                .join(UserRow, UserRow.id == MembershipRow.user_id)
                .where(UserRow.name == name, MembershipRow.project_id == project_id)
            ).scalar_one_or_none()
            if found is None:
                raise NotFound(f"user {name!r} is not a member of this project")
            session.delete(found)

    def get_user(self, project_id: str, name: str) -> UserInfo | None:
        """The user called ``name`` with their role in the project, or None when not a member."""
        return next((user for user in self.list_users(project_id) if user.name == name), None)

    def list_users(self, project_id: str) -> list[UserInfo]:
        """The project's members, by name."""
        with self._session() as session:
            rows = session.execute(
                select(UserRow.id, UserRow.name, MembershipRow.role, MembershipRow.created_at)
                .join(MembershipRow, MembershipRow.user_id == UserRow.id)
                .where(MembershipRow.project_id == project_id)
                .order_by(UserRow.name)
            ).all()
        return [UserInfo(user_id, name, Role(role), created) for user_id, name, role, created in rows]

    def _membership_role(self, session: Session, user_id: str, project_id: str) -> Role | None:
        membership = session.get(MembershipRow, (user_id, project_id))
        return None if membership is None else Role(membership.role)
