"""What a schedule is: a cron expression, a time zone, an action and a policy for runs missed while down.

A schedule is data, kept in the metadata database or written in YAML beside suites and alert rules
(``kind: schedule``), so it is validated strictly at creation and a mistake is refused with the field
named (``cron``, ``timezone``, ``action.simulate.suite``) instead of surfacing at 3 a.m. in a log::

    kind: schedule
    id: nightly-smoke
    name: Smoke suite against the clinic agent, every night
    cron: "0 3 * * *"            # minute hour day-of-month month day-of-week (crontab syntax)
    timezone: Europe/Berlin      # IANA name; default UTC
    action: {kind: simulate, suite: smoke, agent: clinic, iterations: 3}
    misfire: once                # after downtime: skip (default) or once

**Cron syntax.** Five crontab fields are parsed and checked by the scheduler library (APScheduler's
``CronTrigger``: ``*``, lists, ranges, steps, month and weekday names), with two translations so an
expression means what it means in crontab: the day of week counts from Sunday (0 or 7), where
APScheduler 3.x counts from Monday (its documented "historical mistake", fixed only in 4.x), so the
field is expanded to weekday names first; and an expression restricting both the day of month and the
day of week is refused, because crontab runs when *either* matches and APScheduler when *both* do, so
no reading is safe. An optional ``second`` field (APScheduler syntax, e.g. ``*/10``) puts the fire
times inside the minute (default: second 0); it exists for sub-minute schedules and for tests that must
not wait a minute. An expression that never fires (``0 0 31 2 *``) is refused.

**Misfire policy** (what happens to fire times that passed while no server ran):

* ``skip`` (default): nothing runs for them; the schedule waits for its next time. A nightly suite
  missed during a deploy is not worth a surprise run at 10 a.m. against a loaded agent.
* ``once``: if one or more fire times passed within ``misfire_grace_s`` (default one hour) before the
  server started, the action runs once at start (``trigger: catch-up``); older ones are skipped.
* No "all": every missed run would execute now, back to back, measuring the agent as it is now N times
  rather than as it was at those times, at N times the load (and beyond the server's limit of live
  simulation runs most would be refused anyway). The results would say nothing the one run does not.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..errors import PayloadError
from ..model.bounds import integral
from ..yamldocs import Problem, ProblemsError, load_kind_files, load_kind_text
from .simulation_runner import MAX_CONCURRENCY

__all__ = [
    "SCHEDULE_KIND",
    "SLUG_PATTERN",
    "ReevaluateAction",
    "ScheduleFileError",
    "ScheduleSpec",
    "SimulateAction",
    "cron_trigger",
    "latest_fire",
    "load_schedule_files",
    "load_schedules_text",
    "next_fire",
    "parse_schedule",
]

SCHEDULE_KIND = "schedule"
"""The ``kind`` of a YAML document that is a schedule."""

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Slug = Annotated[str, Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MAX_GRACE_S = 7 * 86_400


Iterations = Annotated[int, Field(ge=1, le=10_000), BeforeValidator(integral)]
Concurrency = Annotated[int, Field(ge=1, le=MAX_CONCURRENCY), BeforeValidator(integral)]
GraceSeconds = Annotated[int, Field(ge=1, le=MAX_GRACE_S), BeforeValidator(integral)]


class SimulateAction(BaseModel):
    """Start a run of a kept suite against a kept agent, as ``POST /simulation/runs:start`` does."""

    model_config = _STRICT

    kind: Literal["simulate"]
    suite: Slug
    agent: Slug
    iterations: Iterations | None = None
    """Override the suite's iterations."""
    concurrency: Concurrency = 32
    """Conversations in flight at once."""


class ReevaluateAction(BaseModel):
    """Queue the evaluation of stored calls again, as ``POST /jobs/evals.run`` does."""

    model_config = _STRICT

    kind: Literal["reevaluate"]
    since_days: Annotated[float, Field(gt=0, le=3650, allow_inf_nan=False)] | None = 1.0
    """Calls that started within this many days before the fire time (null: every stored call)."""
    agent_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """Only this agent's calls."""
    metrics: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]], Field(max_length=64)
    ] = []
    """Run these metrics instead of each agent's configured set."""


Action = Annotated[SimulateAction | ReevaluateAction, Field(discriminator="kind")]


class ScheduleSpec(BaseModel):
    """A schedule as written: when (cron, time zone), what (the action) and the policy for missed runs."""

    model_config = _STRICT

    name: Annotated[str, Field(min_length=1, max_length=200)]
    """What a person reads in a list."""
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    """Five crontab fields: minute hour day-of-month month day-of-week (Sunday is 0 or 7)."""
    second: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    """Seconds within the minute (APScheduler syntax: ``0``, ``*/10``, ``5,35``); none: second 0."""
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    """The IANA time zone the fields are read in (``Europe/Berlin``): 03:00 stays 03:00 across DST."""
    action: Action
    enabled: bool = True
    """A disabled schedule is kept and can be run by hand, but never fires."""
    misfire: Literal["skip", "once"] = "skip"
    """Fire times missed while no server ran: ``skip`` them, or run ``once`` at start (within the grace)."""
    misfire_grace_s: GraceSeconds = 3600
    """With ``once``: how old a missed fire time may be and still cause the catch-up run."""

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        """Checked in UTC: whether a field is valid, or a date exists, does not depend on the zone. An
        expression that can never fire (31 February) is refused: it would sit there silently."""
        zone = zoneinfo.ZoneInfo("UTC")
        if _fields(value, None, zone).get_next_fire_time(None, datetime.now(zone)) is None:
            raise ValueError(f"the cron expression {value!r} never fires (no such date)")
        return value

    @field_validator("second")
    @classmethod
    def _check_second(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger(second=value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"not a seconds field: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        _zone(value)
        return value


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin") from None


def _day(token: str) -> int:
    lowered = token.lower()
    if lowered in _DAYS:
        return _DAYS.index(lowered)
    if lowered.isdigit() and 0 <= int(lowered) <= 7:
        return int(lowered)
    raise ValueError(f"day of week {token!r} is not 0-7 or a name (sun..sat)")


def _days_of_week(field: str) -> str:
    """crontab's day-of-week field (Sunday 0 or 7) as APScheduler weekday names (its numbers start on
    Monday): every item is expanded by crontab's rules, so ``1-5``, ``*/2`` and ``5-7`` mean what they
    mean in crontab."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) >= 1):
            raise ValueError(f"day of week step {step_text!r} must be a whole number of at least 1")
        step = int(step_text) if slash else 1
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _day(first), _day(last)
        else:
            low = _day(base)
            high = 7 if slash else low
        if low > high:
            raise ValueError(f"day of week range {base!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAYS[day] for day in sorted(days))


def _fields(cron: str, second: str | None, zone: zoneinfo.ZoneInfo) -> CronTrigger:
    parts = cron.split()
    if len(parts) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), not {len(parts)}"
        )
    minute, hour, day, month, day_of_week = parts
    if day != "*" and day_of_week != "*":
        raise ValueError(
            "restrict the day of month or the day of week, not both: crontab runs when either matches,"
            " the scheduler when both do"
        )
    try:
        return CronTrigger(
            second=second if second is not None else "0",
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_days_of_week(day_of_week),
            timezone=zone,
        )
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None


def cron_trigger(spec: ScheduleSpec) -> CronTrigger:
    """The library's trigger for a (validated) schedule."""
    return _fields(spec.cron, spec.second, _zone(spec.timezone))


def next_fire(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first fire time at or after ``after`` (aware), or None if the expression never fires."""
    fire: datetime | None = cron_trigger(spec).get_next_fire_time(None, after)
    return fire


_WINDOWS_S = (2, 60, 3600, 86_400)
"""Look-back windows tried in turn for the latest fire time, so a frequent expression walks few steps."""


def latest_fire(trigger: CronTrigger, now: datetime, within_s: float) -> datetime | None:
    """The latest fire time in ``(now - within_s, now]``, or None.

    The library only looks forward, so this starts from growing windows before ``now`` and walks to the
    last fire time not after it; the first window holding one holds few, so the walk is short."""
    for window in (*(w for w in _WINDOWS_S if w < within_s), within_s):
        fire: datetime | None = trigger.get_next_fire_time(None, now - timedelta(seconds=window))
        if fire is None or fire > now:
            continue
        for _ in range(10_000):
            following: datetime | None = trigger.get_next_fire_time(None, fire + timedelta(microseconds=1))
            if following is None or following > now:
                break
            fire = following
        return fire
    return None


def parse_schedule(schedule_id: str, data: Any) -> ScheduleSpec:
    """A schedule from plain data (JSON or YAML), refused with ``PayloadError`` naming every bad field."""
    if not isinstance(schedule_id, str) or not _SLUG.fullmatch(schedule_id):
        message = f"schedule id {schedule_id!r} must match {SLUG_PATTERN} (at most 128 characters)"
        raise PayloadError(message, [{"loc": ["id"], "msg": message}])
    try:
        return ScheduleSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems: list[dict[str, object]] = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors]
        summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(schedule)'}: {e['msg']}" for e in errors)
        raise PayloadError(f"invalid schedule {schedule_id!r}: {summary}", problems) from None


# YAML ---------------------------------------------------------------------------------------------------


ScheduleProblem = Problem
"""One mistake in a schedule file (file, line, field, message)."""


class ScheduleFileError(ProblemsError):
    """Schedule files that cannot be used, with every problem found."""

    what = "the schedules"


def load_schedules_text(text: str, file: str = "<text>") -> list[tuple[str, ScheduleSpec]]:
    """Every ``schedule`` document of one YAML text as (id, spec), in order; other kinds are skipped."""
    found, problems = load_kind_text(text, file, SCHEDULE_KIND, parse_schedule, noun="schedule")
    if problems:
        raise ScheduleFileError(problems)
    return found


def load_schedule_files(paths: Sequence[Path]) -> list[tuple[str, ScheduleSpec]]:
    """Every schedule in ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``); an id defined
    twice, in one file or two, is a problem."""
    found, problems = load_kind_files(paths, SCHEDULE_KIND, parse_schedule, noun="schedule")
    if problems:
        raise ScheduleFileError(problems)
    return found
