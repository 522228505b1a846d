"""A scripted voice suite against a real Pipecat pipeline (FastAPIWebsocketTransport + TwilioFrameSerializer).

The simulator plays Twilio to a framework nobody in the project wrote: the run must complete, the call's
transcript must follow the script in time order, the recording must be stored and carry both parties on
their channels, and the audio analysis of it must find the bot answering each caller line after a gap
that matches how Pipecat ends a user turn (a VAD stop plus its speech timeout, about a second).
"""

from __future__ import annotations

import asyncio
import hashlib

from convoscope.audio.load import load_recording
from convoscope.audio.report import analyze_audio
from convoscope.model import EndReason, Role
from convoscope.simulate.connectors.registry import connector_from_config
from convoscope.simulate.definitions import AgentSpec, Definitions, Scenario, Script, Suite
from convoscope.simulate.runner import RunReport, run_suite

from .pipecat_agent import serve_pipecat_agent

BOT = ["Hello, this is the dental clinic.", "Sure, which day suits you?", "Booked for Tuesday. Goodbye."]


def _run(url: str, blobs: dict[str, bytes]) -> RunReport:
    scenario = Scenario(
        id="book",
        goal="Book a dental appointment",
        script=Script(lines=["I would like to book a checkup.", "Tuesday morning, please."], closing=None),
    )
    suite = Suite(id="voice", scenarios=["book"], metrics=[])
    definitions = Definitions(scenarios={"book": scenario}, suites={"voice": suite})
    agent = AgentSpec(id="pipecat-bot", connector={"kind": "twilio", "url": url})
    connector = connector_from_config("twilio", {"url": url})

    def store(data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        return sha

    return asyncio.run(
        run_suite(definitions, suite, agent, connector, scorer=lambda call: [], store_audio=store)
    )


def test_a_scripted_suite_completes_against_a_real_pipecat_pipeline() -> None:
    blobs: dict[str, bytes] = {}
    with serve_pipecat_agent(BOT, audio_out_10ms_chunks=2) as url:
        report = _run(url, blobs)
    (result,) = report.results
    assert result.verdict == "passed", result.reasons
    call = result.outcome.call
    # After the bot's goodbye either side may hang up first: the caller (its script is done) once the
    # line has been silent for its end-of-turn time, or Pipecat after its closing burst of silence.
    assert call.end_reason in (EndReason.AGENT_HANGUP, EndReason.USER_HANGUP)
    roles = [turn.role for turn in call.turns]
    assert roles == [Role.AGENT, Role.USER, Role.AGENT, Role.USER, Role.AGENT]
    assert [t.text for t in call.turns if t.role == Role.USER] == [
        "I would like to book a checkup.",
        "Tuesday morning, please.",
    ]
    starts = [turn.start_s for turn in call.turns]
    assert starts == sorted(starts)
    (recording,) = call.recordings
    assert recording.uri == f"blob:{recording.sha256}" and recording.sha256 in blobs
    assert recording.channel_map == {0: Role.USER, 1: Role.AGENT}
    voice = call.metadata["voice"]
    # Pipecat runs in this process (its loop in a thread), so the pacing figure here measures the two
    # sharing one interpreter; the simulator's own pacing is checked alone elsewhere. Every frame was sent.
    assert abs(voice["pacing"]["frames"] - round(recording.duration_s / 0.02)) <= 1
    truth = voice["truth"]["utterances"]
    assert [u["kind"] for u in truth] == ["line", "line"]

    audio = load_recording(blobs[recording.sha256], channel_map={0: Role.USER, 1: Role.AGENT})
    events = analyze_audio(audio, call_id="pipecat").events
    assert events is not None
    gaps = [g.interval[1] - g.interval[0] for g in events.gaps if g.from_role == Role.USER]
    assert len(gaps) == 2
    # Pipecat answers after its VAD stop (0.2 s) and speech timeout (0.6 s), plus the espeak render.
    assert all(0.7 < gap < 2.0 for gap in gaps), gaps
    # The analysis finds each caller line where the simulator says it spoke (within 30 ms).
    user_segments = [s for s in events.turns[Role.USER]]
    for utterance in truth:
        assert any(abs(s[0] - utterance["start_s"]) < 0.03 for s in user_segments), (utterance, user_segments)
