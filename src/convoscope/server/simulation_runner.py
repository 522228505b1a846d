"""Simulation runs the server executes itself: started over the API, followed live, kept when done.

``convoscope simulate`` runs a suite where it is started; a team whose agent the server can reach can
instead keep its definitions on the server and start a run there (``POST /simulation/runs:start``). Each
run is one asyncio task on the server's event loop, owned by :class:`SimulationRunner`: the conversations
are held by :func:`~convoscope.simulate.runner.run_suite` (network waits on the loop, scoring in worker
threads), every finished conversation's call is stored through ``Services.store_calls`` in batches (so
the evaluation job scores it like any other call), and the run's result is kept in ``simulation_runs``
from the start with ``status: running`` and rewritten at most once a second, so ``GET
/simulation/runs/{id}`` shows the counts so far, then ``done`` or ``failed``.

Followers (the progress WebSocket) get one message per stored conversation, in the order they were
stored, then a ``done`` message; one that arrives late first gets every message already sent. A run
that is not live in this process (finished, or executed by another server process over the same
database) is followed from its kept result instead.

The server opens connections to the agent's URL as its definition names it (and to ``tools_url`` for
tool calls passed through): whoever may write agent definitions in a project can make the server
connect to any address it can reach, so the API key of such a project is as sensitive as the network
position of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from ..errors import InputError, NotFound, PayloadError
from ..evals.llm import JudgeClient, JudgeConfig
from ..model import Call
from ..simulate.callers import caller_for
from ..simulate.connectors.registry import connector_from_config
from ..simulate.definitions import BUILTIN_PERSONAS, AgentSpec, Definitions, Persona, Scenario, Suite
from ..simulate.results import MAX_CONVERSATIONS, RunStatus
from ..simulate.runner import (
    ConversationResult,
    PlanItem,
    RunReport,
    default_scorer,
    new_run_id,
    plan,
    run_suite,
)
from ..simulate.voice.io import voice_io
from ..store.metadata import MetadataStore
from .worker import assign_identity

if TYPE_CHECKING:
    from .services import Services

__all__ = ["MAX_CONCURRENCY", "MAX_LIVE_RUNS", "LiveRun", "SimulationRunner", "TooManyRuns"]

log = logging.getLogger("convoscope.server.simulation")

_M = TypeVar("_M", bound=BaseModel)

MAX_CONCURRENCY = 1_000
"""The most conversations one run holds at once: each is a connection to the agent from this server."""
MAX_LIVE_RUNS = 8
"""The most runs one server executes at once; a further start is refused (429) until one finishes."""
STORE_BATCH = 500
"""Calls stored per ``store_calls`` (each is a columnar insert and a queue commit)."""
SAVE_EVERY_S = 1.0
"""How often a running run's kept result is rewritten (the whole report is one JSON document)."""
FOLLOW_POLL_S = 1.0
"""How often a follower of a run live elsewhere reads its kept result again."""
FOLLOW_IDLE_S = 600.0
"""A run live elsewhere whose kept result has not changed for this long is given up on (its server may
have died): the follower gets ``done`` with ``status: unknown``."""


class TooManyRuns(InputError):
    """The server already executes ``MAX_LIVE_RUNS`` runs."""


@dataclass
class LiveRun:
    """One run this process executes: what it produced so far, and a wake-up for its followers."""

    run_id: str
    project_id: str
    suite: Suite
    agent: AgentSpec
    planned: int
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    results: list[ConversationResult] = field(default_factory=list)
    """Stored conversations, in the order their calls were stored."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    status: RunStatus = "running"
    error: str | None = None
    finished_at: datetime | None = None
    task: asyncio.Task[None] | None = None
    ended: bool = False
    """The ``done`` message is published: followers stop after it (``status`` is set a moment before)."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def report(self) -> dict[str, Any]:
        """The run's result as kept (``RunResult``): the conversations stored so far and the status."""
        report = RunReport(
            run_id=self.run_id,
            suite_id=self.suite.id,
            agent_id=self.agent.id,
            agent_version=self.agent.version,
            started_at=self.started_at,
            finished_at=self.finished_at,
            results=list(self.results),
        )
        return {**report.to_json(), "status": self.status, "error": self.error, "planned": self.planned}

    def publish(self, message: dict[str, Any], *, last: bool = False) -> None:
        """Send a message to every follower (those waiting now, and later ones from the start)."""
        self.messages.append(message)
        self.ended = self.ended or last
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def finished(self) -> bool:
        return self.status != "running"

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every message from the first, then each as it is published, until ``done``."""
        sent = 0
        while True:
            changed = self._changed
            while sent < len(self.messages):
                sent += 1
                yield self.messages[sent - 1]
            if self.ended:
                return
            await changed.wait()


def conversation_message(result: ConversationResult) -> dict[str, Any]:
    """What a follower is told about one finished conversation."""
    return {
        "type": "conversation",
        "call_id": result.outcome.call.id,
        "external_id": result.outcome.call.external_id,
        "scenario": result.item.scenario.id,
        "persona": result.item.persona.id,
        "iteration": result.item.iteration,
        "verdict": result.verdict,
        "reasons": result.reasons,
    }


def _totals(results: Sequence[ConversationResult]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "errored": 0}
    for result in results:
        counts[result.verdict] += 1
    return counts


def _done_message(status: str, totals: dict[str, int], error: str | None) -> dict[str, Any]:
    return {"type": "done", "status": status, "totals": totals, "error": error}


@dataclass(frozen=True)
class Prepared:
    """A run checked and ready to start: everything it needs, resolved from the project's definitions."""

    definitions: Definitions
    suite: Suite
    agent: AgentSpec
    items: list[PlanItem]


class SimulationRunner:
    """Starts runs, owns their tasks and their followers' state; one per server process."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._runs: dict[str, LiveRun] = {}

    @property
    def meta(self) -> MetadataStore:
        return self._services.meta

    def live(self, run_id: str) -> LiveRun | None:
        """The run if this process is executing it now."""
        return self._runs.get(run_id)

    # Preparing (in a worker thread: reads the metadata database) --------------------------------------

    def prepare(self, project_id: str, suite_id: str, agent_id: str, iterations: int | None) -> Prepared:
        """The suite, the agent and every definition they name, read and validated; the conversations.

        An unknown suite or agent is :class:`NotFound`; a suite naming a scenario or persona that is not
        kept (any more) is a :class:`PayloadError` (422) naming it, as is a run too large to keep.
        """
        suite = self._one(project_id, "suite", suite_id, Suite)
        agent = self._one(project_id, "agent", agent_id, AgentSpec)
        scenarios = {
            stored.id: Scenario.model_validate(stored.body)
            for stored in self.meta.list_definitions(project_id, "scenario", ids=suite.scenarios)
        }
        personas: dict[str, Persona] = {
            **{p: BUILTIN_PERSONAS[p] for p in suite.personas if p in BUILTIN_PERSONAS},
            **{
                stored.id: Persona.model_validate(stored.body)
                for stored in self.meta.list_definitions(project_id, "persona", ids=suite.personas)
            },
        }
        missing = [f"scenario {s!r}" for s in suite.scenarios if s not in scenarios] + [
            f"persona {p!r}" for p in suite.personas if p not in personas
        ]
        if missing:
            raise PayloadError(f"suite {suite.id!r} names {', '.join(missing)}, not kept in this project")
        definitions = Definitions(
            scenarios=scenarios, personas=personas, suites={suite.id: suite}, agents={agent.id: agent}
        )
        items = plan(definitions, suite, iterations=iterations)
        if len(items) > MAX_CONVERSATIONS:
            raise PayloadError(
                f"the run would hold {len(items)} conversations; a kept run holds at most {MAX_CONVERSATIONS}"
            )
        return Prepared(definitions, suite, agent, items)

    def _one(self, project_id: str, kind: str, ident: str, model: type[_M]) -> _M:
        stored = self.meta.get_definition(project_id, kind, ident)
        if stored is None:
            raise NotFound(f"{kind} {ident!r} not found in this project")
        return model.model_validate(stored.body)

    # Starting (on the event loop) ----------------------------------------------------------------------

    async def start(self, project_id: str, prepared: Prepared, *, concurrency: int) -> LiveRun:
        """Start the run as a task on the running loop; its result is kept (``running``) before this returns.

        Refused before anything runs: more than ``MAX_LIVE_RUNS`` runs at once, a scenario whose caller
        cannot be had (no script and no LLM configured), an agent whose connector settings are wrong.
        """
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise PayloadError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}")
        if sum(not run.finished for run in self._runs.values()) >= MAX_LIVE_RUNS:
            raise TooManyRuns(
                f"this server already executes {MAX_LIVE_RUNS} runs; start again when one finishes"
            )
        settings = self._services.settings
        config = JudgeConfig.from_settings(settings)
        llm = JudgeClient(config) if config is not None else None
        try:
            for item in {id(i.scenario): i for i in prepared.items}.values():
                try:
                    caller_for(item.scenario, item.persona, prepared.suite.caller, llm)
                except ValueError as exc:
                    raise PayloadError(str(exc)) from None
            spec = prepared.agent.connector
            try:
                connector = connector_from_config(spec.kind, spec.settings())
            except InputError as exc:
                raise PayloadError(f"agent {prepared.agent.id!r}: {exc}") from None
        except BaseException:
            if llm is not None:
                llm.close()
            raise
        run = LiveRun(new_run_id(), project_id, prepared.suite, prepared.agent, len(prepared.items))
        try:
            await asyncio.to_thread(self.meta.save_run, project_id, run.report())
        except BaseException:
            await connector.aclose()
            if llm is not None:
                llm.close()
            raise
        self._runs[run.run_id] = run
        run.task = asyncio.create_task(self._execute(run, prepared, connector, llm, concurrency))
        return run

    async def _execute(
        self, run: LiveRun, prepared: Prepared, connector: Any, llm: JudgeClient | None, concurrency: int
    ) -> None:
        """Hold the conversations, store each batch of calls as it lands, keep the result at the end."""
        landed: asyncio.Queue[ConversationResult | None] = asyncio.Queue()
        storing = asyncio.create_task(self._store_landed(run, landed))
        project_id = run.project_id

        def prepare_call(call: Call) -> Call:
            # As it will be stored (redacted where the project says so): the scorer sees what is stored.
            return self._services.redaction.calls(project_id, [assign_identity(project_id, call)])[0]

        conversations = asyncio.create_task(
            run_suite(
                prepared.definitions,
                prepared.suite,
                prepared.agent,
                connector,
                scorer=default_scorer(prepared.suite, judge=llm),
                prepare=prepare_call,
                llm=llm,
                concurrency=concurrency,
                run_id=run.run_id,
                on_result=landed.put_nowait,
                items=prepared.items,
                store_audio=self._services.blobs.put,
                **voice_io(self._services.settings),
            )
        )
        try:
            await asyncio.wait({conversations, storing}, return_when=asyncio.FIRST_COMPLETED)
            if storing.done():  # it ends early only when storing failed (a store down): stop talking too
                conversations.cancel()
                with contextlib.suppress(BaseException):
                    await conversations
                await storing
            else:
                failure: Exception | None = None
                try:
                    await conversations
                except Exception as exc:  # what landed before is still stored and kept
                    failure = exc
                landed.put_nowait(None)
                await storing
                if failure is not None:
                    raise failure
            run.status = "done"
        except asyncio.CancelledError:
            run.status, run.error = "failed", "interrupted: the server stopped before the run finished"
            conversations.cancel()
            storing.cancel()
            raise
        except Exception as exc:
            log.exception("simulation run %s failed", run.run_id)
            run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
            conversations.cancel()
            storing.cancel()
        finally:
            run.finished_at = datetime.now(UTC)
            await self._close(connector, llm)
            self._finish(run)

    async def _store_landed(self, run: LiveRun, landed: asyncio.Queue[ConversationResult | None]) -> None:
        """Store the calls of finished conversations in batches, then tell the followers about them."""
        saved_at = time.monotonic()
        while True:
            first = await landed.get()
            if first is None:
                return
            batch = [first]
            end = False
            while len(batch) < STORE_BATCH and not landed.empty():
                more = landed.get_nowait()
                if more is None:
                    end = True
                    break
                batch.append(more)
            await asyncio.to_thread(
                self._services.store_calls, run.project_id, [r.outcome.call for r in batch]
            )
            for result in batch:
                run.results.append(result)
                run.publish(conversation_message(result))
            if end:
                return
            if time.monotonic() - saved_at >= SAVE_EVERY_S:
                await asyncio.to_thread(self.meta.save_run, run.project_id, run.report())
                saved_at = time.monotonic()

    @staticmethod
    async def _close(connector: Any, llm: JudgeClient | None) -> None:
        with contextlib.suppress(Exception):
            await connector.aclose()
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.close()

    def _finish(self, run: LiveRun) -> None:
        """Keep the final result (synchronously: this also runs while the loop shuts down) and say done."""
        try:
            self.meta.save_run(run.project_id, run.report())
        except Exception as exc:  # the followers still learn how the run ended
            log.exception("simulation run %s: its result could not be kept", run.run_id)
            run.error = run.error or f"the run's result could not be kept: {exc}"
            run.status = "failed"
        run.publish(_done_message(run.status, _totals(run.results), run.error), last=True)
        # Its followers hold it still; later ones read the kept result, so memory stays bounded by live runs.
        self._runs.pop(run.run_id, None)

    # Following ------------------------------------------------------------------------------------------

    async def follow(self, project_id: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
        """The run's progress messages from the first, live or from its kept result; NotFound if none."""
        run = self._runs.get(run_id)
        if run is not None and run.project_id == project_id:
            async for message in run.follow():
                yield message
            return
        async for message in self._follow_kept(project_id, run_id):
            yield message

    async def _follow_kept(self, project_id: str, run_id: str) -> AsyncIterator[dict[str, Any]]:
        """A run not live here: its kept conversations, read again while another process runs it."""
        sent = 0
        last_change = time.monotonic()
        first = True
        while True:
            kept = await asyncio.to_thread(self.meta.get_run, project_id, run_id)
            if kept is None:
                if first:
                    raise NotFound(f"run {run_id} not found")
                return
            first = False
            conversations = list(kept.get("conversations") or [])
            if len(conversations) > sent:
                last_change = time.monotonic()
            for conversation in conversations[sent:]:
                yield {"type": "conversation", **_message_fields(conversation)}
            sent = max(sent, len(conversations))
            status = kept.get("status") or "done"
            totals = {k: int(v) for k, v in dict(kept.get("totals") or {}).items()}
            if status != "running":
                yield _done_message(str(status), {**_totals([]), **totals}, kept.get("error"))
                return
            if time.monotonic() - last_change > FOLLOW_IDLE_S:
                yield _done_message(
                    "unknown", {**_totals([]), **totals}, "the run's server stopped reporting"
                )
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def aclose(self) -> None:
        """Cancel every live run (each keeps its result as ``failed``, interrupted)."""
        tasks = [run.task for run in self._runs.values() if run.task is not None and not run.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _message_fields(conversation: dict[str, Any]) -> dict[str, Any]:
    keys = ("call_id", "external_id", "scenario", "persona", "iteration", "verdict", "reasons")
    return {key: conversation.get(key) for key in keys}
