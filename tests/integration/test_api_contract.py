"""The API contract: the live server against its own OpenAPI document, fuzzed by schemathesis.

A real ``convoscope serve`` on a loopback port, with an empty data directory and an API key, serves
``/openapi.json``; schemathesis reads it from there and runs every check it has over every operation:
no server error, every status, content type, header and body the document declares, schema-valid
requests accepted and schema-invalid ones refused, an undeclared method refused with an ``Allow`` that
lists the path's methods, a missing or wrong key refused. The budget is bounded (a fixed seed and a
few examples per operation) so the run is the same every time; its duration is printed, not asserted
(speed belongs to the benchmarks).

A few requests are valid by their schema and still refused for a reason the document cannot state,
because the answer depends on bytes or on the project's own configuration; each such operation may
answer that one status to a schema-valid request, and every other check still applies to it:

* ``POST /api/v1/calls`` (422): a multipart recording must decode as audio and have as many channels
  as the ``channel_map`` names;
* ``POST /api/v1/ingest/{source}`` (400, 422): the event must be one the vendor sends (each vendor's
  payload is its own, and the body is passed through as the vendor wrote it);
* ``POST /v1/traces`` and ``POST /v1/logs`` (400): a protobuf body must decode as an OTLP export;
* ``POST /api/v1/jobs/evals.run`` and ``PUT /api/v1/agents/{agent_id}/profile`` (400): a metric name
  must be registered or one of the project's custom metrics (``GET /api/v1/metrics`` lists them);
* ``POST /api/v1/jobs/audio.analyze`` (400): analysis parameter overrides are checked against the
  analysis parameters and their ranges;
* ``PUT /api/v1/simulation/{kind}s/{id}`` and ``POST /api/v1/simulation/definitions:import`` (422): a
  body's id must be the path's, a suite may name only kept scenarios and personas, a matcher has
  exactly one of its keys (any other mapping is a literal value, so no schema can tell them apart), a
  regular expression must compile, and an imported body must be YAML documents with a ``kind``;
* ``POST /api/v1/simulation/scenarios:from-call`` (422): the named call must have caller turns to replay.
* ``PUT /api/v1/schedules/{schedule_id}`` (422): a cron expression must parse as five crontab fields
  that can fire (and the seconds field as one), and a time zone must be a known IANA name; neither
  grammar nor the zone database fits a JSON Schema pattern.
* ``POST /api/v1/reviews/labels`` (422): the metric must be registered or have a result on the call,
  and a label needs a verdict or a value (one of two optional fields, which the schema cannot require).
* ``POST /api/v1/deletions`` (422): the date must exist (the 30th of February fits any pattern).
* ``POST /api/v1/keys`` (422): an expiry must lie in the future (the schema has no clock), a key may not
  carry more than its user's role in the project, and ``expires_at`` and ``expires_in_days`` exclude
  each other.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as engine_events

from .conftest import KEY, ServerProcess

SEED = 20_260_113
MAX_EXAMPLES = 8

_SEMANTIC_REFUSALS: list[tuple[str, str, list[str]]] = [
    ("POST", "/api/v1/calls", ["422"]),
    ("POST", "/api/v1/ingest/{source}", ["400", "422"]),
    ("POST", "/v1/traces", ["400"]),
    ("POST", "/v1/logs", ["400"]),
    ("POST", "/api/v1/jobs/evals.run", ["400"]),
    ("PUT", "/api/v1/agents/{agent_id}/profile", ["400"]),
    ("POST", "/api/v1/jobs/audio.analyze", ["400"]),
    *(
        ("PUT", f"/api/v1/simulation/{kind}s/{{{kind}_id}}", ["422"])
        for kind in ("scenario", "persona", "suite", "agent")
    ),
    ("POST", "/api/v1/simulation/definitions:import", ["422"]),
    ("POST", "/api/v1/simulation/scenarios:from-call", ["422"]),
    ("PUT", "/api/v1/schedules/{schedule_id}", ["422"]),
    ("POST", "/api/v1/reviews/labels", ["422"]),
    ("POST", "/api/v1/keys", ["422"]),
    ("POST", "/api/v1/deletions", ["422"]),
]
"""Operations whose schema-valid requests may be refused with these statuses (see the docstring)."""

_KNOWN_GAPS: list[dict[str, Any]] = []
"""Checks switched off for one operation, each for a known server defect named beside it."""

_ACCEPTED = ["2xx", "401", "403", "404", "409", "429", "5xx"]
"""Schemathesis' default statuses for a schema-valid request (5xx is caught by not_a_server_error)."""


def _config(origin: str) -> schemathesis.Config:
    operations: list[dict[str, Any]] = [
        {
            "include-name": f"{method} {path}",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, *statuses]}},
        }
        for method, path, statuses in _SEMANTIC_REFUSALS
    ]
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": origin,
            "headers": {"Authorization": f"Bearer {KEY}"},
            "workers": 1,
            "request-timeout": 30,
            "continue-on-failure": True,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {"enabled": True},
            "operations": [*operations, *_KNOWN_GAPS],
        }
    )


def _failures(recorder: Any) -> list[str]:
    """One paragraph per failed check: the operation, what failed, and the request that reproduces it."""
    out = []
    for checks in recorder.checks.values():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            out.append(
                f"{recorder.label}: {check.name}: {failure.title}\n{failure.message}\n"
                f"{check.failure_info.code_sample}"
            )
    return out


def test_live_server_conforms_to_its_openapi(server: ServerProcess, tmp_path: Path) -> None:
    server.start()
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=_config(server.url))
    operations = {op.ok().label for op in schema.get_all_operations()}
    failures: list[str] = []
    errors: list[str] = []
    tested: set[str] = set()
    finished: engine_events.EngineFinished | None = None
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            tested.add(event.recorder.label)
            failures.extend(_failures(event.recorder))
        elif isinstance(event, engine_events.NonFatalError):
            errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, engine_events.FatalError):
            raise event.exception
        elif isinstance(event, engine_events.EngineFinished):
            finished = event
    elapsed = time.monotonic() - started
    unique = sorted(set(failures))
    print(f"schemathesis: {len(operations)} operations, {elapsed:.1f}s, {len(unique)} failures")
    assert not errors, "\n\n".join(errors)
    assert not unique, f"{len(unique)} contract failures:\n\n" + "\n\n".join(unique)
    assert finished is not None and str(finished.stop_reason) == "completed"
    assert operations <= tested, f"operations never tested: {sorted(operations - tested)}"
