"""Keys with roles and expiries, users whose role bounds their keys, the audit log's content and its
append-only table, and the same acts from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from convoscope.cli.main import app as cli
from convoscope.server.services import Services
from convoscope.server.ui.session import LOGIN_CSRF_COOKIE
from convoscope.store.metadata import MetadataStore
from convoscope.store.users_meta import Role

Auth = dict[str, str]


def _bearer(key: str) -> Auth:
    return {"Authorization": f"Bearer {key}"}


def test_an_admin_makes_lists_and_revokes_keys_and_the_plaintext_is_shown_once(
    client: TestClient, auth: Auth
) -> None:
    made = client.post("/api/v1/keys", headers=auth, json={"name": "dashboards", "role": "viewer"})
    assert made.status_code == 201
    body = made.json()
    viewer = body["key"]
    assert body["role"] == "viewer" and viewer.startswith(body["prefix"]) and body["expires_at"] is None
    listed = client.get("/api/v1/keys", headers=auth).json()["items"]
    assert viewer not in json.dumps(listed)  # never again after creation
    assert {k["name"]: k["role"] for k in listed}["dashboards"] == "viewer"
    assert client.get("/api/v1/calls", headers=_bearer(viewer)).status_code == 200
    refused = client.post("/api/v1/calls", headers=_bearer(viewer), json={"calls": []})
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "type": "Forbidden",
        "message": "this needs the member role; the key acts as viewer in this project",
        "details": [],
    }
    assert client.get("/api/v1/keys", headers=_bearer(viewer)).status_code == 403
    assert client.delete(f"/api/v1/keys/{body['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/calls", headers=_bearer(viewer)).status_code == 401
    revoked = {k["name"]: k for k in client.get("/api/v1/keys", headers=auth).json()["items"]}["dashboards"]
    assert revoked["revoked_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_in_days": 1, "expires_at": "2099-01-01T00:00:00Z"}, "expires_in_days"),
        ({"name": "x", "expires_in_days": -1}, "expires_in_days"),
        ({"name": "", "role": "viewer"}, "name"),
        ({"name": "x", "rol": "viewer"}, "rol"),
    ],
)
def test_a_bad_key_request_is_refused_naming_the_field(
    client: TestClient, auth: Auth, body: dict[str, object], field: str
) -> None:
    answer = client.post("/api/v1/keys", headers=auth, json=body)
    assert answer.status_code == 422
    assert field in answer.json()["error"]["message"]


def test_a_users_keys_never_outrank_the_user_and_follow_their_role(
    client: TestClient, auth: Auth, services: Services
) -> None:
    assert (
        client.put("/api/v1/users/ana@example.org", headers=auth, json={"role": "member"}).status_code == 200
    )
    too_high = client.post(
        "/api/v1/keys", headers=auth, json={"name": "ana", "role": "admin", "user": "ana@example.org"}
    )
    assert too_high.status_code == 422 and "role" in too_high.json()["error"]["message"]
    stranger = client.post("/api/v1/keys", headers=auth, json={"name": "x", "user": "nobody@example.org"})
    assert stranger.status_code == 404
    made = client.post(
        "/api/v1/keys", headers=auth, json={"name": "ana laptop", "role": "member", "user": "ana@example.org"}
    ).json()
    ana = _bearer(made["key"])
    assert made["user"] == "ana@example.org"
    assert client.post("/api/v1/reviews/queue/skip", headers=ana, json={}).status_code != 403
    # Demoted: the same key is a viewer's at its next request, with no re-issue.
    client.put("/api/v1/users/ana@example.org", headers=auth, json={"role": "viewer"})
    assert client.post("/api/v1/reviews/queue/skip", headers=ana, json={}).status_code == 403
    assert client.get("/api/v1/calls", headers=ana).status_code == 200
    users = client.get("/api/v1/users", headers=auth).json()["items"]
    assert users == [{"name": "ana@example.org", "role": "viewer", "created_at": users[0]["created_at"]}]
    # Removed: the key opens nothing.
    assert client.delete("/api/v1/users/ana@example.org", headers=auth).status_code == 204
    assert client.get("/api/v1/calls", headers=ana).status_code == 401
    assert client.delete("/api/v1/users/ana@example.org", headers=auth).status_code == 404


def test_another_projects_keys_and_users_are_not_found(
    client: TestClient, auth: Auth, services: Services
) -> None:
    meta = services.meta
    other = meta.ensure_project("elsewhere")
    meta.create_api_key(other.id, name="theirs")
    meta.add_user(other.id, "bo@example.org", Role.ADMIN)
    (theirs,) = meta.list_api_keys(other.id)
    assert client.delete(f"/api/v1/keys/{theirs.id}", headers=auth).status_code == 404
    assert client.delete("/api/v1/users/bo@example.org", headers=auth).status_code == 404
    assert meta.list_api_keys(other.id)[0].revoked_at is None
    assert [u.name for u in meta.list_users(other.id)] == ["bo@example.org"]
    assert "theirs" not in client.get("/api/v1/keys", headers=auth).text


def test_the_audit_log_names_who_did_what_and_cannot_be_rewritten(
    client: TestClient, auth: Auth, services: Services
) -> None:
    client.post("/api/v1/keys", headers=auth, json={"name": "ci", "role": "member"})
    client.get("/api/v1/calls/missing/recording", headers=auth)
    page = client.get("/api/v1/audit", headers=auth, params={"action": "write"}).json()
    (created,) = [e for e in page["items"] if e["target"] == "/api/v1/keys"]
    assert created["actor"] == "key:init" and created["method"] == "POST" and created["status"] == 201
    assert created["detail"]["role"] == "member" and created["detail"]["route"] == "/api/v1/keys"
    reads = client.get("/api/v1/audit", headers=auth, params={"action": "read.*"}).json()["items"]
    assert ("read.recording", 404) in {(e["action"], e["status"]) for e in reads}
    # Reading the log is recorded too.
    assert client.get("/api/v1/audit", headers=auth, params={"action": "read.audit"}).json()["items"]
    with services.meta.engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with services.meta.engine.begin() as connection, pytest.raises(DBAPIError, match="append-only"):
        connection.execute(text("DELETE FROM audit_log"))
    after = client.get("/api/v1/audit", headers=auth, params={"action": "write"}).json()["items"]
    assert created in after


def test_a_viewers_ui_session_reads_pages_and_is_refused_every_form(client: TestClient, auth: Auth) -> None:
    viewer = client.post("/api/v1/keys", headers=auth, json={"name": "wall screen", "role": "viewer"}).json()
    client.get("/login")
    csrf = client.cookies.get(LOGIN_CSRF_COOKIE, path="/login")
    assert (
        client.post("/login", data={"key": viewer["key"], "csrf": csrf}, follow_redirects=False).status_code
        == 303
    )
    calls = client.get("/calls")
    assert calls.status_code == 200
    assert "key:wall screen (viewer)" in calls.text and 'href="/review"' not in calls.text
    assert client.get("/review").status_code == 403  # taking review work claims it: a member's act
    refused = client.post("/review/fill", data={"csrf": "whatever"})
    assert refused.status_code == 403
    assert "member role" in refused.text


def test_keys_users_and_the_audit_log_from_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    assert (
        runner.invoke(
            cli, ["users", "add", "cy@example.org", "--project", "p", "--role", "member", *data]
        ).exit_code
        == 0
    )
    made = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--project",
            "p",
            "--role",
            "viewer",
            "--user",
            "cy@example.org",
            "--expires-in-days",
            "7",
            *data,
        ],
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip()
    bad = runner.invoke(cli, ["keys", "create", "--project", "p", "--role", "root", *data])
    assert bad.exit_code != 0 and "--role" in bad.output and "viewer" in bad.output
    listed = runner.invoke(cli, ["keys", "list", "--project", "p", "--json", *data])
    (info,) = json.loads(listed.output)
    assert info["role"] == "viewer" and info["user"] == "cy@example.org" and info["expires_at"]
    assert key not in listed.output
    assert runner.invoke(cli, ["keys", "revoke", info["id"], "--project", "p", *data]).exit_code == 0
    exported = runner.invoke(cli, ["audit", "export", "--project", "p", *data])
    actions = [(e["action"], e["target"], e["source"]) for e in map(json.loads, exported.output.splitlines())]
    assert actions == [
        ("user.role", "user:cy@example.org", "cli"),
        ("key.create", f"key:{info['id']}", "cli"),
        ("key.revoke", f"key:{info['id']}", "cli"),
    ]
    meta = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        assert meta.resolve_principal(key) is None
    finally:
        meta.close()


@pytest.mark.parametrize("command", ["list", "export"])
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_the_audit_commands_refuse_a_time_that_is_not_iso_8601(
    tmp_path: Path, command: str, option: str
) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    assert runner.invoke(cli, ["users", "add", "cy@example.org", "--project", "p", *data]).exit_code == 0
    refused = runner.invoke(cli, ["audit", command, "--project", "p", option, "yesterday", *data])
    assert refused.exit_code == 2
    assert option in refused.output and "'yesterday'" in refused.output and "ISO" in refused.output
    fine = runner.invoke(cli, ["audit", command, "--project", "p", option, "2026-01-01T00:00:00Z", *data])
    assert fine.exit_code == 0, fine.output
