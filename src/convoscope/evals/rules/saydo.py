"""Say-do consistency: the actions an agent claims to have taken, checked against the tools it called.

An agent that says "I've booked you for Tuesday" without a booking tool call that succeeded (for
Tuesday) has told the caller something false. Claims are extracted by the LLM judge when one is
configured (it catches phrasings no pattern lists) and by phrase patterns otherwise; each claim is then
matched to the tool calls made up to shortly after it, by action, outcome and the details it names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
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
from ._text import quote, tokens, turns_of, valid_regex
from .tools import tool_call_failed

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


_HAVE = (
    r"(?:i've|i have|i|we've|we have|we)"
    r"(?: just| now| already| successfully| went ahead and| gone ahead and)?"
)
_DONE = r"(?:has|have) (?:now |just |already |successfully )?been|is (?:now |all )?|are (?:now |all )?"

DEFAULT_ACTIONS: tuple[ActionRule, ...] = (
    ActionRule(
        action="book",
        patterns=[
            rf"\b{_HAVE} (?:booked|scheduled|reserved|rescheduled|confirmed) (?:you|your|the|a|it|that)\b",
            rf"\b{_HAVE} (?:made|set up|created) (?:a|the|your) (?:booking|reservation|appointment)\b",
            r"\byou(?:'re| are) (?:all )?(?:booked|scheduled|confirmed|set)(?: in)? for\b",
            r"\b(?:appointment|booking|reservation|visit)(?: is| has been)? (?:now |all )?(?:booked|"
            r"confirmed|scheduled|rescheduled)\b",
            rf"\b(?:appointment|booking|reservation) (?:{_DONE})(?:booked|confirmed|scheduled|moved)\b",
        ],
        tools=["*book*", "*schedul*", "*reserv*", "*appointment*", "*calendar*"],
        keywords=(
            "booked scheduled reserved rescheduled confirmed booking reservation appointment visit set moved"
        ).split(),
    ),
    ActionRule(
        action="send",
        patterns=[
            rf"\b{_HAVE} (?:sent|emailed|texted|messaged|forwarded) (?:you|it|that|the|a|your|over)\b",
            r"\bi(?:'m| am) (?:sending|texting|emailing) (?:you|it|that|the|a|over)\b",
            r"\b(?:link|email|text|message|confirmation|receipt|code|sms)(?: is| has been| was) "
            r"(?:just |now )?(?:sent|on its way)\b",
            r"\byou should (?:have|get|receive) (?:it|the|a|an) (?:\w+ )?(?:shortly|now|in a)\b",
        ],
        tools=["*send*", "*email*", "*sms*", "*text*", "*message*", "*notify*", "*mail*"],
        keywords="sent emailed texted messaged forwarded sending texting emailing should way".split(),
    ),
    ActionRule(
        action="transfer",
        patterns=[
            r"\b(?:i'm |i am |i'll be |i will be )?(?:transferring|connecting|forwarding) you\b",
            r"\b(?:let me|i'll|i will|i'm going to) (?:transfer|connect|forward) you (?:now|right now|to)\b",
            r"\bputting you through\b",
            rf"\b{_HAVE} (?:transferred|connected|forwarded) you\b",
        ],
        tools=["*transfer*", "*forward*", "*handoff*", "*hand_off*", "*escalat*", "*connect*"],
        keywords=(
            "transferring connecting forwarding transfer connect forward putting transferred connected "
            "forwarded"
        ).split(),
    ),
    ActionRule(
        action="cancel",
        patterns=[
            rf"\b{_HAVE} (?:cancell?ed|canceled|terminated) (?:your|the|it|that|a)\b",
            r"\b(?:order|subscription|appointment|booking|reservation|membership|plan|account)"
            r"(?: is| has been| was) (?:now |successfully )?(?:cancell?ed|canceled|terminated)\b",
        ],
        tools=["*cancel*", "*terminat*", "*delete*"],
        keywords="cancelled canceled terminated".split(),
    ),
    ActionRule(
        action="refund",
        patterns=[
            rf"\b{_HAVE} (?:issued|processed|initiated|started|submitted) (?:a|the|your) "
            r"(?:full |partial )?refund\b",
            rf"\b{_HAVE} refunded\b",
            r"\brefund (?:has been|was|is) (?:now )?(?:issued|processed|initiated|on its way|approved)\b",
        ],
        tools=["*refund*", "*credit*", "*reimburs*"],
        keywords="refund refunded".split(),
    ),
    ActionRule(
        action="update",
        patterns=[
            rf"\b{_HAVE} (?:updated|changed|corrected|modified|added|removed) (?:your|the|it|that)\b",
            r"\b(?:address|email|phone number|number|details|information|record|account|profile|"
            r"preferences?)(?: is| has been| was) (?:now |successfully )?(?:updated|changed|corrected)\b",
        ],
        tools=["*update*", "*change*", "*modify*", "*edit*", "*save*"],
        keywords="updated changed corrected modified added removed".split(),
    ),
    ActionRule(
        action="ticket",
        patterns=[
            rf"\b{_HAVE} (?:created|opened|logged|filed|raised|submitted) (?:a|the|your) "
            r"(?:support )?(?:ticket|case|request|complaint|claim|report)\b",
            r"\b(?:ticket|case|complaint|claim)(?: is| has been| was) (?:now )?"
            r"(?:created|opened|logged|filed)\b",
        ],
        tools=["*ticket*", "*case*", "*complaint*", "*claim*", "*report*", "*issue*"],
        keywords="created opened logged filed raised submitted".split(),
    ),
    ActionRule(
        action="payment",
        patterns=[
            rf"\b{_HAVE} (?:processed|taken|charged|applied|received) (?:your|the|a) "
            r"(?:payment|card|charge)\b",
            r"\bpayment (?:has been|was|is) (?:now )?(?:processed|received|taken|accepted|applied)\b",
        ],
        tools=["*pay*", "*charge*", "*billing*", "*invoice*"],
        keywords="processed taken charged applied received payment".split(),
    ),
)
"""Actions claimed often enough to have built-in patterns; an agent's settings can replace them."""

NEGATIONS = re.compile(
    r"\b(?:not|n't|never|unable|cannot|can't|couldn't|won't|wasn't|haven't|hasn't|didn't|no longer|"
    r"before|once|as soon as|until|if|when|would you like|do you want|shall i|should i|can i|could i)\b",
    re.IGNORECASE,
)
"""Words that, shortly before a claim pattern, turn it into something other than a claim (a negation,
a condition, an offer). A sentence ending in a question mark is never a claim either."""

_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december",
)  # fmt: skip
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)\b|\b(\d{1,2}):(\d{2})\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class SayDoParams(BaseModel):
    """The action catalogue and how far after a claim a tool call may come."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    actions: list[ActionRule] = Field(default_factory=lambda: [a.model_copy() for a in DEFAULT_ACTIONS])
    """The action catalogue: per action, the claim patterns and the tool-name globs that perform it."""
    grace_turns: int = Field(default=1, ge=0)
    """A tool call up to this many turns after the claim still backs it ("transferring you now")."""
    grace_s: float = Field(default=15.0, ge=0.0)
    """The same in seconds, for tool calls with a time but no turn index."""
    check_details: bool = True
    """Compare weekdays, months, times and email addresses named in the claim with the tool arguments."""
    use_judge: bool = True
    """Extract claims with the LLM judge when one is configured."""
    negation_window_chars: int = Field(default=30, ge=0)
    """Characters before a claim searched for a negation, condition or offer."""


@dataclass(frozen=True)
class Claim:
    """One action the agent said it took."""

    turn_index: int
    action: str
    sentence: str


def _negated(sentence: str, start: int, window: int) -> bool:
    return NEGATIONS.search(sentence[max(0, start - window) : start]) is not None


@dataclass(frozen=True)
class _Compiled:
    """The catalogue compiled: per action its keywords (None: no prefilter) and one alternation."""

    actions: tuple[tuple[str, frozenset[str] | None, re.Pattern[str]], ...]


def _compile(actions: Sequence[ActionRule]) -> _Compiled:
    def alternation(patterns: Sequence[str]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)

    return _Compiled(
        actions=tuple(
            (rule.action, frozenset(w.lower() for w in rule.keywords) or None, alternation(rule.patterns))
            for rule in actions
        )
    )


def extract_claims(
    turns: Sequence[Turn], params: SayDoParams, compiled: _Compiled | None = None
) -> list[Claim]:
    """Claims found by the phrase patterns: at most one per action per sentence."""
    rules = compiled or _compile(params.actions)
    claims: list[Claim] = []
    for turn in turns:
        text = turn.text.replace("\u2019", "'")
        words = set(tokens(text))
        candidates = [(a, p) for a, keys, p in rules.actions if keys is None or keys & words]
        if not candidates:
            continue
        for match in _SENTENCE.finditer(text):
            sentence = match.group(0).strip()
            if not sentence or sentence.endswith("?"):
                continue
            for action, pattern in candidates:
                for found in pattern.finditer(sentence):
                    if not _negated(sentence, found.start(), params.negation_window_chars):
                        claims.append(Claim(turn.index, action, sentence))
                        break
    return claims


_JUDGE_INSTRUCTIONS = """You read a conversation between a voice agent and a caller and list every action the
agent states it has taken or is taking right now (for example booking, sending, transferring,
cancelling, refunding, updating, opening a ticket, taking a payment). Ignore offers, questions, plans
for the future and actions the agent says it cannot take. For each claimed action give the index of
the agent turn, the action as one of the listed labels, and the agent's sentence quoted exactly."""


def _judge_claims(context: EvalContext, call: Call, params: SayDoParams) -> list[Claim]:
    judge = context.judge
    assert judge is not None
    labels = sorted({rule.action for rule in params.actions} | {"other"})
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
        Claim(int(item["turn_index"]), str(item["action"]), str(item["quote"]))
        for item in reply.data.get("claims", [])
        if int(item["turn_index"]) in agent_turns and item["action"] != "other"
    ]


def _hours(match: re.Match[str]) -> str:
    if match.group(4) is not None:
        return f"{int(match.group(4)):02d}:{match.group(5)}"
    hour = int(match.group(1)) % 12 + (12 if match.group(3).lower().startswith("p") else 0)
    return f"{hour:02d}:{match.group(2) or '00'}"


def _detail_conflicts(sentence: str, arguments: JsonValue) -> list[str]:
    """Details named in the claim that the tool arguments contradict (another weekday, time, email)."""
    said = sentence.lower()
    args = json.dumps(arguments).lower() if arguments is not None else ""
    conflicts: list[str] = []
    for vocabulary in (_WEEKDAYS, _MONTHS):
        named = [w for w in vocabulary if re.search(rf"\b{w}\b", said)]
        in_args = [w for w in vocabulary if w in args]
        if named and in_args and not set(named) & set(in_args):
            conflicts.append(f"said {'/'.join(named)}, tool got {'/'.join(in_args)}")
    said_times = {_hours(m) for m in _TIME.finditer(said)}
    arg_times = {f"{int(h):02d}:{m}" for h, m in re.findall(r"(?<!\d)(\d{1,2}):(\d{2})", args)}
    if said_times and arg_times and not said_times & arg_times:
        conflicts.append(f"said {'/'.join(sorted(said_times))}, tool got {'/'.join(sorted(arg_times))}")
    said_emails = set(_EMAIL.findall(said))
    arg_emails = set(_EMAIL.findall(args))
    if said_emails and arg_emails and not said_emails & arg_emails:
        conflicts.append(f"said {'/'.join(sorted(said_emails))}, tool got {'/'.join(sorted(arg_emails))}")
    return conflicts


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
    version = "1"
    params_model = SayDoParams
    description = (
        "Share of the actions the agent claimed (booked, sent, transferring...) that a tool call made "
        "by then performed successfully with the details the agent named; passes when every claim is "
        "backed. Claims come from the LLM judge when configured, else from phrase patterns."
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
        rules = {rule.action: rule for rule in self.params.actions}
        checked: list[JsonValue] = []
        backed = 0
        for claim in claims:
            turn = agent_turns[claim.turn_index]
            status, detail, tool_ids = self._check(call, claim, turn, rules[claim.action])
            backed += status == "done"
            entry: dict[str, JsonValue] = {
                "turn_index": claim.turn_index,
                "action": claim.action,
                "status": status,
                "quote": quote(claim.sentence),
                "tool_calls": list(tool_ids),
            }
            if detail:
                entry["detail"] = detail
            checked.append(entry)
        value = backed / len(claims) if claims else 1.0
        evidence: dict[str, JsonValue] = {"extraction": extraction, "claims": checked, **notes}
        return self.result(call, value=round(value, 6), passed=backed == len(claims), evidence=evidence)

    def _check(
        self, call: Call, claim: Claim, turn: Turn, rule: ActionRule
    ) -> tuple[str, str | None, list[str]]:
        """(status, detail, tool call ids): done, mismatched, failed or missing."""
        globs = [g.lower() for g in rule.tools]
        candidates = [
            tc
            for tc in call.tool_calls
            if any(fnmatchcase(tc.name.lower(), g) for g in globs) and _in_window(tc, turn, self.params)
        ]
        ids = [tc.id for tc in candidates]
        succeeded = [tc for tc in candidates if not tool_call_failed(tc)]
        if not candidates:
            if rule.action == "transfer" and call.end_reason is EndReason.TRANSFER:
                return "done", "the call ended in a transfer", ids
            return "missing", None, ids
        if not succeeded:
            return "failed", None, ids
        if not self.params.check_details:
            return "done", None, ids
        conflicts: list[str] = []
        for tc in succeeded:
            found = _detail_conflicts(claim.sentence, tc.arguments)
            if not found:
                return "done", None, ids
            conflicts.extend(found)
        return "mismatched", "; ".join(conflicts), ids
