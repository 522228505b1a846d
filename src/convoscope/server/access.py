"""Who may call what: the one table that gives every route the role it needs, and which reads are audited.

Every request that carries a key goes through :func:`required_role` (the API's dependency, the OTLP and
webhook receivers and the UI's session all call it), so adding a route needs no access code in the route.
The rule is by method unless the table says more:

* reading (``GET``/``HEAD``) needs ``viewer``;
* every other method needs ``member``;
* managing keys, users, settings (redaction, retention), deleting calls and reading the audit log need
  ``admin``;
* a few routes change state under a read-shaped method (taking review work hands out a claim) or read
  under a write-shaped one; the table lists them.

A route's template (``/api/v1/calls/{call_id}``) is what is matched, never the raw path, so an id cannot
change which rule applies. The role walk in ``tests/server/test_roles.py`` calls every route of the
OpenAPI document with every role and checks the answer against this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..store.users_meta import Role

__all__ = ["AUDITED_READS", "READ_METHODS", "RouteRule", "audited_read", "required_role", "route_template"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class RouteRule:
    """A role for the routes whose template starts with ``prefix`` (any method when ``methods`` is None)."""

    prefix: str
    role: Role
    methods: frozenset[str] | None = None
    exact: bool = False

    def matches(self, method: str, template: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return template == self.prefix if self.exact else template.startswith(self.prefix)


_WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

RULES: tuple[RouteRule, ...] = (
    RouteRule("/api/v1/keys", Role.ADMIN),
    RouteRule("/api/v1/users", Role.ADMIN),
    RouteRule("/api/v1/audit", Role.ADMIN),
    RouteRule("/api/v1/settings/", Role.ADMIN, _WRITE),
    RouteRule("/api/v1/deletions", Role.ADMIN),
    RouteRule("/api/v1/calls/{call_id}", Role.ADMIN, frozenset({"DELETE"}), exact=True),
    # Taking review work claims it for 15 minutes: a write, though a GET (the API's and the page's).
    RouteRule("/api/v1/reviews/queue", Role.MEMBER, frozenset({"GET"}), exact=True),
    RouteRule("/review", Role.MEMBER, frozenset({"GET"}), exact=True),
)
"""The exceptions to the method rule, first match wins."""

AUDITED_READS: dict[str, str] = {
    "/api/v1/calls/{call_id}/recording": "read.recording",
    "/api/v1/traces/{trace_id}": "read.trace",
    "/api/v1/calls/{call_id}/spans": "read.trace",
    "/calls/{call_id}/audio": "read.recording",
    "/calls/{call_id}/payload": "read.payload",
    "/api/v1/audit": "read.audit",
    "/api/v1/audit.jsonl": "read.audit",
}
"""Reads that reach raw material (recordings, vendor payloads, span attributes) or the audit log itself:
each is recorded in the audit log, with the action named here."""

_CONVERTOR = re.compile(r"\{([^}:]+):[^}]+\}")


def route_template(path: str) -> str:
    """A route's path with parameter convertors dropped (``{rule_id:slug}`` reads ``{rule_id}``)."""
    return _CONVERTOR.sub(r"{\1}", path)


def required_role(method: str, template: str) -> Role:
    """The least role that may call ``method`` on the route with this template."""
    method = method.upper()
    template = route_template(template)
    for rule in RULES:
        if rule.matches(method, template):
            return rule.role
    return Role.VIEWER if method in READ_METHODS else Role.MEMBER


def audited_read(method: str, template: str) -> str | None:
    """The audit action of a read that must be recorded, or None for an ordinary read."""
    if method.upper() not in READ_METHODS:
        return None
    return AUDITED_READS.get(route_template(template))
