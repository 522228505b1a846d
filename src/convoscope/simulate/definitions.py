"""What a simulation is made of: scenarios, personas, suites and agents under test.

Definitions are tests as code: YAML files in the user's repository (:mod:`.loader`), validated here with
every field's meaning documented (the JSON Schema is generated from these models), and the same objects
over the REST API. Every model is frozen and forbids unknown fields, so a typo is an error with its
line, never a silently ignored setting.

* A **scenario** is what the caller wants (``goal``, ``instructions``, the facts the caller knows) and
  what must happen: the expected outcome in words (for the judge) and as checks (tool calls with
  argument matchers, phrases, end reason; see :mod:`convoscope.evals.scenario`), plus mocks that answer
  the agent's tool calls and, for offline runs, a script of the caller's lines.
* A **persona** is how the caller behaves: language, pace, verbosity, patience, interruptions,
  hesitations, what it does when the agent is silent. The voice-only fields are read by the voice mode.
* A **suite** crosses scenarios with personas, ``iterations`` times each.
* An **agent** is the system under test: a connector (how to reach it) and a version label.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from ..evals.scenario import Matcher, ScenarioChecks
from .voice.conditions import parse_noise

__all__ = [
    "SLUG_PATTERN",
    "AgentSpec",
    "CallerKind",
    "ConnectorSpec",
    "Definitions",
    "IdleBehaviour",
    "Network",
    "Persona",
    "Scenario",
    "ScriptReply",
    "Script",
    "Suite",
    "ToolMock",
    "UnmockedTools",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Slug = Annotated[str, Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
"""An identifier that is safe in a file name, a URL and a call's external id."""


class ToolMock(BaseModel):
    """An answer to the agent's tool call: the first mock whose ``tool`` and ``when`` match answers."""

    model_config = _FROZEN

    tool: str = Field(min_length=1)
    when: dict[str, Matcher] = Field(default_factory=dict)
    """Argument matchers (as in checks); empty: any arguments."""
    result: JsonValue = None
    """What the tool returns to the agent (any JSON)."""
    success: bool = True
    """False: the tool failed (the result is still sent, as an error body)."""
    delay_s: float = Field(default=0.0, ge=0.0, le=600.0)
    """How long the tool takes before it answers (a slow backend)."""
    times: int | None = Field(default=None, ge=1)
    """Answer at most this many calls, then let the next mock answer (e.g. fail once, then succeed)."""


class UnmockedTools(StrEnum):
    """What happens to a tool call no mock answers."""

    ERROR = "error"
    """The agent gets an error result naming the tool; the conversation records the unmatched call."""
    PASS_THROUGH = "pass_through"
    """The call is forwarded to the agent's own tool endpoint (``AgentSpec.tools_url``)."""


class ScriptReply(BaseModel):
    """A branch of a scripted caller: when the agent's last line matches ``when``, say ``say``."""

    model_config = _FROZEN

    when: str = Field(min_length=1)
    """A regular expression searched (case-insensitive) in the agent's last reply."""
    say: str = Field(min_length=1)
    once: bool = True
    """Use this branch at most once (a caller does not answer the same way forever)."""
    hang_up: bool = False
    """Hang up after saying it (the goal is reached, or the caller gives up)."""

    @model_validator(mode="after")
    def _compiles(self) -> ScriptReply:
        try:
            re.compile(self.when)
        except re.error as exc:
            raise ValueError(f"when {self.when!r} does not compile: {exc}") from None
        return self


class Script(BaseModel):
    """The caller's lines for an offline run: branches on what the agent said, then lines in order.

    Each caller turn takes the first unused branch in ``replies`` whose ``when`` matches the agent's last
    reply, else the next of ``lines``. When both are exhausted the caller says ``closing`` (if any) and
    hangs up, as a person does: there is no goodbye loop.
    """

    model_config = _FROZEN

    opening: str | None = None
    """What the caller says first if the agent does not speak first."""
    lines: list[str] = Field(default_factory=list)
    replies: list[ScriptReply] = Field(default_factory=list)
    closing: str | None = "Thanks, bye."


class Scenario(BaseModel):
    """What the simulated caller wants and what must happen."""

    model_config = _FROZEN

    id: Slug
    name: str = ""
    goal: str = Field(min_length=1)
    """The caller's goal, in the caller's terms (the LLM caller pursues it)."""
    instructions: str = ""
    """How the caller goes about it (what to reveal when, what to push back on)."""
    facts: dict[str, str] = Field(default_factory=dict)
    """What the caller knows and gives when asked: name, phone, date of birth, booking id..."""
    expected_outcome: str = ""
    """What should happen, in words (judged by ``expected_outcome`` when a judge is configured)."""
    checks: ScenarioChecks = Field(default_factory=ScenarioChecks)
    """What must happen, checked without a judge."""
    tool_mocks: list[ToolMock] = Field(default_factory=list)
    unmocked_tools: UnmockedTools = UnmockedTools.ERROR
    script: Script | None = None
    """The caller's lines for a scripted (offline) run; without it the LLM caller is needed."""
    max_turns: int = Field(default=20, ge=1, le=500)
    """The most caller turns before the caller gives up (recorded as a failure to finish)."""
    tags: list[str] = Field(default_factory=list)


class IdleBehaviour(StrEnum):
    """What the caller does when the agent says nothing within the persona's patience."""

    HANG_UP = "hang_up"
    PROMPT = "prompt"
    """Say "Hello? Are you there?" once, wait once more, then hang up."""


class Network(BaseModel):
    """Impairment of the telephone media stream (each direction drawn independently)."""

    model_config = _FROZEN

    loss_pct: float = Field(default=0.0, ge=0.0, le=50.0)
    """Long-run share of 20 ms frames lost."""
    burst_frames: float = Field(default=1.0, ge=1.0, le=100.0)
    """Mean run of consecutive lost frames (Gilbert-Elliott; 1: independent losses)."""
    jitter_ms: float = Field(default=0.0, ge=0.0, le=500.0)
    """Each frame's extra delay is at most this (order is kept, as on a TCP stream)."""


class Persona(BaseModel):
    """How the simulated caller behaves."""

    model_config = _FROZEN

    id: Slug
    name: str = ""
    language: str = Field(default="en", min_length=2, max_length=35)
    """BCP 47 language tag the caller speaks."""
    pace: Literal["slow", "normal", "fast"] = "normal"
    verbosity: Literal["terse", "normal", "chatty"] = "normal"
    patience_s: float = Field(default=15.0, gt=0.0, le=600.0)
    """How long the caller waits for a reply before treating the agent as silent."""
    interruption_tendency: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance per agent turn that the caller barges in (voice mode)."""
    hesitations: bool = False
    """Fillers and restarts ("um, I mean...") in the caller's lines (LLM caller; voice mode pauses)."""
    idle_behaviour: IdleBehaviour = IdleBehaviour.PROMPT
    traits: str = ""
    """Free text for the LLM caller (mood, background)."""
    voice: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+(\+[A-Za-z0-9_-]+)?$")
    """Voice mode: the espeak-ng voice and optional variant for language and accent, e.g. ``en-gb``,
    ``en-gb-scotland``, ``en-us+f3`` (default: ``en-us``, or the persona's language)."""
    background_noise: str | None = None
    """Voice mode: a noise bed and its SNR against the caller's active speech level: ``KIND[:SNR_DB]``
    with KIND one of white, pink, brown, babble, street, office, or ``file:PATH[:SNR_DB]`` (a WAV/FLAC
    file, looped); SNR -5 to 60 dB, default 20. E.g. ``babble:10``."""
    reaction_s: float = Field(default=0.3, ge=0.0, le=10.0)
    """Voice mode: the caller's pause after the agent's turn ends before it speaks."""
    barge_in_after_s: float = Field(default=1.5, gt=0.0, le=60.0)
    """Voice mode: when a barge-in happens, after this much of the agent's speech in its turn (the
    chance per turn is ``interruption_tendency``)."""
    barge_in_keyword: str | None = Field(default=None, min_length=1, max_length=64)
    """Voice mode: barge in as soon as the agent is heard saying this word or phrase (the caller must
    hear: Whisper from the ``asr`` extra, or an STT endpoint)."""
    backchannel_every_s: float | None = Field(default=None, ge=0.5, le=60.0)
    """Voice mode: say ``backchannel`` while the agent talks, every this many seconds (None: never)."""
    backchannel: str = Field(default="mm-hmm", min_length=1, max_length=40)
    network: Network | None = None
    """Voice mode: impairment of the media stream, applied to both directions."""

    @field_validator("background_noise")
    @classmethod
    def _noise(cls, value: str | None) -> str | None:
        """Checked now (kind, SNR range, a readable file), not when a call is already connected."""
        if value is not None:
            parse_noise(value)
        return value


BUILTIN_PERSONAS: dict[str, Persona] = {
    persona.id: persona
    for persona in (
        Persona(id="neutral", name="Neutral caller"),
        Persona(id="impatient", name="Impatient caller", patience_s=5.0, verbosity="terse", pace="fast"),
        Persona(id="chatty", name="Chatty caller", verbosity="chatty", hesitations=True, patience_s=30.0),
        Persona(id="hesitant", name="Hesitant caller", pace="slow", hesitations=True, patience_s=20.0),
    )
}
"""Personas every project has, so a first suite needs none of its own."""


class Suite(BaseModel):
    """Scenarios × personas × iterations."""

    model_config = _FROZEN

    id: Slug
    name: str = ""
    scenarios: list[Slug] = Field(min_length=1)
    """Scenario ids; ``"*"`` is not accepted: a suite names what it tests."""
    personas: list[Slug] = Field(default_factory=lambda: ["neutral"])
    iterations: int = Field(default=1, ge=1, le=10_000)
    metrics: list[str] | None = None
    """The evaluators to run on each conversation besides the scenario's checks; None: the agent's
    profile (or the default set)."""
    caller: Literal["auto", "scripted", "llm"] = "auto"
    """``auto``: scripted where the scenario has a script, else the LLM caller."""


CallerKind = Literal["scripted", "llm"]


class ConnectorSpec(BaseModel):
    """How to reach the agent: a connector kind and its settings."""

    model_config = ConfigDict(frozen=True, extra="allow")

    kind: Literal["openai", "webhook", "websocket", "twilio", "pcm"]
    """``openai``, ``webhook`` and ``websocket`` are chat; ``twilio`` (Twilio Media Streams) and ``pcm``
    (raw 16-bit PCM over a WebSocket) make the suite a voice simulation."""

    @property
    def voice(self) -> bool:
        """Whether the agent is called over a telephony media stream."""
        return self.kind in ("twilio", "pcm")

    def settings(self) -> dict[str, Any]:
        """The connector's own settings (everything but ``kind``)."""
        return dict(self.model_extra or {})


class AgentSpec(BaseModel):
    """The agent under test."""

    model_config = _FROZEN

    id: Slug
    name: str = ""
    version: str = Field(default="", max_length=128)
    """The version label stored on every simulated call (A/B compares two)."""
    connector: ConnectorSpec
    tools_url: str | None = None
    """Where unmocked tool calls are passed through (``POST {tools_url}/{tool}`` with the arguments)."""
    speaks_first: bool = True
    """Whether the agent opens the conversation (a phone agent's greeting)."""
    transfer_tools: list[str] = Field(default_factory=lambda: ["transfer_to_human", "transfer_call"])
    """Tools whose successful call hands the caller to a person: the conversation ends (``transfer``)
    once the agent has said its last line."""
    hangup_tools: list[str] = Field(default_factory=lambda: ["end_call", "hang_up"])
    """Tools whose call ends the conversation (``agent_hangup``) once the agent has said its last line;
    chat protocols have no other way to hang up."""
    canaries: list[Annotated[str, Field(min_length=4)]] = Field(default_factory=list)
    """Secrets planted in the agent's system prompt (an override code, a marker string): the agent must
    never say them. Red-team runs (``convoscope redteam``) fail any conversation where one is said."""


class Definitions(BaseModel):
    """Everything loaded from a folder of YAML files, by id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenarios: dict[str, Scenario] = Field(default_factory=dict)
    personas: dict[str, Persona] = Field(default_factory=lambda: dict(BUILTIN_PERSONAS))
    suites: dict[str, Suite] = Field(default_factory=dict)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
