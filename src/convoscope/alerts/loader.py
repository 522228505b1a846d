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
are mapped back to those lines (``convoscope.yamldocs``, shared with the other definition files).
Nothing half-loaded is returned: every rule is valid, or :class:`RuleFileError` lists every problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..yamldocs import Problem, ProblemsError, load_kind_files, load_kind_text
from .rules import AlertRule, parse_rule

__all__ = ["RULE_KIND", "RuleFileError", "RuleProblem", "load_rule_files", "load_rules_text"]

RULE_KIND = "alert_rule"
"""The ``kind`` of a YAML document that is an alert rule."""

RuleProblem = Problem
"""One mistake in a rule file (file, line, field, message)."""


class RuleFileError(ProblemsError):
    """Rule files that cannot be used, with every problem found."""

    what = "the alert rules"


def load_rules_text(text: str, file: str = "<text>") -> list[AlertRule]:
    """Every ``alert_rule`` document of one YAML text, in order; other kinds are skipped."""
    found, problems = load_kind_text(text, file, RULE_KIND, parse_rule, noun="rule")
    if problems:
        raise RuleFileError(problems)
    return [rule for _, rule in found]


def load_rule_files(paths: Sequence[Path]) -> list[AlertRule]:
    """Every rule in ``paths`` (files, or folders searched for ``*.yaml``/``*.yml``), checked together:
    an id defined twice, in one file or two, is a problem."""
    found, problems = load_kind_files(paths, RULE_KIND, parse_rule, noun="rule")
    if problems:
        raise RuleFileError(problems)
    return [rule for _, rule in found]
