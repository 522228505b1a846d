"""A voice agent built from real Pipecat parts, with scripted speech services and no network.

The STT, LLM and TTS are Pipecat service subclasses carrying Pipecat's own tracing decorators
(``@traced_stt``, ``@traced_llm``, ``@traced_tts``); each answers from a script after a set delay, so
the spans Pipecat emits carry real time-to-first-byte metrics, token usage, characters and audio
seconds. An exchange with a tool use has the LLM call a function registered with Pipecat's
``register_function``: Pipecat runs it, and its ``LLMAssistantAggregator`` (after the output transport,
where a pipeline puts it) writes the call and its result into the context and runs the LLM again, whose
reply the caller hears. The output transport is Pipecat's own ``BaseOutputTransport`` playing audio
into nothing at real-time pace, so ``BotStartedSpeakingFrame``/``BotStoppedSpeakingFrame`` (which drive
Pipecat's turn tracking and its user-to-bot latency) come from Pipecat itself. The caller's side is what
a VAD and an input transport push: VAD and user speaking frames around raw audio.

It runs as its own process (``python pipecat_agent.py '<AgentRun as JSON>'``), set up for tracing the
way ``docs/integrations/pipecat.md`` tells users, because that is how an agent meets the server: another
process exporting over the network. It also keeps Pipecat's process-wide tracer provider out of the test
process, where the server's own request spans would be exported back to it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.utils.time import time_now_iso8601
from pipecat.utils.tracing.service_decorators import traced_llm, traced_stt, traced_tts
from pipecat.utils.tracing.setup import setup_tracing
from pipecat.workers.runner import WorkerRunner
from pipecat_script import LLM_MODEL, STT_MODEL, TTS_MODEL, AgentRun, Timing

SAMPLE_RATE = 16_000
FLUSH_TIMEOUT_MS = 10_000
CONVERSATION_TIMEOUT_S = 30.0
TTS_STOP_FRAME_TIMEOUT_S = 0.2
"""How long the TTS waits for more audio before it says it stopped (Pipecat's default is 3 s)."""


class ScriptedSTT(SegmentedSTTService):
    """Transcribes each speech segment as the script's next utterance."""

    def __init__(self, run: AgentRun) -> None:
        super().__init__(
            sample_rate=SAMPLE_RATE,
            trailing_silence_secs=run.timing.trailing_silence_s,
            settings=STTSettings(model=STT_MODEL, language=None),
        )
        self._run = run
        self._turn = 0

    def can_generate_metrics(self) -> bool:
        return True

    @traced_stt
    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        await asyncio.sleep(self._run.timing.stt_s)
        text = self._run.exchanges[self._turn].user
        self._turn += 1
        yield TranscriptionFrame(text, "caller", time_now_iso8601())


class TranscriptToContext(FrameProcessor):
    """Adds each final transcript to the conversation and asks the LLM to answer it."""

    def __init__(self, context: LLMContext) -> None:
        super().__init__()
        self._context = context

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and frame.finalized:
            self._context.add_message({"role": "user", "content": frame.text})
            await self.push_frame(LLMContextFrame(self._context))


class ScriptedLLM(LLMService):
    """Streams the script's reply word by word and reports its token usage; an exchange with a tool use
    first asks for the function call, and replies when Pipecat runs the LLM again with its result."""

    def __init__(self, run: AgentRun) -> None:
        super().__init__(settings=_complete_llm_settings())
        self._run = run
        self._turn = 0
        self._called: set[str] = set()
        for tool in {e.tool.name: e.tool for e in run.exchanges if e.tool is not None}.values():
            self.register_function(tool.name, self._answer)

    async def _answer(self, params: FunctionCallParams) -> None:
        """The registered function: the script's result for this call."""
        (tool,) = (e.tool for e in self._run.exchanges if e.tool and e.tool.call_id == params.tool_call_id)
        await params.result_callback(tool.result)

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            await self._process_context(frame.context)
            await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)

    @traced_llm
    async def _process_context(self, context: LLMContext) -> None:
        exchange = self._run.exchanges[self._turn]
        tool = exchange.tool
        await self.start_ttfb_metrics()
        await asyncio.sleep(self._run.timing.llm_s)
        await self.stop_ttfb_metrics()
        if tool is not None and tool.call_id not in self._called:
            self._called.add(tool.call_id)
            await self.start_llm_usage_metrics(
                LLMTokenUsage(
                    prompt_tokens=tool.prompt_tokens,
                    completion_tokens=tool.completion_tokens,
                    total_tokens=tool.prompt_tokens + tool.completion_tokens,
                )
            )
            await self.run_function_calls(
                [FunctionCallFromLLM(tool.name, tool.call_id, dict(tool.arguments), context)]
            )
            return
        self._turn += 1
        for word in exchange.agent.split(" "):
            await self._push_llm_text(f"{word} ")
        await self.start_llm_usage_metrics(
            LLMTokenUsage(
                prompt_tokens=exchange.prompt_tokens,
                completion_tokens=exchange.completion_tokens,
                total_tokens=exchange.prompt_tokens + exchange.completion_tokens,
            )
        )


def _complete_llm_settings() -> LLMSettings:
    """Every LLM setting given (Pipecat logs an error for a setting left out); unsupported ones None."""
    return LLMSettings(
        model=LLM_MODEL,
        system_instruction=None,
        temperature=None,
        max_tokens=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        presence_penalty=None,
        seed=None,
        filter_incomplete_user_turns=False,
        user_turn_completion_config=None,
    )


class ScriptedTTS(TTSService):
    """Speaks each sentence as silence of the scripted length, after the scripted delay."""

    def __init__(self, run: AgentRun) -> None:
        super().__init__(
            sample_rate=SAMPLE_RATE,
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=TTS_STOP_FRAME_TIMEOUT_S,
            settings=TTSSettings(model=TTS_MODEL, voice="scripted-voice", language=None),
        )
        self._run = run

    def can_generate_metrics(self) -> bool:
        return True

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        timing = self._run.timing
        await self.start_tts_usage_metrics(text)
        await asyncio.sleep(timing.tts_s)
        await self.stop_ttfb_metrics()
        # The TTS hears sentences, not replies: a sentence of a reply the caller barges into speaks long.
        barge_in = any(e.barge_in and text.strip() in e.agent for e in self._run.exchanges)
        seconds = timing.barge_in_audio_s if barge_in else timing.reply_audio_s
        chunk = bytes(int(SAMPLE_RATE * timing.chunk_s) * 2)
        for _ in range(round(seconds / timing.chunk_s)):
            yield TTSAudioRawFrame(chunk, SAMPLE_RATE, 1, context_id=context_id)


class LoopbackSpeaker(BaseOutputTransport):
    """Pipecat's output transport, playing into nothing at real-time pace."""

    def __init__(self) -> None:
        super().__init__(
            TransportParams(
                audio_out_enabled=True,
                audio_out_sample_rate=SAMPLE_RATE,
                audio_out_end_silence_secs=0,  # no one hears the tail: no closing silence to play
            )
        )

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await asyncio.sleep(len(frame.audio) / (2 * frame.sample_rate * frame.num_channels))
        return True


class SpeechWatch(BaseObserver):
    """Counts the agent's replies started and finished, so the caller's side can wait for either."""

    def __init__(self) -> None:
        super().__init__()
        self.speaking = False
        self.started = 0
        self.finished = 0
        self._changed = asyncio.Event()

    async def on_push_frame(self, data: FramePushed) -> None:
        # Pipecat pushes each speaking frame both ways; only a change of state counts.
        if isinstance(data.frame, BotStartedSpeakingFrame) and not self.speaking:
            self.speaking = True
            self.started += 1
        elif isinstance(data.frame, BotStoppedSpeakingFrame) and self.speaking:
            self.speaking = False
            self.finished += 1
        else:
            return
        self._changed.set()

    async def until(self, *, started: int = 0, finished: int = 0) -> None:
        """Wait until at least ``started`` replies have started and ``finished`` have finished."""
        while self.started < started or self.finished < finished:
            self._changed.clear()
            await self._changed.wait()


async def _speak(worker: PipelineWorker, timing: Timing, *, barge_in: bool) -> None:
    """What a VAD and an input transport push for one utterance (and the interruption Pipecat's user
    turn strategy broadcasts when the caller speaks over the agent)."""
    if barge_in:
        await worker.queue_frame(InterruptionFrame())
    await worker.queue_frame(
        VADUserStartedSpeakingFrame(start_secs=timing.vad_start_s, timestamp=time.time())
    )
    await worker.queue_frame(UserStartedSpeakingFrame())
    chunk = bytes(int(SAMPLE_RATE * timing.chunk_s) * 2)
    for _ in range(round(timing.speech_s / timing.chunk_s)):
        await worker.queue_frame(InputAudioRawFrame(chunk, SAMPLE_RATE, 1))
    await worker.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=timing.vad_stop_s, timestamp=time.time()))
    await worker.queue_frame(UserStoppedSpeakingFrame())


async def run_conversation(run: AgentRun, *, timeout_s: float = CONVERSATION_TIMEOUT_S) -> None:
    """Run one traced conversation through a Pipecat pipeline until its ``EndFrame``."""
    context = LLMContext()
    pipeline = Pipeline(
        [
            ScriptedSTT(run),
            TranscriptToContext(context),
            ScriptedLLM(run),
            ScriptedTTS(run),
            LoopbackSpeaker(),
            LLMAssistantAggregator(context),
        ]
    )
    watch = SpeechWatch()
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            enable_metrics=True, audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE
        ),
        enable_tracing=True,
        enable_turn_tracking=True,
        conversation_id=run.conversation_id,
        additional_span_attributes=dict(run.span_attributes),
        observers=[watch],
        idle_timeout_secs=None,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _on_started(_worker: PipelineWorker, _frame: StartFrame) -> None:
        started.set()

    async def caller() -> None:
        timing = run.timing
        await started.wait()
        await asyncio.sleep(timing.first_speech_after_s)
        barge_in = False
        for replies, exchange in enumerate(run.exchanges, start=1):
            await _speak(worker, timing, barge_in=barge_in)
            await watch.until(started=replies)
            barge_in = exchange.barge_in
            if barge_in:
                await asyncio.sleep(timing.barge_in_after_s)
            else:
                await watch.until(finished=replies)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), caller()), timeout_s)


def main(argv: list[str]) -> None:
    """Set tracing up as the integration guide says, run the conversation, flush every span."""
    run = AgentRun.from_json(json.loads(argv[1]))
    exporter = OTLPSpanExporter(endpoint=run.endpoint, headers={"Authorization": f"Bearer {run.api_key}"})
    if not setup_tracing(service_name=run.service_name, exporter=exporter):
        sys.exit("Pipecat could not set tracing up")
    asyncio.run(run_conversation(run))
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider) or not provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MS):
        sys.exit("the spans were not flushed")


if __name__ == "__main__":
    main(sys.argv)
