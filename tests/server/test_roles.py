"""Roles over the whole API: every operation of the OpenAPI document, called with no key, a wrong key,
an expired key and a key of each role, answers as the access table says; every write and audited read
leaves an audit entry with the status it got; another project's objects are 404, never 403."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from convoscope.server.access import audited_read, required_role
from convoscope.server.services import Services
from convoscope.store.users_meta import Role

Auth = dict[str, str]

PUBLIC = {("get", "/healthz")}
"""The only operations that take no key; a new one must be added here on purpose."""

_PARAM = re.compile(r"\{([^}]+)\}")


def _bearer(key: str) -> Auth:
    return {"Authorization": f"Bearer {key}"}


def _filled(path: str, operation: dict[str, Any]) -> str:
    """The path with every parameter given a value of its type that names nothing."""
    values: dict[str, str] = {}
    for param in operation.get("parameters", []):
        if param.get("in") != "path":
            continue
        schema = param.get("schema", {})
        if "enum" in schema:
            values[param["name"]] = str(schema["enum"][0])
        elif schema.get("type") == "integer":
            values[param["name"]] = "987654321"
        else:
            values[param["name"]] = "no-such-id"
    return _PARAM.sub(lambda m: values.get(m.group(1), "no-such-id"), path)


def _operations(client: TestClient) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) of every documented operation."""
    found = []
    for template, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method, template, _filled(template, operation)))
    return sorted(found)


@pytest.fixture
def keys(services: Services) -> dict[str, str]:
    meta = services.meta
    project = services.default_project.id
    made = {role.value: meta.create_api_key(project, name=f"walk-{role.value}", role=role) for role in Role}
    revoked = meta.create_api_key(project, name="walk-revoked", role=Role.ADMIN)
    (revoked_info,) = [k for k in meta.list_api_keys(project) if k.name == "walk-revoked"]
    meta.revoke_api_key(revoked_info.id)
    return {**made, "revoked": revoked}


def _call(client: TestClient, method: str, path: str, headers: Auth) -> int:
    return client.request(method, path, headers=headers, json={} if method != "get" else None).status_code


def test_every_operation_answers_each_role_as_the_access_table_says(
    client: TestClient, services: Services, keys: dict[str, str]
) -> None:
    operations = _operations(client)
    assert len(operations) > 60  # the whole API, not a sample
    public = {(m, t) for m, t, p in operations if _call(client, m, p, {}) != 401}
    assert public == PUBLIC
    seen: dict[tuple[str, str, str], int] = {}
    for method, template, path in operations:
        if (method, template) in PUBLIC:
            continue
        assert _call(client, method, path, _bearer("cvs_not_a_key_of_anyone")) == 401, (method, template)
        assert _call(client, method, path, _bearer(keys["revoked"])) == 401, (method, template)
        needed = required_role(method, template)
        for role in Role:
            status = _call(client, method, path, _bearer(keys[role.value]))
            seen[(method, template, role.value)] = status
            if role.allows(needed):
                assert status not in (401, 403), (method, template, role, status)
            else:
                assert status == 403, (method, template, role, status)
    # Viewers read and never write; members write but manage nothing; admins do everything.
    assert all(status == 403 for (m, _, r), status in seen.items() if r == "viewer" and m != "get")
    admin_only = {t for m, t, _ in operations if required_role(m, t) is Role.ADMIN}
    assert {"/api/v1/keys", "/api/v1/users", "/api/v1/audit", "/api/v1/settings/redaction"} <= admin_only


def test_an_expired_key_is_refused_like_an_unknown_one(client: TestClient, services: Services) -> None:
    expiry = datetime.now(UTC) + timedelta(seconds=1.5)
    key = services.meta.create_api_key(services.default_project.id, name="soon", expires_at=expiry)
    assert _call(client, "get", "/api/v1/calls", _bearer(key)) == 200
    time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.05)
    refused = client.get("/api/v1/calls", headers=_bearer(key))
    assert refused.status_code == 401
    assert "expired" in refused.json()["error"]["message"]


def test_every_write_and_audited_read_leaves_an_entry_with_its_status(
    client: TestClient, services: Services, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    operations = [(m, t, p) for m, t, p in _operations(client) if (m, t) not in PUBLIC]
    expected: list[tuple[str, str, str, int]] = []
    for method, template, path in operations:
        action = "write" if method != "get" else audited_read(method, template)
        if action is None:
            continue
        for role in (Role.VIEWER, Role.ADMIN):
            status = _call(client, method, path, _bearer(keys[role.value]))
            expected.append((f"walk-{role.value}", action, f"{method.upper()} {path}", status))
    answer = client.get("/api/v1/audit.jsonl", headers=_bearer(keys["admin"]))
    assert answer.status_code == 200
    entries = [json.loads(line) for line in answer.text.splitlines()]
    recorded = [(e["actor"], e["action"], f"{e['method']} {e['target']}", e["status"]) for e in entries]
    missing = [e for e in expected if (f"key:{e[0]}", e[1], e[2], e[3]) not in recorded]
    assert missing == []
    assert len(expected) > 40
    refused = [e for e in entries if e["status"] == 403]
    assert refused and all(e["role"] == "viewer" for e in refused)
    assert {e["source"] for e in entries} == {"testclient"}
    # No key reaches the log or the audit trail, whatever was answered.
    assert [k for k in keys.values() if k in caplog.text or k in answer.text] == []
