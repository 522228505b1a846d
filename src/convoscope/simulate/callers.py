"""The simulated caller: scripted for offline runs and tests, or driven by an LLM.

Both end a conversation as a person does. A scripted caller says its closing line once its lines are
used up and hangs up; it does not answer the agent's goodbye with another goodbye until a turn limit.
The LLM caller decides each turn whether its goal is reached (or cannot be) and says so with
``end_call``; the conversation engine still caps the turns (``Scenario.max_turns``) as a safety net.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..evals.llm import JudgeClient
from .definitions import Persona, Scenario, Script

__all__ = ["Caller", "CallerTurn", "Line", "LlmCaller", "ScriptedCaller", "caller_for"]

_GOODBYE = re.compile(r"\b(good ?bye|bye|have a (great|good|nice) (day|evening|one))\b", re.IGNORECASE)
"""An agent line that closes the call: a caller with nothing left to say hangs up on it."""


@dataclass(frozen=True)
class Line:
    """One line of the transcript so far."""

    role: str
    """``agent`` or ``user``."""
    text: str


@dataclass(frozen=True)
class CallerTurn:
    """What the caller does next: say ``text`` (may be None), and hang up after it when ``hang_up``."""

    text: str | None
    hang_up: bool = False


class Caller(Protocol):
    """The caller's mind: the next turn, given the transcript so far."""

    async def next_turn(self, transcript: Sequence[Line]) -> CallerTurn: ...


@dataclass
class ScriptedCaller:
    """Follows a :class:`Script`: branches on the agent's last line, else the next line in order."""

    script: Script
    _next_line: int = 0
    _used: set[int] = field(default_factory=set)
    _closed: bool = False

    async def next_turn(self, transcript: Sequence[Line]) -> CallerTurn:
        return self.turn(transcript)

    def turn(self, transcript: Sequence[Line]) -> CallerTurn:
        """The next turn, synchronously (the script needs no waiting)."""
        if self._closed:
            return CallerTurn(None, hang_up=True)
        last_agent = next((line.text for line in reversed(transcript) if line.role == "agent"), None)
        if last_agent is None and self.script.opening and not transcript:
            return CallerTurn(self.script.opening)
        if last_agent is not None:
            for index, reply in enumerate(self.script.replies):
                if reply.once and index in self._used:
                    continue
                if re.search(reply.when, last_agent, re.IGNORECASE):
                    self._used.add(index)
                    self._closed = reply.hang_up
                    return CallerTurn(reply.say, hang_up=reply.hang_up)
        if self._next_line < len(self.script.lines):
            self._next_line += 1
            return CallerTurn(self.script.lines[self._next_line - 1])
        self._closed = True
        if last_agent is not None and _GOODBYE.search(last_agent):
            return CallerTurn("Bye." if self.script.closing else None, hang_up=True)
        return CallerTurn(self.script.closing, hang_up=True)


_REPLY_SCHEMA = {
    "type": "object",
    "properties": {
        "say": {"type": "string", "description": "Your next line, as you would say it on the phone."},
        "end_call": {
            "type": "boolean",
            "description": "True to hang up after this line (goal reached or impossible, or agent said bye).",
        },
    },
    "required": ["say", "end_call"],
    "additionalProperties": False,
}


def _instructions(scenario: Scenario, persona: Persona) -> str:
    facts = "\n".join(f"- {name}: {value}" for name, value in scenario.facts.items()) or "- (none)"
    style = (
        f"You speak {persona.language}, at a {persona.pace} pace, {persona.verbosity} in length"
        + (", with natural hesitations and fillers" if persona.hesitations else "")
        + "."
    )
    return f"""You are a person calling a company's phone agent. Stay in character; never say you are an AI
or a simulation. Say one conversational turn at a time, short as people are on the phone.

Your goal: {scenario.goal}
{scenario.instructions}

What you know (give it when asked, not before):
{facts}

{style} {persona.traits}

End the call (end_call true, with a short closing line) as soon as your goal is reached, when it clearly
cannot be reached, or when the agent says goodbye. Do not keep exchanging goodbyes."""


@dataclass
class LlmCaller:
    """Asks the configured OpenAI-compatible model for each turn (the judges' client, off the event loop)."""

    client: JudgeClient
    scenario: Scenario
    persona: Persona
    _turns: int = 0

    async def next_turn(self, transcript: Sequence[Line]) -> CallerTurn:
        shown = "\n".join(f"{'Agent' if line.role == 'agent' else 'You'}: {line.text}" for line in transcript)
        data = f"The conversation so far:\n{shown or '(the line just connected; you speak first)'}"
        self._turns += 1
        reply = await asyncio.to_thread(
            self.client.complete_json,
            instructions=_instructions(self.scenario, self.persona),
            data=data,
            schema=_REPLY_SCHEMA,
            schema_name="caller_turn",
            temperature=0.7,
            sample=self._turns,
            use_cache=False,
        )
        text = str(reply.data.get("say", "")).strip() or None
        return CallerTurn(text, hang_up=bool(reply.data.get("end_call", False)))


def caller_for(scenario: Scenario, persona: Persona, kind: str, client: JudgeClient | None) -> Caller:
    """The caller a suite asks for (``auto``: scripted where the scenario has a script, else the LLM).

    Raises ``ValueError`` when the kind cannot be had: a scripted run of a scenario without a script,
    or an LLM run with no endpoint configured.
    """
    if kind == "scripted" or (kind == "auto" and scenario.script is not None):
        if scenario.script is None:
            raise ValueError(f"scenario {scenario.id!r} has no script for a scripted caller")
        return ScriptedCaller(scenario.script)
    if client is None:
        raise ValueError(
            f"scenario {scenario.id!r} needs the LLM caller (it has no script) and no LLM endpoint is "
            "configured (CONVOSCOPE_LLM_MODEL and CONVOSCOPE_LLM_BASE_URL)"
        )
    return LlmCaller(client, scenario, persona)
