"""A voice agent built on a real Pipecat pipeline behind Pipecat's Twilio Media Streams WebSocket, for
the voice simulator's end-to-end tests.

The simulator plays the telephone network, so it must be proved against an agent framework the project
did not write. This is the shape of a Pipecat phone bot as Pipecat's own Twilio examples build it:
``parse_telephony_websocket`` reads Twilio's ``connected`` and ``start`` messages, and the pipeline is
``FastAPIWebsocketTransport`` (``TwilioFrameSerializer``) in, STT, the user context aggregator (which
runs Silero VAD, decides the user's turns and broadcasts interruptions), LLM, TTS, the transport out,
the assistant aggregator. Only the three services are scripted, as Pipecat service subclasses so
Pipecat's own base classes do what a cloud service's would:

* the STT is a ``SegmentedSTTService``: when Pipecat's VAD says the caller stopped speaking it
  transcribes the segment as ``caller turn N``;
* the LLM answers every run with the next of ``lines``; the first run is the greeting the bot speaks
  when the caller connects, and after the last line it ends the call the way a Pipecat bot hangs up
  (an ``EndWorkerFrame`` behind its reply, so the reply is played before the socket closes);
* the TTS speaks with espeak-ng (:func:`convoscope.simulate.voice.speech.render_speech`), and
  Pipecat's ``TTSService`` brackets the audio with ``TTSStartedFrame``/``TTSStoppedFrame``.

So the pacing of the bot's audio, its ``media`` and ``clear`` messages, and the closing of the socket
all come from Pipecat. Nothing leaves the machine: the serializer's auto hang-up (a POST to Twilio's
REST API on ``EndFrame``) is turned off, and Silero's model ships inside the pipecat package.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import contextmanager

from fastapi import FastAPI, WebSocket

from convoscope.demo.agent.loopback import LoopbackServer
from convoscope.simulate.voice.codec import SAMPLE_RATE
from convoscope.simulate.voice.speech import VoiceSpec, render_speech

with warnings.catch_warnings():
    # Importing Pipecat warns of deprecations inside Pipecat (its use of audioop, classes it defines on
    # deprecated ones), and the suite fails on warnings; those are Pipecat's to act on.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import (
        EndWorkerFrame,
        Frame,
        LLMContextFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMRunFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.llm_service import LLMService
    from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
    from pipecat.services.stt_service import SegmentedSTTService
    from pipecat.services.tts_service import TTSService
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
    from pipecat.turns.user_start import VADUserTurnStartStrategy
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.utils.time import time_now_iso8601
    from pipecat.workers.runner import WorkerRunner

__all__ = ["BOT_VOICE", "PATH", "TWILIO_RATE", "create_app", "run_call", "serve_pipecat_agent"]

PATH = "/twilio"
"""Where the agent takes Twilio media streams."""
TWILIO_RATE = SAMPLE_RATE
"""The pipeline runs at the telephone rate, as Pipecat's Twilio examples set it."""
BOT_VOICE = VoiceSpec(voice="en-gb", pitch=40)
"""The bot sounds unlike the default caller voice, so the two are never confused in a recording."""
TTFS_P99_S = 0.3
"""The scripted STT's latency from the end of speech to its transcript, as Pipecat asks STTs to state."""
TTS_STOP_FRAME_TIMEOUT_S = 0.3
"""How long the TTS waits for more text before it says it stopped (Pipecat's default is 3 s)."""


class ScriptedSTT(SegmentedSTTService):
    """Transcribes each speech segment Pipecat's VAD cuts as ``caller turn N`` (N from 1)."""

    def __init__(self) -> None:
        super().__init__(
            # It answers at once; Pipecat's turn detection waits this long for a transcript at most.
            ttfs_p99_latency=TTFS_P99_S,
            settings=STTSettings(model="scripted-stt", language=None),
        )
        self._transcripts = 0

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        self._transcripts += 1
        yield TranscriptionFrame(f"caller turn {self._transcripts}", "caller", time_now_iso8601())


class ScriptedLLM(LLMService):
    """Answers each run of the LLM with the next line; after the last one, ends the call."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__(
            settings=LLMSettings(
                # Every setting is given: Pipecat logs an error for a setting left out.
                model="scripted-llm",
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
        )
        self._lines = list(lines)
        self._line = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        if self._line >= len(self._lines):
            return  # the call is ending; a turn squeezed in before the end gets no answer
        line = self._lines[self._line]
        self._line += 1
        await self.push_frame(LLMFullResponseStartFrame())
        await self._push_llm_text(line)
        await self.push_frame(LLMFullResponseEndFrame())
        if self._line == len(self._lines):
            # Downstream, behind the reply: the worker ends the pipeline once the reply has played.
            await self.push_frame(EndWorkerFrame(reason="the script is done"))


class EspeakTTS(TTSService):
    """Speaks with espeak-ng in chunks, as a streaming TTS sends them.

    espeak-ng renders at the telephone rate; should the pipeline run at another, Pipecat's output
    transport resamples, as it does for any TTS whose rate differs from the transport's.
    """

    def __init__(self, voice: VoiceSpec = BOT_VOICE) -> None:
        super().__init__(
            sample_rate=SAMPLE_RATE,
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=TTS_STOP_FRAME_TIMEOUT_S,
            settings=TTSSettings(model="espeak-ng", voice=voice.voice, language=None),
        )
        self._espeak_voice = voice

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        # espeak-ng is a subprocess: off the event loop, which paces the audio going out.
        audio = (await asyncio.to_thread(render_speech, text, self._espeak_voice)).tobytes()
        step = self.chunk_size
        for start in range(0, len(audio), step):
            yield TTSAudioRawFrame(audio[start : start + step], SAMPLE_RATE, 1, context_id=context_id)


async def run_call(websocket: WebSocket, lines: Sequence[str], *, audio_out_10ms_chunks: int = 4) -> None:
    """One phone call: Pipecat's Twilio handshake parsing, transport and pipeline, until either side
    ends it (the script runs out, or the caller hangs up)."""
    transport_type, call_data = await parse_telephony_websocket(websocket)
    if transport_type != "twilio" or not call_data.stream_id:
        await websocket.close(code=1008, reason="not a Twilio media stream")
        return
    serializer = TwilioFrameSerializer(
        stream_sid=call_data.stream_id,
        call_sid=call_data.call_id,
        # Without this the serializer demands Twilio credentials and, on EndFrame, POSTs to Twilio's
        # REST API to hang the call up; here closing the socket is the hang-up.
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            audio_out_10ms_chunks=audio_out_10ms_chunks,
            serializer=serializer,
        ),
    )
    context = LLMContext()
    user, assistant = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            # In Pipecat 1.x the VAD runs in the user aggregator: the transport params no longer take a
            # vad_analyzer (pydantic drops one passed there without a word, and no turn is ever heard).
            vad_analyzer=SileroVADAnalyzer(),
            # The default stop strategy runs the smart-turn model; a silence timeout after Pipecat's VAD
            # is deterministic for scripted speech and needs no model.
            user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy()], stop=[SpeechTimeoutUserTurnStopStrategy()]
            ),
        ),
    )
    services = [ScriptedSTT(), user, ScriptedLLM(lines), EspeakTTS()]
    pipeline = Pipeline([transport.input(), *services, transport.output(), assistant])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=TWILIO_RATE, audio_out_sample_rate=TWILIO_RATE),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )

    async def greet(_transport: FastAPIWebsocketTransport, _websocket: WebSocket) -> None:
        await worker.queue_frames([LLMRunFrame()])

    async def hung_up(_transport: FastAPIWebsocketTransport, _websocket: WebSocket) -> None:
        await worker.cancel(reason="the caller hung up")

    transport.add_event_handler("on_client_connected", greet)
    transport.add_event_handler("on_client_disconnected", hung_up)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def create_app(lines: Sequence[str], *, audio_out_10ms_chunks: int = 4) -> FastAPI:
    """The agent's app: a Twilio media stream WebSocket at :data:`PATH`, one Pipecat pipeline per
    connection, each saying ``lines`` (the first is the greeting) and hanging up after the last.

    ``audio_out_10ms_chunks`` is Pipecat's output chunking (its default, 4, sends 40 ms ``media``
    messages); 2 makes the 20 ms frames Twilio itself sends.
    """
    if not lines:
        raise ValueError("the agent needs at least a greeting")
    script = list(lines)
    app = FastAPI()

    @app.websocket(PATH)
    async def twilio(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_call(websocket, script, audio_out_10ms_chunks=audio_out_10ms_chunks)

    return app


@contextmanager
def serve_pipecat_agent(lines: Sequence[str], *, audio_out_10ms_chunks: int = 4) -> Iterator[str]:
    """Serve :func:`create_app` on loopback; yields the ``ws://`` URL to point a Twilio stream at."""
    with LoopbackServer(
        create_app(lines, audio_out_10ms_chunks=audio_out_10ms_chunks), name="pipecat-agent"
    ) as server:
        yield f"ws://{server.host}:{server.port}{PATH}"
