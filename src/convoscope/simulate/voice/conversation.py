"""One voice conversation of a suite: persona → line conditions, the call, then an ordinary ``Call``.

The call's transcript is the caller's lines with their true times, and the agent's turns as the caller
heard them (their text from the caller's ears when it has them, else empty: the audio analysis and
audio-based metrics measure them from the recording). The recording is the simulator's stereo file,
caller left and agent right, kept on :attr:`~convoscope.simulate.conversation.Outcome.audio` for the
runner to store as the call's recording, after which the turn-taking analysis runs on it like any
production call's. ``metadata.voice`` keeps the simulator's ground truth (every caller utterance, which
were barge-ins or backchannels, key presses), the line conditions and the simulator's own pacing.
"""

from __future__ import annotations

import io

import soundfile as sf
from pydantic import JsonValue

from ...model import EndReason, Recording, Role, Turn
from ..callers import Caller
from ..conversation import Conversation, Outcome
from ..definitions import AgentSpec, IdleBehaviour, Persona, Scenario
from .behaviour import VoiceBehaviour
from .codec import SAMPLE_RATE
from .conditions import NetworkSpec, parse_noise
from .connector import VoiceConnector, new_call_info
from .session import Transcribe, VoiceCallResult, VoiceConditions, pacing_summary, run_voice_call
from .speech import PACE_WPM, VoiceSpec
from .tts import Speaker

__all__ = ["conditions_for", "converse_voice", "wav_bytes"]

_ENDS = {
    "user_hangup": EndReason.USER_HANGUP,
    "agent_hangup": EndReason.AGENT_HANGUP,
    "max_duration": EndReason.MAX_DURATION,
}


def conditions_for(
    persona: Persona, *, seed: int, max_call_s: float = 300.0, speaker: Speaker | None = None
) -> VoiceConditions:
    """The line conditions a persona asks for."""
    voice = persona.voice or ("en-us" if persona.language.lower() in ("en", "en-us") else persona.language)
    network = None
    if persona.network is not None and (persona.network.loss_pct > 0 or persona.network.jitter_ms > 0):
        network = NetworkSpec(
            loss_pct=persona.network.loss_pct,
            burst_frames=persona.network.burst_frames,
            jitter_ms=persona.network.jitter_ms,
        )
    return VoiceConditions(
        voice=VoiceSpec(voice=voice, rate_wpm=PACE_WPM[persona.pace]),
        hesitant=persona.hesitations,
        noise=parse_noise(persona.background_noise) if persona.background_noise else None,
        network=network,
        behaviour=VoiceBehaviour(
            reaction_s=persona.reaction_s,
            patience_s=persona.patience_s,
            prompt_when_idle=persona.idle_behaviour == IdleBehaviour.PROMPT,
            barge_in_chance=persona.interruption_tendency,
            barge_in_after_s=persona.barge_in_after_s,
            barge_in_keyword=persona.barge_in_keyword,
            backchannel_every_s=persona.backchannel_every_s,
            backchannel_text=persona.backchannel,
            max_call_s=max_call_s,
        ),
        seed=seed,
        speaker=speaker,
    )


def wav_bytes(result: VoiceCallResult) -> bytes:
    """The stereo recording as a 16-bit WAV file."""
    out = io.BytesIO()
    sf.write(out, result.stereo, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _truth(result: VoiceCallResult) -> dict[str, JsonValue]:
    return {
        "utterances": [
            {
                "kind": u.kind,
                "text": u.text,
                "start_s": u.start_s,
                "end_s": u.end_s,
                "barge_in": u.barge_in,
            }
            for u in result.utterances
        ],
        "barge_ins_s": [u.start_s for u in result.utterances if u.barge_in and u.kind != "backchannel"],
    }


async def converse_voice(
    connector: VoiceConnector,
    agent: AgentSpec,
    scenario: Scenario,
    persona: Persona,
    caller: Caller,
    *,
    run_id: str,
    iteration: int,
    caller_kind: str,
    transcribe: Transcribe | None = None,
    speaker: Speaker | None = None,
    seed: int = 0,
) -> Outcome:
    """Call the agent as the persona and return the call; never raises for the agent's faults."""
    conversation = Conversation(scenario, persona, agent, run_id, iteration, caller_kind)
    conditions = conditions_for(persona, seed=seed, speaker=speaker)
    info = new_call_info(connector.custom_parameters, {"convoscope_call": conversation.external_id()})
    result = await run_voice_call(
        connector.url,
        connector.new_protocol(),
        caller,
        conditions,
        info,
        agent_speaks_first=agent.speaks_first,
        max_lines=scenario.max_turns,
        transcribe=transcribe,
        connect_timeout_s=connector.connect_timeout_s,
        headers=connector.headers,
    )
    conversation.turns = [
        Turn(index=i, role=Role.USER if role == "user" else Role.AGENT, text=text, start_s=start, end_s=end)
        for i, (role, text, start, end) in enumerate(sorted(result.turns, key=lambda t: t[2]))
    ]
    conversation.end_reason = _ENDS.get(result.end, EndReason.UNKNOWN)
    call = conversation.to_call(result.error, result.error_kind)
    duration = len(result.stereo) / SAMPLE_RATE
    voice: dict[str, JsonValue] = {
        "protocol": connector.protocol,
        "call_sid": info.call_sid,
        "truth": _truth(result),
        "conditions": {
            "voice": conditions.voice.voice,
            "rate_wpm": conditions.voice.rate_wpm,
            "noise": persona.background_noise,
            "network": persona.network.model_dump(mode="json") if persona.network else None,
        },
        "pacing": pacing_summary(result.lateness_s),
        "first_audio_s": result.first_audio_s,
        "frames_sent": result.frames_sent,
        "frames_lost": result.frames_lost,
        "marks_echoed": result.marks_echoed,
        "clears": result.clears,
    }
    audio = wav_bytes(result) if len(result.stereo) else None
    recordings = (
        [
            Recording(
                format="wav",
                sample_rate=SAMPLE_RATE,
                channels=2,
                channel_map={0: Role.USER, 1: Role.AGENT},
                duration_s=round(duration, 6),
                vantage="simulator",
            )
        ]
        if audio is not None
        else []
    )
    call = call.model_copy(
        update={
            "duration_s": round(duration, 6),
            "recordings": recordings,
            "metadata": {**call.metadata, "voice": voice},
        }
    )
    if result.error is not None:
        return Outcome(call, "errored", result.error, result.error_kind, audio=audio)
    return Outcome(call, "completed", audio=audio)
