"""A stored call turned into a scenario that reproduces it, so a failed production call becomes a test.

A call that went wrong in production is the best regression test there is: it is what a real caller
said, and the failure is known. :func:`scenario_from_call` turns a :class:`~convoscope.store.base.
StoredCall` (the call and its scores) into a :class:`Scenario` and a one-scenario :class:`Suite` that
``convoscope simulate`` runs unchanged (:func:`definitions_yaml` writes them as the loader reads them).
The replay fails where the original failed, and passes once the agent is fixed.

**The caller.** The caller's lines, in order, are a script (no branches): the replay runs offline and,
against the same agent, says what the original caller said. When the original caller hung up right after
their last line, that line is the script's ``closing`` (said, then the caller hangs up, as they did);
otherwise ``closing`` is None, so the replay caller hangs up silently after the agent's last answer.
With an LLM configured, the goal, instructions, facts and a description of the caller are inferred
from the transcript as well, so the suite can switch to the LLM caller (``caller: llm``) and explore
beyond the exact lines; the script stays, and the suite's ``caller: auto`` uses it.

**What should have happened** comes from what failed, never from what merely happened:

* the metrics that failed on the stored call become the suite's ``metrics``, so the replay passes only
  when they pass (a name the registry does not know, such as a project's custom metric, cannot be
  re-checked by ``convoscope simulate`` and is left out with a note);
* ``scenario_checks`` failed: the call's own checks are copied whole (a simulated call carries them);
* ``say_do_consistency`` failed: a claim the tool call contradicts ("booked for 3 pm", tool got 16:00)
  requires the tool call with the argument the agent claimed, where the argument holding the
  contradicted value can be found; a claimed transfer that never happened requires the call to end in
  a transfer (and the engine's default transfer tools answer with success when the original call used
  none). Other unbacked claims are left to the metric itself;
* ``tool_call_correctness`` failed: its expected calls become required tool calls (in any order);
* the original scenario's ``expected_outcome`` is kept; with an LLM, one is inferred when there is none.

**Tool answers.** The original call's tool calls become mocks matched on the tool's name and its
original arguments, answering with the original result, so the faulty agent's replay is the original
conversation. An agent that calls differently (the fix) is answered by, in order: a mock for the
required call (the original result with the values that echoed the corrected arguments corrected);
the tool's last successful original result, matched on the name alone; and, for a tool the expected
outcome requires that the original call never made, a plain success (:data:`SUCCESS_RESULT`).
Everything else is ``unmocked_tools: error``: the replay never reaches a real backend, and a call the
mocks do not cover is an errored conversation naming it (a test to complete, not an agent failure).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import yaml
from pydantic import JsonValue

from ..errors import InputError, JudgeError
from ..evals import registry
from ..evals.llm import JudgeClient
from ..evals.rules.tools import tool_call_failed
from ..evals.scenario import MATCHER_KEYS, ArgumentMatcher, Matcher, ScenarioChecks, ToolExpectation
from ..model import Call, CallSource, EndReason, MetricResult, Role, ToolCall
from ..store.base import StoredCall
from .conversation import ARE_YOU_THERE
from .definitions import AgentSpec, Scenario, Script, Suite, ToolMock, UnmockedTools

__all__ = [
    "FROM_CALL_TAG",
    "SUCCESS_RESULT",
    "FromCall",
    "definitions_yaml",
    "derive_from_call",
    "scenario_from_call",
    "scenario_id_for",
]

FROM_CALL_TAG = "from-call"
"""The tag every scenario made from a call carries (with the call's agent id)."""
SUCCESS_RESULT: dict[str, JsonValue] = {"success": True}
"""The answer to a tool the expected outcome requires but the original call never made: no backend
answered it, so the replay can only say it worked (edit the mock where the agent needs more)."""
SHORT_ID_CHARS = 12
"""Characters of the call id in the scenario id: the end of a UUIDv7 (its identity hash), because its
start is its time, shared by every call of the same minute."""
MAX_TURNS_SLACK = 2
"""Caller turns beyond the script's lines (an "are you there?", the hang-up) before the engine stops."""
_EVIDENCE_CHARS = 1_500
"""How much of a failed metric's evidence the LLM sees."""
_SAYDO = "say_do_consistency"
_CHECKS = "scenario_checks"
_CORRECTNESS = "tool_call_correctness"
_LATENCY = "latency"

_DEFAULT_TRANSFER_TOOLS: list[str] = AgentSpec.model_fields["transfer_tools"].get_default(
    call_default_factory=True
)
T = TypeVar("T")


@dataclass(frozen=True)
class FromCall:
    """What :func:`derive_from_call` made: the scenario, its suite, and notes on what it could not do."""

    scenario: Scenario
    suite: Suite
    call_id: str
    notes: list[str] = field(default_factory=list)
    """Things the user should know (metrics left out, claims left to their metric, the LLM's failure)."""
    inferred: bool = False
    """Whether the LLM inferred the goal, instructions and facts."""


def scenario_from_call(stored: StoredCall, *, llm: JudgeClient | None = None) -> tuple[Scenario, Suite]:
    """The scenario and suite that replay ``stored`` and expect what its failed metrics demanded.

    Raises :class:`~convoscope.errors.InputError` for a call with no caller turns (nothing to replay).
    """
    made = derive_from_call(stored, llm=llm)
    return made.scenario, made.suite


def scenario_id_for(call_id: str) -> str:
    """``from-<short call id>``: the end of the id, which tells apart calls that started together."""
    letters = re.sub(r"[^A-Za-z0-9]", "", call_id).lower()
    return f"from-{letters[-SHORT_ID_CHARS:] or 'call'}"


def derive_from_call(stored: StoredCall, *, llm: JudgeClient | None = None) -> FromCall:
    """:func:`scenario_from_call` with the notes a command shows its user."""
    call = stored.call
    call_id = call.id or call.external_id
    notes: list[str] = []
    script = _script(call, call_id)
    failed = _failed_scores(stored.scores)
    metrics: list[str] | None = None
    if failed:
        metrics = []
        for name in dict.fromkeys(score.metric for score in failed):
            if _known_metric(name):
                metrics.append(name)
            else:
                notes.append(
                    f"metric {name!r} failed but is not a built-in one: the replay cannot re-check it"
                )
        metrics = metrics or None
    else:
        notes.append("no metric failed on this call: the replay is scored with the agent's usual metrics")
    expected = _expected(call, failed)
    mocks = _mocks(
        call,
        expected.checks.required_tools,
        transfer=EndReason.TRANSFER in expected.checks.end_reason,
        delays=any(s.metric == _LATENCY for s in failed),
    )
    scenario_meta = _scenario_meta(call)
    expected_outcome = str(scenario_meta.get("expected_outcome") or "")
    goal = _default_goal(call_id, script)
    instructions, facts, inferred = "", {}, False
    if llm is not None:
        try:
            guess = _infer(llm, call, failed)
        except JudgeError as exc:
            notes.append(f"the LLM could not infer the caller ({exc}): the scenario has the scripted replay")
        else:
            inferred = True
            goal = guess.goal or goal
            instructions = guess.instructions
            facts = guess.facts
            expected_outcome = expected_outcome or guess.expected_outcome
    sid = scenario_id_for(call_id)
    tags = [FROM_CALL_TAG, *([call.agent_id] if call.agent_id else [])]
    scenario = Scenario(
        id=sid,
        name=f"From call {call_id} ({call.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)",
        goal=goal,
        instructions=instructions,
        facts=facts,
        expected_outcome=expected_outcome,
        checks=expected.checks,
        tool_mocks=mocks,
        unmocked_tools=UnmockedTools.ERROR,
        script=script,
        max_turns=min(500, max(20, len(script.lines) + MAX_TURNS_SLACK + 1)),
        tags=list(dict.fromkeys(tags)),
    )
    suite = Suite(
        id=sid,
        name=f"Replay of call {call_id}",
        scenarios=[sid],
        metrics=metrics,
        caller="auto",
    )
    return FromCall(scenario, suite, call_id, notes + expected.notes, inferred)


# ----- the caller


def _script(call: Call, call_id: str) -> Script:
    """The caller's lines in order; the last one is the closing when the caller hung up right after it."""
    spoken = [turn for turn in call.turns if turn.role in (Role.USER, Role.AGENT) and turn.text.strip()]
    if call.source is CallSource.SIMULATION:
        # The engine says this itself when the agent is silent; a replay that scripted it would say it twice.
        spoken = [turn for turn in spoken if turn.role is not Role.USER or turn.text.strip() != ARE_YOU_THERE]
    lines = [turn.text.strip() for turn in spoken if turn.role is Role.USER]
    if not lines:
        raise InputError(f"call {call_id} has no caller turns: there is nothing to replay")
    if call.end_reason is EndReason.USER_HANGUP and spoken[-1].role is Role.USER:
        return Script(lines=lines[:-1], closing=lines[-1])
    return Script(lines=lines, closing=None)


def _default_goal(call_id: str, script: Script) -> str:
    first = script.lines[0] if script.lines else script.closing or ""
    return f'What the caller of call {call_id} wanted; they began: "{first}"'


# ----- what should have happened


def _failed_scores(scores: Sequence[MetricResult]) -> list[MetricResult]:
    return [score for score in scores if score.passed is False]


def _known_metric(name: str) -> bool:
    return name in registry.all_metrics()


def _scenario_meta(call: Call) -> Mapping[str, Any]:
    meta = call.metadata.get("scenario") if isinstance(call.metadata, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


@dataclass
class _Expected:
    checks: ScenarioChecks
    notes: list[str]


def _expected(call: Call, failed: Sequence[MetricResult]) -> _Expected:
    """The checks the failed metrics say must hold (see the module's docstring for the rules)."""
    notes: list[str] = []
    copied = ScenarioChecks()
    required: list[ToolExpectation] = []
    end_reason: list[EndReason] = []
    for score in failed:
        if score.metric == _CHECKS:
            raw = _scenario_meta(call).get("checks")
            if raw is not None:
                try:
                    copied = ScenarioChecks.model_validate(raw)
                except ValueError as exc:
                    notes.append(f"the call's scenario checks are invalid and were not copied: {exc}")
        elif score.metric == _SAYDO:
            found, ends, left = _saydo_expectations(call, score.evidence)
            required.extend(found)
            end_reason.extend(ends)
            notes.extend(left)
        elif score.metric == _CORRECTNESS:
            required.extend(_correctness_expectations(score.evidence))
    if end_reason and copied.end_reason and not set(end_reason) <= set(copied.end_reason):
        notes.append(
            "the agent claimed a transfer, but the call's own checks say how it must end; kept those"
        )
    tools = _unique([*copied.required_tools, *required])
    checks = copied.model_copy(
        update={"required_tools": tools, "end_reason": copied.end_reason or _unique(end_reason)}
    )
    return _Expected(checks, notes)


def _unique(items: Sequence[T]) -> list[T]:
    kept: list[T] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def _saydo_expectations(
    call: Call, evidence: Mapping[str, JsonValue]
) -> tuple[list[ToolExpectation], list[EndReason], list[str]]:
    """Per unbacked claim: the tool call as claimed, a transfer, or a note that the metric keeps it."""
    required: list[ToolExpectation] = []
    ends: list[EndReason] = []
    notes: list[str] = []
    claims = evidence.get("claims")
    by_id = {tc.id: tc for tc in call.tool_calls}
    for claim in claims if isinstance(claims, list) else []:
        if not isinstance(claim, dict) or claim.get("status") == "done":
            continue
        status, action = claim.get("status"), str(claim.get("action"))
        tool = by_id.get(str(claim.get("matched"))) if claim.get("matched") else None
        if status == "mismatched" and tool is not None:
            corrected = _claimed_arguments(tool, claim.get("mismatches"))
            required.append(ToolExpectation(tool=tool.name, arguments=_matchers(corrected)))
            if not corrected:
                notes.append(
                    f"the claim {claim.get('quote')!r} names details no argument of {tool.name} holds as "
                    f"said; {_SAYDO} checks them"
                )
        elif status == "missing" and action == "transfer":
            ends.append(EndReason.TRANSFER)
        else:
            notes.append(f"the {status} claim {claim.get('quote')!r} is left to {_SAYDO}")
    return required, ends, notes


def _claimed_arguments(tool: ToolCall, mismatches: JsonValue) -> dict[str, JsonValue]:
    """The arguments the agent claimed: each argument that holds a contradicted value, set to what was
    said, where the two read alike (a time for a time, a number for a number). Values in another form
    (a date said as "December 8", sent as 2026-12-08) are not guessed at."""
    arguments = tool.arguments if isinstance(tool.arguments, dict) else {}
    corrected: dict[str, JsonValue] = {}
    for mismatch in mismatches if isinstance(mismatches, list) else []:
        if not isinstance(mismatch, dict):
            continue
        said = str(mismatch.get("said", ""))
        if mismatch.get("kind") == "code":
            said = said.split(" ", 1)[-1]  # "seat 12a": the label, then the code
        if not said or "/" in said:
            continue  # several values said: which one the argument should hold is not known
        got = {_text(part) for part in str(mismatch.get("tool", "")).split("/")}
        for name, value in arguments.items():
            if isinstance(value, dict | list) or value is None or _text(value) not in got:
                continue
            new = _like(value, said)
            if new is not None:
                corrected[name] = new
    return corrected


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:g}"
    return " ".join(str(value).split()).casefold()


def _like(original: JsonValue, said: str) -> JsonValue:
    """``said`` in the original argument's type, or None when it does not read as one."""
    if isinstance(original, bool):
        return None
    if isinstance(original, int | float):
        try:
            number = float(said)
        except ValueError:
            return None
        return int(number) if isinstance(original, int) and number.is_integer() else number
    return said


def _correctness_expectations(evidence: Mapping[str, JsonValue]) -> list[ToolExpectation]:
    """The expected calls of a failed ``tool_call_correctness``, as required tool calls."""
    listed = evidence.get("expected")
    required: list[ToolExpectation] = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            continue
        arguments = item.get("arguments")
        plain = arguments if isinstance(arguments, dict) else {}
        required.append(ToolExpectation(tool=str(item["name"]), arguments=_matchers(plain)))
    return required


def _matchers(arguments: Mapping[str, JsonValue]) -> dict[str, Matcher]:
    """Plain values as matchers; an object that would read as a matcher is wrapped as ``one_of``."""
    return {name: _matcher(value) for name, value in arguments.items()}


def _matcher(value: JsonValue) -> Matcher:
    if isinstance(value, dict) and value and set(value) <= MATCHER_KEYS:
        return ArgumentMatcher(one_of=[value])
    return value


# ----- tool answers


def _mocks(
    call: Call, required: Sequence[ToolExpectation], *, transfer: bool, delays: bool
) -> list[ToolMock]:
    """Original answers on the original arguments, then the required calls, then fallbacks by name; a
    required transfer that the original call never attempted lets the engine's default transfer tools
    succeed (which tool the agent uses is not known from a call that used none)."""
    exact: list[ToolMock] = []
    for index, tool in enumerate(call.tool_calls):
        mock = _mock_of(tool, delays=delays)
        later_same = any(
            other.name == tool.name and other.arguments == tool.arguments
            for other in call.tool_calls[index + 1 :]
        )
        exact.append(mock.model_copy(update={"times": 1}) if later_same else mock)
    corrected: list[ToolMock] = []
    for expectation in required:
        made = [tc for tc in call.tool_calls if tc.name == expectation.tool]
        plain = {k: v for k, v in expectation.arguments.items() if not isinstance(v, ArgumentMatcher)}
        if not made or expectation.matching(call.tool_calls) or not plain:
            continue
        base = made[-1]
        arguments = dict(base.arguments) if isinstance(base.arguments, dict) else {}
        mock = _mock_of(base, delays=delays)
        corrected.append(
            mock.model_copy(
                update={
                    "when": _matchers({**arguments, **plain}),
                    "result": _echoed(base.result, arguments, plain),
                    "times": None,
                }
            )
        )
    fallbacks: list[ToolMock] = []
    for name in dict.fromkeys(tc.name for tc in call.tool_calls):
        good = [tc for tc in call.tool_calls if tc.name == name and not tool_call_failed(tc)]
        if good:
            fallbacks.append(_mock_of(good[-1], delays=delays).model_copy(update={"when": {}, "times": None}))
    called = {tc.name for tc in call.tool_calls}
    needed = [e.tool for e in required]
    if transfer and not called & set(_DEFAULT_TRANSFER_TOOLS):
        needed.extend(_DEFAULT_TRANSFER_TOOLS)
    invented = [
        ToolMock(tool=name, result=dict(SUCCESS_RESULT))
        for name in dict.fromkeys(needed)
        if name not in called
    ]
    return _unique([*exact, *corrected, *fallbacks, *invented])


def _mock_of(tool: ToolCall, *, delays: bool) -> ToolMock:
    arguments = tool.arguments if isinstance(tool.arguments, dict) else {}
    delay = 0.0
    if delays and tool.start_s is not None and tool.end_s is not None:
        delay = round(min(600.0, max(0.0, tool.end_s - tool.start_s)), 3)
    return ToolMock(
        tool=tool.name,
        when=_matchers(arguments),
        result=tool.result,
        success=tool.success if tool.success is not None else not tool_call_failed(tool),
        delay_s=delay,
    )


def _echoed(result: JsonValue, original: Mapping[str, JsonValue], plain: Mapping[str, Any]) -> JsonValue:
    """The result with each field named as a corrected argument, and holding its original value, given
    the corrected one (a booking API echoes the time it booked; the fix booked another)."""
    if not isinstance(result, dict):
        return result
    return {
        key: plain[key] if key in plain and key in original and original[key] == value else value
        for key, value in result.items()
    }


# ----- the LLM's reading of the caller


@dataclass(frozen=True)
class _Guess:
    goal: str
    instructions: str
    facts: dict[str, str]
    expected_outcome: str


_GUESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal": {"type": "string", "description": "What the caller wanted, in the caller's own terms."},
        "instructions": {
            "type": "string",
            "description": "How the caller went about it: what they revealed when, what they pushed back on.",
        },
        "facts": {
            "type": "array",
            "description": "What the caller knew and gave: name, phone, date of birth, booking id...",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                "required": ["name", "value"],
                "additionalProperties": False,
            },
        },
        "caller": {
            "type": "string",
            "description": "The caller as a person: mood, patience, how they speak.",
        },
        "expected_outcome": {
            "type": "string",
            "description": "One sentence: what the agent should have done, given what failed.",
        },
    },
    "required": ["goal", "instructions", "facts", "caller", "expected_outcome"],
    "additionalProperties": False,
}

_GUESS_INSTRUCTIONS = """You turn a real phone call between a caller and a company's AI agent into a test
scenario that a simulated caller will play again. Read the transcript and describe the caller, not the
agent:
- goal: what the caller wanted, in their own terms ("Book a cleaning on Tuesday at 3 pm").
- instructions: how they went about it (what they said first, what they gave only when asked, what they
  insisted on), written as instructions to someone playing them ("Ask for ...; if offered ..., refuse").
- facts: each thing the caller knew and gave (name, phone, date of birth, booking id, address...), with
  the value exactly as given. Never invent one.
- caller: the caller as a person in one or two sentences (mood, patience, way of speaking).
- expected_outcome: one sentence saying what the agent should have done, using the failed checks listed
  after the transcript; what the agent actually did is not necessarily right."""


def _infer(llm: JudgeClient, call: Call, failed: Sequence[MetricResult]) -> _Guess:
    reply = llm.complete_json(
        instructions=_GUESS_INSTRUCTIONS,
        data=_describe(call, failed),
        schema=_GUESS_SCHEMA,
        schema_name="scenario_from_call",
    )
    data = reply.data
    facts: dict[str, str] = {}
    for item in data.get("facts") or []:
        if isinstance(item, dict):
            name, value = str(item.get("name", "")).strip(), str(item.get("value", "")).strip()
            if name and value:
                facts[name] = value
    instructions = str(data.get("instructions", "")).strip()
    caller = str(data.get("caller", "")).strip()
    if caller:
        instructions = f"{instructions}\nAs a person: {caller}".strip()
    return _Guess(
        goal=str(data.get("goal", "")).strip(),
        instructions=instructions,
        facts=facts,
        expected_outcome=str(data.get("expected_outcome", "")).strip(),
    )


def _describe(call: Call, failed: Sequence[MetricResult]) -> str:
    """The transcript, the tool calls and what failed, as the LLM reads them."""
    import orjson

    lines = ["Transcript:"]
    for turn in call.turns:
        if turn.text.strip():
            lines.append(
                f"[{turn.index}] {'caller' if turn.role is Role.USER else turn.role.value}: {turn.text}"
            )
    if call.tool_calls:
        lines.append("\nTool calls the agent made:")
        for tool in call.tool_calls:
            arguments = orjson.dumps(tool.arguments).decode()
            result = orjson.dumps(tool.result).decode()[:300]
            lines.append(f"- {tool.name}({arguments}) -> {result}")
    lines.append(f"\nThe call ended: {call.end_reason.value}")
    if failed:
        lines.append("\nChecks that failed on this call:")
        for score in failed:
            evidence = orjson.dumps(score.evidence).decode()[:_EVIDENCE_CHARS]
            lines.append(f"- {score.metric}: {evidence}")
    return "\n".join(lines)


# ----- YAML


def definitions_yaml(scenario: Scenario, suite: Suite, *, call_id: str | None = None) -> str:
    """The scenario and suite as YAML documents that :func:`~.loader.load_definitions` reads back into
    equal objects, under a comment saying where they came from and how to run them."""
    # Two settings are written out even at their defaults, being the lines a user changes: the suite's
    # caller (``llm`` for the LLM caller) and what unmocked tools do (``pass_through`` for a real backend).
    written = scenario.model_dump(mode="json", exclude_defaults=True)
    keys = list(written)
    at = keys.index("script") if "script" in keys else len(keys)
    keys.insert(at, "unmocked_tools")
    written["unmocked_tools"] = scenario.unmocked_tools.value
    documents = [
        {"kind": "scenario", **{key: written[key] for key in keys}},
        {"kind": "suite", **suite.model_dump(mode="json", exclude_defaults=True), "caller": suite.caller},
    ]
    source = f" from call {call_id}" if call_id else ""
    header = [
        f"# Generated by `convoscope scenario from-call`{source} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "# The caller replays the original caller's lines (script); tool calls are answered with the",
        "# original results (tool_mocks). Run it against an agent defined in your simulation folder:",
        f"#   convoscope simulate {suite.id} --agent AGENT --defs FOLDER",
        "# To let an LLM play the caller from the goal, instructions and facts instead of the exact",
        "# lines, set `caller: llm` in the suite (an LLM endpoint must be configured).",
    ]
    body = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body
