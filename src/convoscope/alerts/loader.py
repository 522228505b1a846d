"""Alert rules from YAML, refused with the file, line and field of every mistake.

Rules live in the same files as simulation suites: each YAML document names its ``kind``, and the
documents of kind ``alert_rule`` are rules (the simulation loader skips them, this one skips the
others). Because ``kind`` names the document, a rule's own kind is the name of its parameter block::

    kind: alert_rule
    id: slow-answers
    name: p95 agent latency over 1.5 s
    target: e2e_s
    threshold: {aggregate: p95, op: ">", value: 1.5}

The YAML is composed into nodes first, so every value keeps its line, and pydantic's error locations
are mapped back to those lines (the approach of ``simulate.loader``, which this layer may not import).
Nothing half-loaded is returned: every rule is valid, or :class:`RuleFileError` lists every problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, PayloadError
from .rules import AlertRule, parse_rule

__all__ = ["RULE_KIND", "RuleFileError", "RuleProblem", "load_rule_files", "load_rules_text"]

RULE_KIND = "alert_rule"
"""The ``kind`` of a YAML document that is an alert rule."""

_SUFFIXES = (".yaml", ".yml")
_Path = tuple[str | int, ...]


@dataclass(frozen=True)
class RuleProblem:
    """One mistake: where (file, line, field) and what."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RuleFileError(InputError):
    """Rule files that cannot be used, with every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the alert rules:\n{lines}")


def _plain(node: yaml.Node, path: _Path, lines: dict[_Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            out[key] = _plain(value_node, (*path, str(key)), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, index), lines) for index, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _line_of(lines: dict[_Path, int], loc: Iterable[Any], default: int) -> int:
    path: _Path = tuple(str(part) if not isinstance(part, int) else part for part in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return default


def load_rules_text(text: str, file: str = "<text>") -> list[AlertRule]:
    """Every ``alert_rule`` document of one YAML text, in order; other kinds are skipped."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise RuleFileError(
            [RuleProblem(file, mark.line + 1 if mark is not None else None, "", f"not valid YAML: {reason}")]
        ) from None
    problems: list[RuleProblem] = []
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for node in nodes:
        if node is None:
            continue
        lines: dict[_Path, int] = {}
        data = _plain(node, (), lines)
        start = node.start_mark.line + 1
        if not isinstance(data, dict) or data.get("kind") != RULE_KIND:
            continue
        fields = {key: value for key, value in data.items() if key != "kind"}
        ident = fields.pop("id", None)
        if not isinstance(ident, str):
            problems.append(
                RuleProblem(file, _line_of(lines, ("id",), start), "id", "a rule needs an id (a slug)")
            )
            continue
        try:
            rule = parse_rule(ident, fields)
        except PayloadError as exc:
            for error in exc.errors:
                loc = error.get("loc") or []
                parts = list(loc) if isinstance(loc, list | tuple) else [loc]
                field = ".".join(str(part) for part in parts)
                problems.append(
                    RuleProblem(file, _line_of(lines, parts, start), field, str(error.get("msg")))
                )
            continue
        if ident in seen:
            message = f"rule {ident!r} is also defined at {file}:{seen[ident]}"
            problems.append(RuleProblem(file, _line_of(lines, ("id",), start), "id", message))
            continue
        seen[ident] = _line_of(lines, ("id",), start)
        rules.append(rule)
    if problems:
        raise RuleFileError(problems)
    return rules


def load_rule_files(paths: Sequence[Path]) -> list[AlertRule]:
    """Every rule in ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``), checked together:
    an id defined twice, in one file or two, is a problem."""
    problems: list[RuleProblem] = []
    rules: list[AlertRule] = []
    where: dict[str, str] = {}
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            problems.append(RuleProblem(str(path), None, "", "no such file or folder"))
    for file in files:
        try:
            found = load_rules_text(file.read_text(encoding="utf-8"), str(file))
        except RuleFileError as exc:
            problems.extend(exc.problems)
            continue
        except UnicodeDecodeError as exc:
            problems.append(RuleProblem(str(file), None, "", f"not UTF-8 text: {exc.reason}"))
            continue
        for rule in found:
            if rule.id in where:
                problems.append(
                    RuleProblem(
                        str(file), None, "id", f"rule {rule.id!r} is also defined in {where[rule.id]}"
                    )
                )
                continue
            where[rule.id] = str(file)
            rules.append(rule)
    if problems:
        raise RuleFileError(problems)
    return rules
