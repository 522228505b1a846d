"""``convoscope review fill|queue|label|export|calibration``: the review queue from a terminal.

Through the running server when one holds the data directory (the same API the web UI's reviewers and
scripts use; the CLI's API key is the reviewer), else on the stores themselves under the directory lock,
where the reviewer is ``local:<name>`` (``--reviewer``, default the login name). Both ways run the same
service code and print the same JSON (``--json``), so a script does not care which one answered.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import InputError
from ._shared import (
    DataDir,
    Project,
    ServerClient,
    api_or_store,
    command_group,
    parse_since,
    run_reporting_errors,
    server_error_message,
)

if TYPE_CHECKING:
    from ..runtime.stores import Stores
    from ..store.reviews_meta import Reviewer

__all__ = ["app"]

app = command_group("The review queue: calls queued for people by rule, their labels, judge calibration.")

DEFAULT_DAYS = 7.0


def _local_reviewer(name: str | None) -> Reviewer:
    import getpass

    from ..store.reviews_meta import Reviewer

    who = (name or getpass.getuser() or "cli").strip()[:150]
    return Reviewer(id=f"local:{who}"[:64], name=who)


class _Local:
    """The stores of the data directory, for one project (no server runs)."""

    def __init__(self, stores: Stores, project: str) -> None:
        self._stores = stores
        self._project_id = stores.project(project).id

    def fill(self, body: dict[str, Any]) -> dict[str, Any]:
        from ..review import service
        from ..review.rules import QueueRules

        rules = QueueRules.model_validate(body["rules"])
        since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
        report = service.fill_queue(
            self._stores.store, self._stores.meta, self._project_id, since=since, until=until, rules=rules
        )
        return report.as_json()

    def queue(self, limit: int, claim: bool, minutes: int, reviewer: str | None) -> dict[str, Any]:
        from ..review import service
        from ..server.api.reviews import QueueAnswer, queue_call

        calls = service.next_calls(
            self._stores.store,
            self._stores.meta,
            self._project_id,
            _local_reviewer(reviewer),
            count=limit,
            claim=claim,
            claim_for=timedelta(minutes=minutes),
        )
        counts = self._stores.meta.count_review_items(self._project_id)
        return QueueAnswer(items=[queue_call(call) for call in calls], counts=counts).model_dump(mode="json")

    def label(self, body: dict[str, Any], reviewer: str | None) -> dict[str, Any]:
        from ..review import service
        from ..server.api.reviews import label_out

        stored = service.submit_label(
            self._stores.store,
            self._stores.meta,
            self._project_id,
            _local_reviewer(reviewer),
            call_id=body["call_id"],
            metric=body["metric"],
            verdict=body.get("verdict"),
            value=body.get("value"),
            note=body.get("note", ""),
            replace=bool(body.get("replace")),
        )
        return label_out(stored).model_dump(mode="json")

    def export(self, metric: str | None, since: datetime | None) -> Iterator[str]:
        from ..review import service

        rows = service.export_rows(
            self._stores.store, self._stores.meta, self._project_id, metric=metric, since=since
        )
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, default=str)

    def calibration(self) -> list[dict[str, Any]]:
        from ..review import service

        return [row.as_json() for row in service.calibration_report(self._stores.meta, self._project_id)]


class _Remote(ServerClient):
    """The running server's reviews API (the CLI's key is the reviewer)."""

    def fill(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._check(self._client.post("/api/v1/reviews/queue/fill", json=body, timeout=600.0)))

    def queue(self, limit: int, claim: bool, minutes: int, reviewer: str | None) -> dict[str, Any]:
        _no_reviewer(reviewer)
        params: dict[str, str | int] = {"limit": limit, "claim": str(claim).lower(), "claim_minutes": minutes}
        return dict(self._check(self._client.get("/api/v1/reviews/queue", params=params)))

    def label(self, body: dict[str, Any], reviewer: str | None) -> dict[str, Any]:
        _no_reviewer(reviewer)
        response = self._client.post("/api/v1/reviews/labels", json=body)
        if response.status_code == 409:
            raise InputError(server_error_message(response))
        return dict(self._check(response))

    def export(self, metric: str | None, since: datetime | None) -> Iterator[str]:
        params: dict[str, str] = {"format": "jsonl"}
        if metric is not None:
            params["metric"] = metric
        if since is not None:
            params["since"] = since.isoformat()
        with self._client.stream("GET", "/api/v1/reviews/labels", params=params) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            for line in response.iter_lines():
                if line.strip():
                    yield line

    def calibration(self) -> list[dict[str, Any]]:
        return list(self._check(self._client.get("/api/v1/reviews/calibration"))["items"])


def _no_reviewer(reviewer: str | None) -> None:
    if reviewer is not None:
        raise InputError(
            "--reviewer applies to a stopped data directory; through the server the key is the reviewer"
        )


def _target(data_dir: DataDir, project: str, *, reads_only: bool) -> AbstractContextManager[_Local | _Remote]:
    return api_or_store(data_dir, project, remote=_Remote, local=_Local, reads_only=reads_only)


Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReviewerName = Annotated[
    str | None,
    typer.Option("--reviewer", help="Your name on a stopped data directory (default: your login name)."),
]


def _rules_body(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not YAML or JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: expected a mapping of rules (low_score, split_verdict, random_sample)")
    return loaded


def _below(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        metric, sep, threshold = item.partition("=")
        try:
            out[metric.strip()] = float(threshold)
        except ValueError:
            sep = ""
        if not sep or not metric.strip():
            raise InputError(f"--below {item!r}: expected METRIC=THRESHOLD, e.g. csat=3")
    return out


@app.command("fill")
def fill(
    since: Annotated[
        str | None, typer.Option(help="Calls started at or after (ISO; default: --days back).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Calls started before (ISO; default: now).")] = None,
    days: Annotated[
        float, typer.Option(min=0.001, max=3660, help="Days back when --since is not given.")
    ] = DEFAULT_DAYS,
    rules: Annotated[
        Path | None, typer.Option(help="YAML/JSON of the rules' parameters (see docs/review.md).")
    ] = None,
    failed: Annotated[bool | None, typer.Option("--failed/--no-failed", help="Queue failed results.")] = None,
    below: Annotated[list[str] | None, typer.Option(help="METRIC=THRESHOLD: queue values under it.")] = None,
    per_agent_per_day: Annotated[
        int | None, typer.Option(min=0, max=1000, help="Random calls per agent and day.")
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed of the random sample.")] = None,
    sample_metric: Annotated[
        list[str] | None, typer.Option(help="Metric to review on sampled calls (default: their judges).")
    ] = None,
    json_out: Json = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Queue calls for people: failed or low results, split judge verdicts, a random sample per agent."""

    def work() -> None:
        body = _rules_body(rules)
        low = dict(body.get("low_score") or {})
        sample = dict(body.get("random_sample") or {})
        if failed is not None:
            low["failed"] = failed
        if below:
            low["below"] = {**low.get("below", {}), **_below(below)}
        if per_agent_per_day is not None:
            sample["per_agent_per_day"] = per_agent_per_day
        if seed is not None:
            sample["seed"] = seed
        if sample_metric:
            sample["metrics"] = list(sample_metric)
        end = parse_since(until) or datetime.now(UTC)
        start = parse_since(since) or end - timedelta(days=days)
        request = {
            "since": start.isoformat(),
            "until": end.isoformat(),
            "rules": {**body, "low_score": low, "random_sample": sample},
        }
        with _target(data_dir, project, reads_only=False) as target:
            report = target.fill(request)
        if json_out:
            print(json.dumps(report, indent=2))
            return
        queued = ", ".join(f"{rule} {n}" for rule, n in report["queued"].items())
        more = " (more calls than max_calls: the newest were examined)" if report["truncated"] else ""
        print(f"examined {report['examined']} calls{more}; queued {queued}")

    run_reporting_errors(work)


@app.command("queue")
def queue(
    limit: Annotated[int, typer.Option(min=1, max=20, help="Calls to take.")] = 1,
    claim: Annotated[
        bool, typer.Option("--claim/--no-claim", help="Claim them (--no-claim: only look).")
    ] = True,
    claim_minutes: Annotated[int, typer.Option(min=1, max=1440, help="How long nobody else gets them.")] = 15,
    reviewer: ReviewerName = None,
    json_out: Json = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """The next calls to label, claimed for you, with the metrics to label and their results."""

    def work() -> None:
        with _target(data_dir, project, reads_only=not claim) as target:
            answer = target.queue(limit, claim, claim_minutes, reviewer)
        if json_out:
            print(json.dumps(answer, indent=2))
            return
        counts = answer["counts"]
        print(f"queue: {counts.get('open', 0)} open, {counts.get('done', 0)} labelled")
        for call in answer["items"]:
            print(f"{call['call_id']}  {call['agent_id'] or ''}  {call['started_at'] or ''}  {call['page']}")
            for item in call["items"]:
                result = item["result"] or {}
                passed = result.get("passed")
                said = "pass" if passed is True else "fail" if passed is False else "no verdict"
                value = result.get("value")
                print(f"  {item['metric']}: {said} (value {value!r}); {item['rule']}: {item['reason']}")

    run_reporting_errors(work)


@app.command("label")
def label(
    call_id: Annotated[str, typer.Argument(help="The call's id.")],
    metric: Annotated[str, typer.Argument(help="The metric labelled, e.g. expected_outcome.")],
    verdict: Annotated[bool | None, typer.Option("--pass/--fail", help="Your verdict.")] = None,
    value: Annotated[float | None, typer.Option(help="Your number (instead of or beside a verdict).")] = None,
    note: Annotated[str, typer.Option(help="Why.")] = "",
    replace: Annotated[bool, typer.Option(help="Change your earlier label of this call's metric.")] = False,
    reviewer: ReviewerName = None,
    json_out: Json = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Label one call's metric (refused if you labelled it already, unless --replace)."""

    def work() -> None:
        body: dict[str, Any] = {"call_id": call_id, "metric": metric, "note": note, "replace": replace}
        if verdict is not None:
            body["verdict"] = "pass" if verdict else "fail"
        if value is not None:
            body["value"] = value
        with _target(data_dir, project, reads_only=False) as target:
            stored = target.label(body, reviewer)
        if json_out:
            print(json.dumps(stored, indent=2))
            return
        given = stored["verdict"] if stored["verdict"] is not None else stored["value"]
        action = "replaced" if stored["replaced"] else "labelled"
        who = stored["reviewer"]["name"]
        print(f"{action} {stored['call_id']} {stored['metric']}: {given} by {who} at {stored['created_at']}")

    run_reporting_errors(work)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Only this metric (a labels file for calibrate).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Labels given at or after (ISO).")] = None,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """The labels as an evaluation dataset: JSONL, one label per line with the call's transcript."""

    def work() -> None:
        count = 0
        with _target(data_dir, project, reads_only=True) as target:
            handle = sys.stdout if output is None else output.open("w", encoding="utf-8")
            try:
                for line in target.export(metric, parse_since(since)):
                    handle.write(line + "\n")
                    count += 1
            finally:
                if output is not None:
                    handle.close()
        if output is not None:
            print(f"exported {count} labels to {output}", file=sys.stderr)

    run_reporting_errors(work)


@app.command("calibration")
def calibration(
    json_out: Json = False,
    data_dir: DataDir = None,
    project: Project = "default",
) -> None:
    """Each metric's agreement with people (Cohen's kappa); a judge nobody labelled is uncalibrated."""

    def work() -> None:
        with _target(data_dir, project, reads_only=True) as target:
            rows = target.calibration()
        if json_out:
            print(json.dumps(rows, indent=2))
            return
        for row in rows:
            if row["status"] == "uncalibrated":
                kappa = "uncalibrated"
            elif row["kappa"] is None:
                kappa = "kappa undefined"
            else:
                kappa = f"kappa {row['kappa']:.3f}"
            counted = f"{row['compared']} compared, {row['labels']} labels"
            print(f"{row['metric']}  {row['kind'] or '?'}  {kappa}  ({counted})")

    run_reporting_errors(work)
