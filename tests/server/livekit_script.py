"""What the scripted LiveKit agent hears and answers, shared by the test and the agent process.

Plain data with no LiveKit import, handed to the agent process as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LLM_MODEL = "scripted-llm"


@dataclass(frozen=True)
class Tool:
    """A function call the LLM asks for, and what the agent's function returns."""

    call_id: str
    name: str
    arguments: dict[str, str]
    result: str


@dataclass(frozen=True)
class Step:
    """One LLM request's answer: a tool call (then the framework asks again) or the reply."""

    id: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    tool: Tool | None = None
    delay_s: float = 0.05


@dataclass(frozen=True)
class Exchange:
    """One user line and the LLM steps that answer it."""

    user: str
    steps: list[Step]

    @property
    def reply(self) -> str:
        return " ".join(s.text for s in self.steps if s.text)


@dataclass(frozen=True)
class LiveKitRun:
    """Where to export, as whom, inside which job (None: outside any), and what is said."""

    endpoint: str
    api_key: str
    service_name: str
    job_id: str | None
    exchanges: list[Exchange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveKitRun:
        exchanges = [
            Exchange(
                user=e["user"],
                steps=[Step(**{**s, "tool": Tool(**s["tool"]) if s["tool"] else None}) for s in e["steps"]],
            )
            for e in data["exchanges"]
        ]
        return cls(**{**data, "exchanges": exchanges})
