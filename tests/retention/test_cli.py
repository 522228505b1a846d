"""``convoscope delete`` and ``convoscope retention`` on a data directory no server runs on: the CLI
opens the stores itself, deletes for real and records the deletion in the audit log."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from convoscope.cli.main import app
from convoscope.config import Settings
from convoscope.server.services import open_services
from convoscope.store.audit_meta import AuditQuery
from convoscope.testing import make_call


def _seed(data_dir: Path) -> dict[str, str]:
    services = open_services(Settings(data_dir=data_dir))
    try:
        project_id = services.default_project.id
        ids = services.store_calls(
            project_id,
            [
                make_call(external_id="cli-old", started_at="2025-01-01T09:00:00+00:00"),
                make_call(external_id="cli-mid", started_at="2025-02-01T09:00:00+00:00"),
                make_call(external_id="cli-new", started_at="2025-03-01T09:00:00+00:00"),
            ],
        )
        return dict(zip(("old", "mid", "new"), ids, strict=True))
    finally:
        services.close()


def test_delete_and_retention_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = _seed(data_dir)
    runner = CliRunner()
    where = ["--data-dir", str(data_dir)]

    deleted = runner.invoke(app, ["delete", "--project", "default", "--call", ids["mid"], *where])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted 1 call" in deleted.output

    unknown = runner.invoke(app, ["delete", "--project", "default", "--call", "nope-123", *where])
    assert unknown.exit_code == 1 and "nope-123" in unknown.output

    bad_date = runner.invoke(app, ["delete", "--project", "default", "--before", "yesterday-ish", *where])
    assert bad_date.exit_code == 2 and "--before" in bad_date.output and "yesterday-ish" in bad_date.output
    both = runner.invoke(app, ["delete", "--project", "default", *where])
    assert both.exit_code == 2

    before = runner.invoke(app, ["delete", "--project", "default", "--before", "2025-02-15", *where])
    assert before.exit_code == 0, before.output
    assert "deleted 1 call" in before.output

    shown = runner.invoke(app, ["retention", "set", "--calls-days", "30", "--raw-payloads-days", "5", *where])
    assert shown.exit_code == 0, shown.output
    assert '"calls_days": 30' in shown.output and '"recordings_days": null' in shown.output
    applied = runner.invoke(app, ["retention", "apply", *where])
    assert applied.exit_code == 0, applied.output
    assert '"calls_deleted": 1' in applied.output

    services = open_services(Settings(data_dir=data_dir))
    try:
        project_id = services.default_project.id
        assert services.store.count_calls(project_id) == 0
        entries = services.meta.list_audit(AuditQuery(project_id))
        deletions = [
            (e.action, e.target, e.detail.get("deleted")) for e in entries if e.action == "call.delete"
        ]
        assert deletions == [("call.delete", f"call:{ids['mid']}", 1), ("call.delete", deletions[1][1], 1)]
        assert deletions[1][1].startswith("calls:before:2025-02-15")
        assert all(e.actor.startswith("cli:") for e in entries if e.action == "call.delete")
        assert [e.action for e in entries if e.action.startswith(("settings.", "retention."))] == [
            "settings.retention",
            "retention.apply",
        ]
    finally:
        services.close()
