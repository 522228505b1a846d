"""How the simulator reaches an agent under test: one small module per wire protocol.

Every connector opens a :class:`~.base.AgentSession` per simulated conversation and turns what the agent
sends back into an :class:`~.base.AgentReply`. The runner never knows which protocol it is talking.

* ``base``: the protocol, the reply and the :class:`~.base.AgentError` family (the only module the runner
  needs to type against);
* ``openai_chat``, ``http_webhook``, ``websocket_text``: the connectors;
* ``registry``: ``connector_from_config(kind, settings)``, the one way a suite's settings become one.

docs/simulation-connectors.md states the agent-speaks-first rule, the error mapping and how to add one.
"""

from __future__ import annotations

import typing

from ...lazy import lazy_getattr

if typing.TYPE_CHECKING:
    from .base import (
        AgentError,
        AgentReply,
        AgentSession,
        AgentTimeout,
        AgentUnreachable,
        Connector,
        MalformedReply,
        Message,
        ToolCallRequest,
    )
    from .http_webhook import WebhookConnector
    from .openai_chat import OpenAIChatConnector
    from .registry import connector_from_config
    from .websocket_text import WebSocketConnector
else:
    # The connectors load on first use: a runner that types against ``base`` does not import httpx and
    # websockets until it makes a connector.
    _HOMES = {
        **dict.fromkeys(
            (
                "AgentError",
                "AgentReply",
                "AgentSession",
                "AgentTimeout",
                "AgentUnreachable",
                "Connector",
                "MalformedReply",
                "Message",
                "ToolCallRequest",
            ),
            ".base",
        ),
        "OpenAIChatConnector": ".openai_chat",
        "WebhookConnector": ".http_webhook",
        "WebSocketConnector": ".websocket_text",
        "connector_from_config": ".registry",
    }

    __getattr__ = lazy_getattr(__name__, globals(), _HOMES)

__all__ = [
    "AgentError",
    "AgentReply",
    "AgentSession",
    "AgentTimeout",
    "AgentUnreachable",
    "Connector",
    "MalformedReply",
    "Message",
    "OpenAIChatConnector",
    "ToolCallRequest",
    "WebSocketConnector",
    "WebhookConnector",
    "connector_from_config",
]
