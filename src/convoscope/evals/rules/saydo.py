"""Say-do consistency: the actions an agent claims to have taken, checked against the tools it called.

An agent that says "I've booked you for Tuesday" without a booking tool call that succeeded (for
Tuesday) has told the caller something false. Claims are extracted by the LLM judge when one is
configured, and otherwise by the action taxonomy (``saydo_taxonomy``: verbs, their completed forms and
the tools that back each action) read clause by clause (``saydo_claims``), plus any patterns an agent's
settings add. Each claim is matched on its own to the tool calls made up to shortly after it, by action
and outcome, and the details it names are compared with the call's arguments and result
(``saydo_details``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from ...errors import JudgeError
from ...model.call import Call, ToolCall, Turn
from ...model.enums import EndReason, Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._text import STOPWORDS, quote, tokens, turns_of, valid_regex
from .saydo_claims import NEGATIONS, Claim, find_claims
from .saydo_details import DETAIL_KINDS, Mismatch, detail_mismatches
from .saydo_details import as_json as mismatch_json
from .saydo_languages import foreign_claims
from .saydo_taxonomy import action_names, backing_actions, tool_actions, tool_tokens
from .tools import ERROR_KEYS, tool_call_failed

__all__ = ["ActionRule", "Claim", "SayDoConsistency", "SayDoParams", "extract_claims"]


class ActionRule(BaseModel):
    """An action the agent may claim: the phrases that claim it, and the tools that perform it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    action: str
    patterns: list[str]
    """Regular expressions (case-insensitive) for a sentence claiming the action as done or under way."""
    tools: list[str]
    """Tool-name globs (case-insensitive) of the tools that do it."""
    keywords: list[str] = Field(default_factory=list)
    """Words one of which every pattern needs: a sentence with none skips the patterns (a speed-up only;
    empty means always try them)."""

    @field_validator("patterns")
    @classmethod
    def _compile(cls, value: list[str]) -> list[str]:
        return [valid_regex(pattern) for pattern in value]


class SayDoParams(BaseModel):
    """The action taxonomy, extra patterns, how far after a claim a tool call may come, and which
    details are compared with what tolerance."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    taxonomy: bool = True
    """Find claims with the built-in action taxonomy (verbs and their completed forms, see the docs)."""
    actions: list[ActionRule] = Field(default_factory=list)
    """Extra actions: per action, claim patterns and the tool-name globs that perform it, checked in
    addition to the taxonomy."""
    grace_turns: int = Field(default=1, ge=0)
    """A tool call up to this many turns after the claim still backs it ("transferring you now")."""
    grace_s: float = Field(default=15.0, ge=0.0)
    """The same in seconds, for tool calls with a time but no turn index."""
    check_details: bool = True
    """Compare the details the claim names with the backing tool call's arguments and result."""
    details: list[str] = Field(default_factory=lambda: list(DETAIL_KINDS))
    """Kinds of detail compared: weekday, date, month, time, part_of_day, amount, code (seat, room,
    table...), quantity, item, email, address (house number and street), channel (email, text, post)."""
    time_tolerance_min: int = Field(default=0, ge=0)
    """Minutes a stated clock time may differ from the tool's and still match."""
    amount_tolerance: float = Field(default=0.01, ge=0.0)
    """How far a stated amount may differ from the tool's and still match."""
    use_judge: bool = True
    """Extract claims with the LLM judge when one is configured."""
    negation_window_chars: int = Field(default=30, ge=0)
    """Characters of a clause's start, and before it, searched for a negation, condition or offer."""

    @field_validator("details")
    @classmethod
    def _known_details(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DETAIL_KINDS))
        if unknown:
            raise ValueError(f"unknown detail kinds {unknown}; known: {list(DETAIL_KINDS)}")
        return value


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


@dataclass(frozen=True)
class _Compiled:
    """Extra patterns compiled: per action its keywords (None: no prefilter) and one alternation."""

    actions: tuple[tuple[str, frozenset[str] | None, re.Pattern[str]], ...]


def _compile(actions: Sequence[ActionRule]) -> _Compiled:
    def alternation(patterns: Sequence[str]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    return _Compiled(
        actions=tuple(
            (rule.action, frozenset(w.lower() for w in rule.keywords) or None, alternation(rule.patterns))
            for rule in actions
            if rule.patterns
        )
    )


def _pattern_claims(turns: Sequence[Turn], params: SayDoParams, rules: _Compiled) -> list[Claim]:
    """Claims found by the extra patterns: at most one per action per sentence."""
    claims: list[Claim] = []
    for turn in turns:
        text = turn.text.replace("\u2019", "'")
        words = set(tokens(text))
        candidates = [(a, p) for a, keys, p in rules.actions if keys is None or keys & words]
        for match in _SENTENCE.finditer(text) if candidates else ():
            sentence = match.group(0).strip()
            if not sentence or sentence.endswith("?"):
                continue
            for action, pattern in candidates:
                for found in pattern.finditer(sentence):
                    head = sentence[max(0, found.start() - params.negation_window_chars) : found.start()]
                    if NEGATIONS.search(head) is None:
                        claims.append(
                            Claim(turn.index, action, sentence, frozenset({action}), form="pattern")
                        )
                        break
    return claims


def extract_claims(
    turns: Sequence[Turn], params: SayDoParams, compiled: _Compiled | None = None
) -> list[Claim]:
    """Claims found without the judge: the taxonomy's, then the extra patterns' (a sentence an extra
    pattern claims for an action the taxonomy found there already is not counted twice)."""
    claims = find_claims(turns, params.negation_window_chars) if params.taxonomy else []
    seen = {(c.turn_index, c.action) for c in claims}
    if params.taxonomy:
        for claim in foreign_claims(turns):
            if (claim.turn_index, claim.action) not in seen:
                seen.add((claim.turn_index, claim.action))
                claims.append(claim)
    for claim in _pattern_claims(turns, params, compiled or _compile(params.actions)):
        if (claim.turn_index, claim.action) not in seen:
            claims.append(claim)
    return claims


_JUDGE_INSTRUCTIONS = """You read a conversation between a voice agent and a caller and list every action the
agent states it has taken or is taking right now (for example booking, sending, transferring,
cancelling, refunding, updating, opening a ticket, taking a payment). Ignore offers, questions, plans
for the future and actions the agent says it cannot take. For each claimed action give the index of
the agent turn, the action as one of the listed labels, and the agent's sentence quoted exactly."""


def _judge_claims(context: EvalContext, call: Call, params: SayDoParams) -> list[Claim]:
    judge = context.judge
    assert judge is not None
    labels = sorted({rule.action for rule in params.actions} | set(action_names()) | {"other"})
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "claims": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "turn_index": {"type": "integer"},
                        "action": {"type": "string", "enum": labels},
                        "quote": {"type": "string"},
                    },
                    "required": ["turn_index", "action", "quote"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["claims"],
        "additionalProperties": False,
    }
    transcript = "\n".join(f"[{t.index}] {t.role.value}: {t.text}" for t in call.turns if t.text)
    reply = judge.complete_json(
        instructions=_JUDGE_INSTRUCTIONS + "\nLabels: " + ", ".join(labels),
        data=transcript,
        schema=schema,
        schema_name="say_do_claims",
    )
    agent_turns = {t.index for t in turns_of(call, [Role.AGENT])}
    return [
        Claim(
            int(item["turn_index"]),
            str(item["action"]),
            str(item["quote"]),
            frozenset({str(item["action"])}),
            form="judge",
        )
        for item in reply.data.get("claims", [])
        if int(item["turn_index"]) in agent_turns and item["action"] != "other"
    ]


def _in_window(tool_call: ToolCall, turn: Turn, params: SayDoParams) -> bool:
    if tool_call.turn_index is not None:
        return tool_call.turn_index <= turn.index + params.grace_turns
    if tool_call.start_s is not None:
        return tool_call.start_s <= turn.end_s + params.grace_s
    return True


@register
class SayDoConsistency(RuleMetric[SayDoParams]):
    """Share of the agent's claimed actions backed by a successful, matching tool call."""

    name = "say_do_consistency"
    version = "6"
    params_model = SayDoParams
    description = (
        "Share of the actions the agent claimed (booked, refunded, reset, escalated, sent, transferring...) "
        "that a tool call made by then performed successfully with the details the agent named (time, date, "
        "amount, seat, item...); passes when every claim is backed. Each half of a compound claim is "
        "checked on its own. Claims come from the LLM judge when configured, else from the action taxonomy."
    )

    @cached_property
    def _patterns(self) -> _Compiled:
        return _compile(self.params.actions)

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        agent_turns = {t.index: t for t in turns_of(call, [Role.AGENT])}
        extraction = "patterns"
        notes: dict[str, JsonValue] = {}
        claims: list[Claim]
        if self.params.use_judge and context.judge is not None:
            try:
                claims = _judge_claims(context, call, self.params)
                extraction = "judge"
            except JudgeError as exc:
                notes["judge_error"] = str(exc)
                claims = extract_claims(list(agent_turns.values()), self.params, self._patterns)
        else:
            claims = extract_claims(list(agent_turns.values()), self.params, self._patterns)
        globs = {rule.action: [g.lower() for g in rule.tools] for rule in self.params.actions}
        # a tool call backs claims of one action, or of several its name says ("cancel_and_refund"):
        # "I've reset your password and unlocked the account" with only an unlock call leaves the reset
        # unbacked. Claims with a direct match take their call first.
        order = sorted(
            range(len(claims)),
            key=lambda k: (
                not any(_direct(tc, claims[k], globs.get(claims[k].action, [])) for tc in call.tool_calls)
            ),
        )
        used: dict[str, list[tuple[str, bool]]] = {}
        checks: dict[int, _Check] = {}
        for k in order:
            claim = claims[k]
            turn = agent_turns[claim.turn_index]
            checks[k] = self._check(call, claim, turn, globs.get(claim.action, []), used)
            if checks[k].matched is not None and checks[k].status == "done":
                tool_call = next(tc for tc in call.tool_calls if tc.id == checks[k].matched)
                direct = _direct(tool_call, claim, globs.get(claim.action, []))
                used.setdefault(tool_call.id, []).append((claim.action, direct))
        checked: list[JsonValue] = []
        backed = 0
        for k, claim in enumerate(claims):
            check = checks[k]
            backed += check.status == "done"
            entry: dict[str, JsonValue] = {
                "turn_index": claim.turn_index,
                "action": claim.action,
                "status": check.status,
                "quote": quote(claim.sentence),
                "tool_calls": list(check.considered),
                "matched": check.matched,
            }
            if check.mismatches:
                entry["detail"] = "; ".join(m.describe() for m in check.mismatches)
                entry["mismatches"] = mismatch_json(check.mismatches)
            elif check.note:
                entry["detail"] = check.note
            checked.append(entry)
        value = backed / len(claims) if claims else 1.0
        evidence: dict[str, JsonValue] = {"extraction": extraction, "claims": checked, **notes}
        return self.result(call, value=round(value, 6), passed=backed == len(claims), evidence=evidence)

    def _check(
        self,
        call: Call,
        claim: Claim,
        turn: Turn,
        globs: Sequence[str],
        used: dict[str, list[tuple[str, bool]]] | None = None,
    ) -> _Check:
        """Whether a tool call backs the claim: done, mismatched, failed or missing. ``used`` holds the
        calls that already back claims of other actions, which back this one only when both match directly."""
        taken = used or {}
        candidates = [
            tc
            for tc in call.tool_calls
            if _in_window(tc, turn, self.params)
            and _backs(tc, claim, globs)
            and all(
                action == claim.action or (was_direct and _direct(tc, claim, globs))
                for action, was_direct in taken.get(tc.id, [])
            )
        ]
        ids = [tc.id for tc in candidates]
        succeeded = [tc for tc in candidates if not outcome_failed(tc)]
        if not candidates:
            if "transfer" in claim.actions | {claim.action} and call.end_reason is EndReason.TRANSFER:
                return _Check("done", ids, None, note="the call ended in a transfer")
            return _Check("missing", ids, None)
        if not succeeded:
            return _Check("failed", ids, None)
        if not self.params.check_details:
            return _Check("done", ids, succeeded[0].id)
        conflicts: list[Mismatch] = []
        for tc in succeeded:
            found = detail_mismatches(
                claim.sentence,
                tc.arguments,
                tc.result,
                tool_name=tc.name,
                object_words=claim.object_words,
                action=claim.action,
                kinds=self.params.details,
                time_tolerance_min=self.params.time_tolerance_min,
                amount_tolerance=self.params.amount_tolerance,
            )
            if not found:
                return _Check("done", ids, tc.id)
            conflicts.extend(found)
        return _Check("mismatched", ids, succeeded[0].id, mismatches=conflicts)


@dataclass(frozen=True)
class _Check:
    status: str
    considered: list[str]
    matched: str | None
    mismatches: list[Mismatch] = field(default_factory=list)
    note: str | None = None


_GENERIC_TOOL_ACTIONS = frozenset({"update", "add", "note", "activate"})
"""Tool actions general enough that a shared object word decides ("update_account" with ``paperless``)."""
_OBJECT_SKIP = STOPWORDS | {"you", "your", "new", "old", "now", "just", "for", "to", "on", "the", "all"}


def _backs(tool_call: ToolCall, claim: Claim, globs: Sequence[str]) -> bool:
    """Whether a tool call is one that performs the claimed action.

    Extra actions match by their tool-name globs; taxonomy claims by the action the tool's name says
    (or a related one); a claim the taxonomy could not name ("I've issued a new card"), or a generic
    tool ("update_account"), by a word its object shares with the tool's name or argument keys.
    """
    name = tool_call.name.lower()
    if globs:
        return any(fnmatchcase(name, g) for g in globs)
    keys = list(tool_call.arguments.keys()) if isinstance(tool_call.arguments, dict) else []
    does = tool_actions(tool_call.name, keys)
    if "lookup" in does:
        return False
    if does & backing_actions(claim.actions or {claim.action}):
        return True
    if does and not does <= _GENERIC_TOOL_ACTIONS and claim.action != "other":
        return False
    tool_words = {_singular(w) for w in tool_tokens(tool_call.name)}
    tool_words |= {_singular(w) for key in keys for w in tool_tokens(key)}
    said = {_singular(w) for w in claim.object_words if w not in _OBJECT_SKIP and w.isalpha()}
    return bool(said & tool_words)


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _direct(tool_call: ToolCall, claim: Claim, globs: Sequence[str]) -> bool:
    """Whether the tool's own name says the claimed action (not only a related one)."""
    if globs:
        return any(fnmatchcase(tool_call.name.lower(), g) for g in globs)
    keys = list(tool_call.arguments.keys()) if isinstance(tool_call.arguments, dict) else []
    return bool(tool_actions(tool_call.name, keys) & (claim.actions | {claim.action}))


FAILED_STATES = frozenset(
    "error errored fail failed failure declined rejected denied refused unavailable invalid timeout "
    "timed_out cancelled_by_system not_found".split()
)
"""Result statuses that mean the action did not happen, whatever the call's success flag says."""
_STATUS_WORDS = frozenset("status state outcome result authorization authorisation decision response".split())
"""Words of a result key holding the action's status ("payment_status", "authorization", "decision")."""
_DONE_FLAGS = frozenset(
    "ok success succeeded done approved authorized authorised accepted captured paid confirmed "
    "completed".split()
)
"""Result keys (or their last word) whose false means the action did not happen ("approved": false)."""


_NOTHING_DONE = frozenset(
    "updated modified affected changed created deleted removed matched cancelled".split()
)
"""Result counts whose zero means the action touched nothing."""


def outcome_failed(tool_call: ToolCall) -> bool:
    """Whether the call failed, or succeeded as a call but reports that the action did not happen (a result
    with ``status: "failed"``, ``payment_status: "declined"``, ``approved: false``, an HTTP error status
    such as ``status_code: 500``, or an error), which an agent must not present as done. Status keys are
    read by their words, so a vendor's own naming counts."""
    if tool_call_failed(tool_call):
        return True
    result = tool_call.result
    if not isinstance(result, dict):
        return False
    for key, value in result.items():
        words = re.split(r"[^a-z]+", re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(key)).lower())
        if isinstance(value, str) and _STATUS_WORDS & set(words):
            if value.strip().lower().replace(" ", "_") in FAILED_STATES:
                return True
        elif (
            isinstance(value, int)
            and not isinstance(value, bool)
            and 400 <= value < 600
            and {"status", "http", "code"} & set(words)
        ):
            return True  # an HTTP error status in the body: {"status_code": 500, "message": ...}
        elif value == 0 and not isinstance(value, bool) and words[-1] in _NOTHING_DONE:
            return True  # {"updated": 0}: the call went through and changed nothing
        elif value is False and words[-1] in _DONE_FLAGS:
            return True
    return any(result.get(key) not in (None, "", [], {}, False) for key in (*ERROR_KEYS, "error_message"))
