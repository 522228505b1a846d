"""A run: every (scenario, persona, iteration) of a suite against one agent, concurrently, then scored.

Conversations run as asyncio tasks under a concurrency bound, so hundreds wait on the agent at once on
one core. Each finished conversation is scored off the event loop by the same evaluators as production
(plus the scenario's own checks) and handed to ``on_result`` at once, so progress, storage and the
summary see it while the others still run. A conversation *passes* when it completed and no metric
failed; it *fails* when a metric or check failed; it is *errored* when the agent or the test itself could
not complete it (unreachable, silent, malformed, a tool call no mock answers). The exit code keeps the
three apart: 0 all passed, 1 some failed, 2 some errored.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import JsonValue

from ..evals.base import AgentProfile, EvalContext, Metric
from ..evals.llm import JudgeClient
from ..evals.runner import evaluate_call, resolve_metrics
from ..evals.scenario import ScenarioChecksMetric
from ..model import Call, MetricResult
from ..model.blob_ref import blob_uri
from .callers import caller_for
from .connectors.registry import AnyConnector
from .conversation import Outcome, converse
from .definitions import AgentSpec, Definitions, Persona, Scenario, Suite
from .tools import ToolAnswerer
from .voice.connector import VoiceConnector
from .voice.conversation import converse_voice
from .voice.tts import Speaker

__all__ = [
    "ConversationResult",
    "PlanItem",
    "RunReport",
    "Scorer",
    "default_scorer",
    "new_run_id",
    "plan",
    "run_suite",
]

Verdict = Literal["passed", "failed", "errored"]
Scorer = Callable[[Call], list[MetricResult]]
"""Scores one finished call (called in a worker thread)."""


def new_run_id() -> str:
    """A run id that sorts by start time and is safe in an external id."""
    return f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class PlanItem:
    """One conversation of a run."""

    scenario: Scenario
    persona: Persona
    iteration: int


def plan(definitions: Definitions, suite: Suite, *, iterations: int | None = None) -> list[PlanItem]:
    """Every conversation of the suite, scenario by persona by iteration."""
    count = iterations if iterations is not None else suite.iterations
    if count < 1:
        raise ValueError(f"iterations must be at least 1, not {count}")
    return [
        PlanItem(definitions.scenarios[s], definitions.personas[p], i)
        for s in suite.scenarios
        for p in suite.personas
        for i in range(1, count + 1)
    ]


def _failures(results: Sequence[MetricResult]) -> list[str]:
    """Why a conversation failed: each failed metric, with the checks that failed for the scenario's."""
    reasons: list[str] = []
    for result in results:
        if result.passed is not False:
            continue
        failed = result.evidence.get("failed") if result.metric == ScenarioChecksMetric.name else None
        if isinstance(failed, list) and failed:
            for check in failed:
                if isinstance(check, dict):
                    reasons.append(f"{result.metric}: {_describe_check(check)}")
        else:
            reasons.append(f"{result.metric} (value {result.value})")
    return reasons


def _describe_check(check: dict[str, JsonValue]) -> str:
    kind = str(check.get("check"))
    if kind in ("required_tool", "forbidden_tool"):
        expected = check.get("expected")
        tool = expected.get("tool") if isinstance(expected, dict) else expected
        return f"{kind} {tool}"
    if kind in ("required_phrase", "forbidden_phrase"):
        return f"{kind} {check.get('phrase')!r}"
    if kind == "end_reason":
        return f"ended {check.get('ended')}, expected {check.get('allowed')}"
    return kind


@dataclass
class ConversationResult:
    """One finished conversation with its scores."""

    item: PlanItem
    outcome: Outcome
    scores: list[MetricResult]

    @property
    def verdict(self) -> Verdict:
        if self.outcome.status == "errored":
            return "errored"
        return "failed" if any(result.passed is False for result in self.scores) else "passed"

    @property
    def reasons(self) -> list[str]:
        if self.outcome.status == "errored":
            return [f"{self.outcome.error_kind}: {self.outcome.error}"]
        return _failures(self.scores)


@dataclass
class Cell:
    """The results of one (scenario, persona) pair."""

    scenario: str
    persona: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def pass_rate(self) -> float | None:
        """Passed over completed (errored conversations say nothing about the agent's behaviour)."""
        completed = self.counts["passed"] + self.counts["failed"]
        return self.counts["passed"] / completed if completed else None


@dataclass
class RunReport:
    """What a run did, kept and comparable: per conversation, per (scenario, persona), and in total."""

    run_id: str
    suite_id: str
    agent_id: str
    agent_version: str
    started_at: datetime
    finished_at: datetime | None = None
    results: list[ConversationResult] = field(default_factory=list)

    def cells(self) -> list[Cell]:
        by_pair: dict[tuple[str, str], Cell] = {}
        for result in self.results:
            key = (result.item.scenario.id, result.item.persona.id)
            by_pair.setdefault(key, Cell(*key)).counts[result.verdict] += 1
        return [by_pair[key] for key in sorted(by_pair)]

    def totals(self) -> Counter[str]:
        return Counter(result.verdict for result in self.results)

    def exit_code(self) -> int:
        """0 when every conversation passed, 2 when any errored, else 1 when any failed."""
        totals = self.totals()
        if totals["errored"]:
            return 2
        return 1 if totals["failed"] else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "suite": self.suite_id,
            "agent": self.agent_id,
            "agent_version": self.agent_version,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "totals": dict(self.totals()),
            "cells": [
                {
                    "scenario": cell.scenario,
                    "persona": cell.persona,
                    **{verdict: cell.counts[verdict] for verdict in ("passed", "failed", "errored")},
                    "pass_rate": cell.pass_rate,
                }
                for cell in self.cells()
            ],
            "conversations": [
                {
                    "call_id": result.outcome.call.id,
                    "external_id": result.outcome.call.external_id,
                    "scenario": result.item.scenario.id,
                    "persona": result.item.persona.id,
                    "iteration": result.item.iteration,
                    "verdict": result.verdict,
                    "reasons": result.reasons,
                    "turns": len(result.outcome.call.turns),
                    "scores": {score.metric: score.passed for score in result.scores},
                }
                for result in self.results
            ],
        }


def default_scorer(
    suite: Suite, *, judge: JudgeClient | None = None, profile: AgentProfile | None = None
) -> Scorer:
    """Scores with the suite's metrics (else the profile's, else the default set) and the scenario checks."""
    chosen = profile or AgentProfile()
    metrics: list[Metric[Any]] = resolve_metrics(
        chosen, judge_available=judge is not None, only=suite.metrics
    )
    if all(metric.name != ScenarioChecksMetric.name for metric in metrics):
        metrics.append(ScenarioChecksMetric())

    def score(call: Call) -> list[MetricResult]:
        scenario = call.metadata.get("scenario")
        context = EvalContext(
            profile=chosen, judge=judge, scenario=scenario if isinstance(scenario, dict) else None
        )
        return evaluate_call(call, metrics, context)

    return score


def _ears_for(work: Sequence[PlanItem], suite: Suite) -> Callable[[Any], str] | None:
    """The caller's ears on a voice call when it needs them (an LLM caller, or a persona that barges in
    at a keyword): the bundled Whisper model (the ``asr`` extra); a clear refusal, before any call, when
    it is not installed."""
    llm = suite.caller == "llm" or (suite.caller == "auto" and any(i.scenario.script is None for i in work))
    keywords = sorted({i.persona.barge_in_keyword for i in work if i.persona.barge_in_keyword})
    if not llm and not keywords:
        return None
    from .voice.stt import SttError, WhisperTranscriber

    try:
        # The keywords prime the recogniser (Whisper's hotwords): tiny.en on the telephone band misses a
        # word said in passing far more often without them.
        whisper = WhisperTranscriber(hotwords=" ".join(keywords) or None)
        whisper.load()
    except SttError as exc:
        why = "an LLM caller" if llm else "a persona that barges in at a keyword"
        raise ValueError(f"{why} on a voice call must hear the agent: {exc}") from None
    return whisper.transcribe


def _with_stored_audio(call: Call, sha: str) -> Call:
    """The call naming its recording's blob (the first, the simulator's stereo file)."""
    recordings = list(call.recordings)
    if recordings:
        recordings[0] = recordings[0].model_copy(update={"uri": blob_uri(sha), "sha256": sha})
    return call.model_copy(update={"recordings": recordings})


async def run_suite(
    definitions: Definitions,
    suite: Suite,
    agent: AgentSpec,
    connector: AnyConnector,
    *,
    scorer: Scorer,
    prepare: Callable[[Call], Call] = lambda call: call,
    llm: JudgeClient | None = None,
    iterations: int | None = None,
    concurrency: int = 32,
    run_id: str | None = None,
    on_result: Callable[[ConversationResult], None] | None = None,
    items: Iterable[PlanItem] | None = None,
    store_audio: Callable[[bytes], str] | None = None,
    transcribe: Callable[[Any], str] | None = None,
    speaker: Speaker | None = None,
) -> RunReport:
    """Run the suite's conversations against ``agent``; ``prepare`` gives each call its stored identity
    before it is scored (so scores name the stored call), ``on_result`` sees each result as it lands.

    A caller that cannot be had (a scenario without a script and no LLM configured) is refused before
    any conversation starts, with the scenario named.

    A voice connector makes every conversation a phone call (:mod:`.voice`): ``transcribe`` is then the
    caller's ears (needed by an LLM caller, optional for a scripted one), ``speaker`` its voice (None:
    espeak-ng), and ``store_audio`` keeps each
    call's stereo recording (returning its blob's sha256) so the call names it and its turn-taking
    analysis can run.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    work = list(items) if items is not None else plan(definitions, suite, iterations=iterations)
    for item in {id(i.scenario): i for i in work}.values():
        caller_for(item.scenario, item.persona, suite.caller, llm)
    report = RunReport(
        run_id=run_id or new_run_id(),
        suite_id=suite.id,
        agent_id=agent.id,
        agent_version=agent.version,
        started_at=datetime.now(UTC),
    )
    if isinstance(connector, VoiceConnector) and transcribe is None:
        transcribe = _ears_for(work, suite)
    gate = asyncio.Semaphore(concurrency)
    tool_client = httpx.AsyncClient(timeout=30.0) if agent.tools_url else None

    async def one(item: PlanItem) -> None:
        async with gate:
            caller = caller_for(item.scenario, item.persona, suite.caller, llm)
            kind = "scripted" if item.scenario.script is not None and suite.caller != "llm" else "llm"
            if isinstance(connector, VoiceConnector):
                outcome = await converse_voice(
                    connector,
                    agent,
                    item.scenario,
                    item.persona,
                    caller,
                    run_id=report.run_id,
                    iteration=item.iteration,
                    caller_kind=kind,
                    transcribe=transcribe,
                    speaker=speaker,
                    seed=zlib.crc32(f"{item.scenario.id}:{item.persona.id}:{item.iteration}".encode()),
                )
            else:
                tools = ToolAnswerer(item.scenario, agent.tools_url, tool_client)
                outcome = await converse(
                    connector,
                    agent,
                    item.scenario,
                    item.persona,
                    caller,
                    tools,
                    run_id=report.run_id,
                    iteration=item.iteration,
                    caller_kind=kind,
                )
        if outcome.audio is not None and store_audio is not None:
            outcome.call = _with_stored_audio(
                outcome.call, await asyncio.to_thread(store_audio, outcome.audio)
            )
        outcome.call = prepare(outcome.call)
        scores = await asyncio.to_thread(scorer, outcome.call)
        result = ConversationResult(item, outcome, scores)
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    try:
        await asyncio.gather(*(one(item) for item in work))
    finally:
        if tool_client is not None:
            await tool_client.aclose()
    report.finished_at = datetime.now(UTC)
    return report
