"""The reference agent: a rule-based appointment line with faults to switch on, for testing the tester.

Simulation needs an agent to run against whose behaviour is known exactly: its end-to-end tests, the
demo and the docs all talk to this one. It is "Ava" at Northside Dental, a receptionist with no language
model: keyword intents (:mod:`.intents`), date and time slots (:mod:`.slots`), five tools with a
deterministic backend (:mod:`.tools`), and a pure policy (:mod:`.policy`) that turns messages into the
next reply. :mod:`.server` puts it on the wire (OpenAI chat, webhook, WebSocket) and :mod:`.faults`
names the ways it can be told to misbehave, per server or per request through the model name.
"""

from __future__ import annotations

from .faults import (
    BEHAVIOUR_FAULTS,
    DEFAULT_MODEL,
    INFRASTRUCTURE_FAULTS,
    Fault,
    UnknownFault,
    model_name,
    parse_model,
)
from .policy import INSTRUCTIONS, AgentTurn, ConversationState, ReferencePolicy, ToolCall, respond
from .server import ReferenceAgentServer, create_app
from .tools import PRICES, REFERENCE_TOOLS, ReferenceTools, UnknownTool

__all__ = [
    "BEHAVIOUR_FAULTS",
    "DEFAULT_MODEL",
    "INFRASTRUCTURE_FAULTS",
    "INSTRUCTIONS",
    "PRICES",
    "REFERENCE_TOOLS",
    "AgentTurn",
    "ConversationState",
    "Fault",
    "ReferenceAgentServer",
    "ReferencePolicy",
    "ReferenceTools",
    "ToolCall",
    "UnknownFault",
    "UnknownTool",
    "create_app",
    "model_name",
    "parse_model",
    "respond",
]
