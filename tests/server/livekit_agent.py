"""A LiveKit Agents session built from the framework's own parts, with a scripted LLM and no network.

``AgentSession`` runs a real ``Agent`` with a ``function_tool``; the LLM is a ``livekit.agents.llm.LLM``
subclass that streams the script's chunks (a tool call, then the reply that follows the tool's output),
so LiveKit's own tracing emits every span (``agent_session``, ``agent_turn``, ``llm_node``,
``llm_request``, ``function_tool``...). Each user line goes in through ``AgentSession.run``, which is how
LiveKit tests an agent without a room. The session runs inside LiveKit's ``fake_job_context`` (a real
``JobContext`` with a job id and a room sid, as a worker gives each job) unless the script says it runs
outside any job, as a console or test run does.

It runs as its own process (``python livekit_agent.py '<LiveKitRun as JSON>'``), set up for tracing the
way ``docs/integrations/livekit.md`` tells users, and exports over OTLP/HTTP to the server.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from livekit.agents import Agent, AgentSession, RunContext, function_tool, llm
from livekit.agents.telemetry import set_tracer_provider
from livekit.agents.testing import fake_job_context
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit_script import LLM_MODEL, LiveKitRun, Step
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

FLUSH_TIMEOUT_MS = 10_000


class ScriptedStream(llm.LLMStream):
    """One LLM request: the step's tool call or its reply, streamed word by word, then its usage."""

    def __init__(
        self,
        model: ScriptedLLM,
        step: Step,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[Any],
        conn: APIConnectOptions,
    ) -> None:
        super().__init__(model, chat_ctx=chat_ctx, tools=tools, conn_options=conn)
        self._step = step

    async def _run(self) -> None:
        await asyncio.sleep(self._step.delay_s)
        if self._step.tool is not None:
            call = llm.FunctionToolCall(
                call_id=self._step.tool.call_id,
                name=self._step.tool.name,
                arguments=json.dumps(self._step.tool.arguments),
            )
            self._event_ch.send_nowait(
                llm.ChatChunk(id=self._step.id, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))
            )
        for word in self._step.text.split(" ") if self._step.text else ():
            self._event_ch.send_nowait(
                llm.ChatChunk(id=self._step.id, delta=llm.ChoiceDelta(role="assistant", content=f"{word} "))
            )
        self._event_ch.send_nowait(
            llm.ChatChunk(
                id=self._step.id,
                usage=llm.CompletionUsage(
                    prompt_tokens=self._step.prompt_tokens,
                    completion_tokens=self._step.completion_tokens,
                    total_tokens=self._step.prompt_tokens + self._step.completion_tokens,
                ),
            )
        )


class ScriptedLLM(llm.LLM):
    """Answers each request with the script's next step."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self._steps = list(steps)

    @property
    def model(self) -> str:
        return LLM_MODEL

    @property
    def provider(self) -> str:
        return "scripted"

    def chat(  # type: ignore[override]
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[Any] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> ScriptedStream:
        return ScriptedStream(
            self, self._steps.pop(0), chat_ctx=chat_ctx, tools=tools or [], conn=conn_options
        )


class Support(Agent):
    """A support agent with one tool, whose answers come from the script."""

    def __init__(self, run: LiveKitRun) -> None:
        super().__init__(instructions="You help travellers with their bookings.")
        self._results = {s.tool.call_id: s.tool.result for e in run.exchanges for s in e.steps if s.tool}

    @function_tool
    async def lookup_booking(self, context: RunContext, city: str, day: str) -> str:
        """Find the caller's booking to a city on a day."""
        call_id = context.function_call.call_id
        return self._results[call_id]


async def converse(run: LiveKitRun) -> None:
    """Run every exchange through one session and close it."""
    steps = [s for e in run.exchanges for s in e.steps]
    job: AbstractContextManager[Any] = (
        fake_job_context(job_id=run.job_id) if run.job_id is not None else nullcontext()
    )
    with job:
        session: AgentSession[None] = AgentSession(llm=ScriptedLLM(steps))
        await session.start(Support(run))
        for exchange in run.exchanges:
            await session.run(user_input=exchange.user)
        await session.aclose()


def main(argv: list[str]) -> None:
    """Set tracing up as the integration guide says, run the session, flush every span."""
    run = LiveKitRun.from_json(json.loads(argv[1]))
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: run.service_name}))
    exporter = OTLPSpanExporter(endpoint=run.endpoint, headers={"Authorization": f"Bearer {run.api_key}"})
    provider.add_span_processor(BatchSpanProcessor(exporter))
    set_tracer_provider(provider)
    asyncio.run(converse(run))
    if not provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MS):
        sys.exit("the spans were not flushed")


if __name__ == "__main__":
    main(sys.argv)
