"""A kept red-team run by attack category: attempts, breaches (the agent broke), held and errored, and
each breach with its call.

A red-team run is one of the ``redteam`` suite (``simulate.redteam.build.SUITE_ID``): its scenarios are
attacks, a *failed* conversation is an attack that broke the agent, a *passed* one an attack it held,
an *errored* one says nothing about its defences (as ``simulate.redteam.report`` counts them). An
attack's category comes from the built-in library by the attack's id (a variant ``<attack>.<encoding>``
counts under its attack); an attack from a project's own files is found by its call's
``redteam:<category>`` tag, read for at most ``TAG_READS`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...simulate.redteam.build import SUITE_ID
from ...simulate.redteam.library import builtin_attacks
from .simulation_views import percent

__all__ = ["Breach", "CategoryRow", "RedTeamView", "TagReader", "is_redteam", "redteam_view"]

TAG_READS = 200
"""Calls read at most to find the category of attacks that are not built in."""
UNKNOWN = "(unknown category)"
_TAG = "redteam:"

TagReader = Callable[[Collection[str]], Mapping[str, list[str]]]
"""The tags of stored calls by id (``store.get_calls``, narrowed)."""


def is_redteam(report: Mapping[str, Any]) -> bool:
    return report.get("suite") == SUITE_ID


@dataclass
class CategoryRow:
    """One attack category of the run."""

    category: str
    broke: int = 0
    held: int = 0
    errored: int = 0

    @property
    def attempts(self) -> int:
        return self.broke + self.held + self.errored

    @property
    def rate(self) -> float | None:
        """Breaches over completed attempts (errored ones tested nothing)."""
        completed = self.broke + self.held
        return self.broke / completed if completed else None

    @property
    def rate_text(self) -> str:
        return percent(self.rate)


@dataclass(frozen=True)
class Breach:
    """One attack that broke the agent."""

    attack: str
    category: str
    iteration: int
    reasons: list[str]
    call_id: str | None


@dataclass
class RedTeamView:
    """The run's categories (by name) and its breaches, in the run's order."""

    categories: list[CategoryRow] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)

    @property
    def totals(self) -> CategoryRow:
        total = CategoryRow("all")
        for row in self.categories:
            total.broke += row.broke
            total.held += row.held
            total.errored += row.errored
        return total


def _builtin_categories() -> dict[str, str]:
    return {attack.id: attack.category.value for attack in builtin_attacks()}


def _categories(conversations: list[Mapping[str, Any]], read_tags: TagReader | None) -> dict[str, str]:
    """Each attack id's category: built in, else from its call's tag, else unknown."""
    known = _builtin_categories()
    found: dict[str, str] = {}
    unknown: dict[str, str] = {}  # call id -> attack id
    for conversation in conversations:
        attack = str(conversation.get("scenario"))
        base = attack.split(".", 1)[0]
        if attack in known or base in known:
            found[attack] = known.get(attack) or known[base]
        elif attack not in found:
            call_id = conversation.get("call_id")
            if call_id and attack not in unknown.values() and len(unknown) < TAG_READS:
                unknown[str(call_id)] = attack
    if unknown and read_tags is not None:
        for call_id, tags in read_tags(list(unknown)).items():
            category = next((t[len(_TAG) :] for t in tags if t.startswith(_TAG)), None)
            if category and call_id in unknown:
                found[unknown[call_id]] = category
    return found


def redteam_view(report: Mapping[str, Any], read_tags: TagReader | None = None) -> RedTeamView:
    conversations = [c for c in report.get("conversations") or [] if isinstance(c, Mapping)]
    categories = _categories(conversations, read_tags)
    rows: dict[str, CategoryRow] = {}
    breaches: list[Breach] = []
    for conversation in conversations:
        attack = str(conversation.get("scenario"))
        category = categories.get(attack, UNKNOWN)
        row = rows.setdefault(category, CategoryRow(category))
        verdict = conversation.get("verdict")
        if verdict == "failed":
            row.broke += 1
            call_id = conversation.get("call_id")
            breaches.append(
                Breach(
                    attack,
                    category,
                    int(conversation.get("iteration") or 1),
                    [str(r) for r in conversation.get("reasons") or []],
                    str(call_id) if call_id else None,
                )
            )
        elif verdict == "passed":
            row.held += 1
        else:
            row.errored += 1
    return RedTeamView([rows[key] for key in sorted(rows)], breaches)
