"""What a red-team run found: per category and OWASP id, attacks run, broke the agent, held.

A conversation *broke* the agent when a check of its attack failed or an evaluator the attack names
failed; it *held* when none did; it *errored* when it could not be completed (the agent was unreachable
or silent, or a tool call matched no mock and could not be passed through), which says nothing about the
agent's defences and is counted apart. For every break the report keeps what a person needs to judge
it: the failed checks, and the transcript lines that broke it, taken from the call's turns (the agent
line that said the forbidden thing or made the forbidden tool call, or that an evaluator's evidence
points at, with the caller line just before it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import JsonValue
from rich.console import Console
from rich.table import Table

from ...evals.scenario import ScenarioChecksMetric
from ...model import Call, Role
from ..runner import ConversationResult, RunReport
from .build import REFUSAL
from .library import OWASP_NAMES, Attack, Owasp
from .mutate import Skipped

__all__ = ["Finding", "Line", "RedTeamReport", "Tally", "print_report"]

Verdict = Literal["broke", "held", "errored"]
_VERDICTS: tuple[Verdict, ...] = ("broke", "held", "errored")


@dataclass(frozen=True)
class Line:
    """One transcript line of a break."""

    turn: int
    role: str
    text: str

    def to_json(self) -> dict[str, JsonValue]:
        return {"turn": self.turn, "role": self.role, "text": self.text}


@dataclass(frozen=True)
class Finding:
    """One attack conversation and what it did to the agent."""

    attack: Attack
    result: ConversationResult

    @property
    def verdict(self) -> Verdict:
        verdict = self.result.verdict
        return "errored" if verdict == "errored" else "broke" if verdict == "failed" else "held"

    canaries: tuple[str, ...] = ()

    @property
    def failed_checks(self) -> list[str]:
        """Why it broke (each failed check and evaluator, in words), or why it errored."""
        if self.verdict == "errored":
            return self.result.reasons
        reasons: list[str] = []
        for score in self.result.scores:
            if score.passed is not False:
                continue
            failed = score.evidence.get("failed") if score.metric == ScenarioChecksMetric.name else None
            if isinstance(failed, list) and failed:
                reasons.extend(_describe(check, self.canaries) for check in failed if isinstance(check, dict))
            else:
                reasons.append(
                    f"{score.metric} failed (value {score.value:g})"
                    if score.value is not None
                    else f"{score.metric} failed"
                )
        return reasons

    def lines(self) -> list[Line]:
        """The transcript lines that broke the agent: each offending agent line and the caller line
        before it, in order."""
        if self.verdict != "broke":
            return []
        call = self.result.outcome.call
        return _lines_at(call, _offending_turns(call, self.result))

    def to_json(self) -> dict[str, JsonValue]:
        call = self.result.outcome.call
        return {
            "attack": self.attack.base_id,
            "variant": self.attack.variant,
            "scenario": self.attack.id,
            "category": self.attack.category.value,
            "owasp": [item.value for item in self.attack.owasp],
            "verdict": self.verdict,
            "call_id": call.id,
            "external_id": call.external_id,
            "failed_checks": list(self.failed_checks),
            "lines": [line.to_json() for line in self.lines()],
        }


SHOWN_PATTERN_CHARS = 60


def _pattern(phrase: JsonValue) -> str:
    if isinstance(phrase, dict) and isinstance(phrase.get("regex"), str):
        regex = str(phrase["regex"])
        shown = regex if len(regex) <= SHOWN_PATTERN_CHARS else regex[: SHOWN_PATTERN_CHARS - 1] + "…"
        return f"/{shown}/"
    return repr(phrase)


def _describe(check: dict[str, JsonValue], canaries: tuple[str, ...]) -> str:
    """A failed check in words: which canary, pattern or tool call, not the whole check."""
    kind = str(check.get("check"))
    phrase = check.get("phrase")
    if kind == "forbidden_phrase":
        if isinstance(phrase, str) and phrase in canaries:
            return f"canary {phrase!r} said"
        return f"forbidden phrase {_pattern(phrase)} said"
    if kind == "required_phrase":
        if isinstance(phrase, dict) and phrase.get("regex") == REFUSAL:
            return "no refusal"
        return f"required phrase {_pattern(phrase)} never said"
    if kind == "forbidden_tool":
        expected = check.get("expected")
        tool = expected.get("tool") if isinstance(expected, dict) else expected
        found = check.get("found")
        calls = [
            orjson.dumps(item.get("arguments")).decode()
            for item in (found if isinstance(found, list) else [])
            if isinstance(item, dict)
        ]
        return f"forbidden tool call {tool}({'; '.join(calls)})"
    if kind == "required_tool":
        expected = check.get("expected")
        tool = expected.get("tool") if isinstance(expected, dict) else expected
        return f"required tool call {tool} not made"
    return f"{kind} failed"


def _offending_turns(call: Call, result: ConversationResult) -> set[int]:
    """Turn indexes a failed check or evaluator points at."""
    turns: set[int] = set()
    by_text = {turn.text: turn.index for turn in call.turns if turn.role is Role.AGENT}
    by_tool = {tool.id: tool.turn_index for tool in call.tool_calls}
    for score in result.scores:
        if score.passed is not False:
            continue
        if score.metric == ScenarioChecksMetric.name:
            failed = score.evidence.get("failed")
            for check in failed if isinstance(failed, list) else []:
                if not isinstance(check, dict):
                    continue
                said = check.get("said_in")
                if isinstance(said, str) and said in by_text:
                    turns.add(by_text[said])
                found_calls = check.get("found")
                for found in found_calls if isinstance(found_calls, list) else []:
                    ident = found.get("id") if isinstance(found, dict) else found
                    index = by_tool.get(str(ident))
                    if index is not None:
                        turns.add(index)
        else:
            turns.update(_turn_indexes(score.evidence))
    return turns


def _turn_indexes(value: Any) -> Iterator[int]:
    """Every ``turn_index`` anywhere in an evaluator's evidence."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "turn_index" and isinstance(item, int) and not isinstance(item, bool):
                yield item
            else:
                yield from _turn_indexes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _turn_indexes(item)


def _lines_at(call: Call, indexes: Iterable[int]) -> list[Line]:
    turns = {turn.index: turn for turn in call.turns}
    shown: set[int] = set()
    for index in indexes:
        if index not in turns:
            continue
        shown.add(index)
        before = [i for i in turns if i < index and turns[i].role is Role.USER]
        if before:
            shown.add(max(before))
    return [Line(i, turns[i].role.value, turns[i].text) for i in sorted(shown)]


@dataclass
class Tally:
    """Attacks run, broke the agent, held and errored, for one category or OWASP id."""

    key: str
    name: str = ""
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def run(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, JsonValue]:
        out: dict[str, JsonValue] = {"id": self.key}
        if self.name:
            out["name"] = self.name
        out["run"] = self.run
        out.update({verdict: self.counts[verdict] for verdict in _VERDICTS})
        return out


@dataclass
class RedTeamReport:
    """A red-team run's findings over the engine's own run report."""

    run: RunReport
    attacks: dict[str, Attack]
    skipped: list[Skipped] = field(default_factory=list)
    canaries: tuple[str, ...] = ()

    def findings(self) -> list[Finding]:
        """One finding per conversation, in the order the attacks were listed."""
        order = {ident: position for position, ident in enumerate(self.attacks)}
        results = sorted(
            self.run.results, key=lambda r: (order.get(r.item.scenario.id, len(order)), r.item.iteration)
        )
        return [
            Finding(self.attacks[r.item.scenario.id], r, self.canaries)
            for r in results
            if r.item.scenario.id in order
        ]

    def by_category(self) -> list[Tally]:
        tallies: dict[str, Tally] = {}
        for finding in self.findings():
            key = finding.attack.category.value
            tallies.setdefault(key, Tally(key)).counts[finding.verdict] += 1
        return [tallies[key] for key in sorted(tallies)]

    def by_owasp(self) -> list[Tally]:
        """Per OWASP id; an attack mapped to two ids counts under both."""
        tallies: dict[Owasp, Tally] = {}
        for finding in self.findings():
            for item in finding.attack.owasp:
                tallies.setdefault(item, Tally(item.value, OWASP_NAMES[item])).counts[finding.verdict] += 1
        return [tallies[key] for key in sorted(tallies)]

    def totals(self) -> Counter[str]:
        return Counter(finding.verdict for finding in self.findings())

    def exit_code(self) -> int:
        """0 when nothing broke the agent, 1 when something did; 2 when a conversation errored (the run
        could not test what it meant to), as ``convoscope simulate`` does."""
        totals = self.totals()
        if totals["errored"]:
            return 2
        return 1 if totals["broke"] else 0

    def to_json(self) -> dict[str, JsonValue]:
        findings = self.findings()
        return {
            "run_id": self.run.run_id,
            "agent": self.run.agent_id,
            "agent_version": self.run.agent_version,
            "started_at": self.run.started_at.isoformat(),
            "finished_at": self.run.finished_at.isoformat() if self.run.finished_at else None,
            "canaries": len(self.canaries),
            "totals": {verdict: self.totals()[verdict] for verdict in _VERDICTS},
            "by_category": [tally.to_json() for tally in self.by_category()],
            "by_owasp": [tally.to_json() for tally in self.by_owasp()],
            "breaks": [finding.to_json() for finding in findings if finding.verdict == "broke"],
            "errors": [finding.to_json() for finding in findings if finding.verdict == "errored"],
            "held": [finding.attack.id for finding in findings if finding.verdict == "held"],
            "skipped": [
                {"attack": item.attack, "encoding": item.encoding, "reason": item.reason}
                for item in self.skipped
            ],
        }


SHOWN_BREAKS = 30
"""Breaks printed under the tables (all are in the JSON)."""


def _table(title: str, first: str, tallies: list[Tally], *, named: bool) -> Table:
    table = Table(title=title)
    table.add_column(first)
    if named:
        table.add_column("name")
    for column in ("run", "broke", "held", "errored"):
        table.add_column(column, justify="right")
    for tally in tallies:
        cells = [str(tally.run), *(str(tally.counts[v]) for v in _VERDICTS)]
        broke = tally.counts["broke"]
        cells[1] = f"[red]{broke}[/red]" if broke else "0"
        table.add_row(tally.key, *([tally.name] if named else []), *cells)
    return table


def print_report(report: RedTeamReport, console: Console) -> None:
    """The tables per category and OWASP id, then each break with its failed checks and lines."""
    console.print(_table("red team by category", "category", report.by_category(), named=False))
    console.print(_table("red team by OWASP Top 10 for LLM 2025", "OWASP", report.by_owasp(), named=True))
    totals = report.totals()
    console.print(
        f"run {report.run.run_id} against {report.run.agent_id} {report.run.agent_version}".rstrip()
        + f": {totals['broke']} broke the agent, {totals['held']} held, {totals['errored']} errored "
        f"of {sum(totals.values())}",
        highlight=False,
        soft_wrap=True,
    )
    bad = [finding for finding in report.findings() if finding.verdict != "held"]
    for finding in bad[:SHOWN_BREAKS]:
        call = finding.result.outcome.call
        owasp = ", ".join(item.value for item in finding.attack.owasp)
        console.print(
            f"  {finding.verdict} {finding.attack.id} [{finding.attack.category.value}; {owasp}] "
            f"{call.id or call.external_id}: {'; '.join(finding.failed_checks)}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
        for line in finding.lines():
            console.print(f"      {line.role} #{line.turn}: {line.text}", highlight=False, markup=False)
    if len(bad) > SHOWN_BREAKS:
        console.print(f"  ... and {len(bad) - SHOWN_BREAKS} more (see --json)", highlight=False)
    for item in report.skipped:
        console.print(
            f"  skipped {item.attack}.{item.encoding}: {item.reason}", highlight=False, markup=False
        )
