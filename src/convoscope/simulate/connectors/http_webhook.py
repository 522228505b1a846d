"""An agent behind a plain JSON webhook: the smallest protocol a team can put in front of any agent.

Each turn is one stateless ``POST {url}`` of::

    {"conversation_id": "...", "messages": [ ...OpenAI-style history... ]}

answered by::

    {"reply": "text" | null,
     "tool_calls": [{"id": "...", "name": "...", "arguments": {...} | "JSON text"}],   (optional)
     "end_call": false}                                                               (optional)

``conversation_id`` is the same for every turn of a conversation, so an agent that keeps its own state
can key it; one that does not reads the history. ``end_call: true`` says the agent hung up.

**Agent speaks first:** ``respond(history, new=[])`` posts the history as given (the messages before the
opening line, often none): ``{"conversation_id": ..., "messages": []}`` asks for the greeting, and
``"reply": null`` means the agent waits for the caller.

**Errors:** an HTTP error status, a refused or broken connection → :class:`AgentUnreachable` (status and
the start of the body in the message); no answer within ``timeout_s`` → :class:`AgentTimeout`; a body
that is not JSON or not of the shape above, or tool-call arguments that are not a JSON object →
:class:`MalformedReply` (naming the tool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._http import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, ClientPool, post_json
from ._wire import load_json_object, tool_calls, usage_counts
from .base import AgentReply, AgentSession, MalformedReply, Message

__all__ = ["WebhookConnector", "parse_webhook_reply"]


def parse_webhook_reply(data: bytes, *, latency_s: float = 0.0) -> AgentReply:
    """A webhook answer as an :class:`AgentReply`, or :class:`MalformedReply`.

    ``reply`` must be present (null is a deliberate "nothing to say", a missing key a wrong endpoint);
    ``tool_calls`` and ``end_call`` may be left out. A ``usage`` object of token counts is copied if sent.
    """
    body = load_json_object(data, "the webhook answer")
    if "reply" not in body:
        raise MalformedReply("the webhook answer has no 'reply' (null says the agent has nothing to say)")
    text = body["reply"]
    if text is not None and not isinstance(text, str):
        raise MalformedReply(f"'reply' of the webhook answer is a {type(text).__name__}, not text or null")
    end_call = body.get("end_call", False)
    if end_call is None:
        end_call = False
    if not isinstance(end_call, bool):
        raise MalformedReply(
            f"'end_call' of the webhook answer is a {type(end_call).__name__}, not a boolean"
        )
    return AgentReply(
        text=text,
        tool_calls=tuple(tool_calls(body.get("tool_calls"), where="tool_calls")),
        latency_s=latency_s,
        end_call=end_call,
        usage=usage_counts(body.get("usage")),
    )


class _WebhookSession:
    """One conversation: its id, sent with every turn, and its shard of the connector's pool."""

    def __init__(self, connector: WebhookConnector, conversation_id: str) -> None:
        self._connector = connector
        self._client = connector.pool.client()
        self.conversation_id = conversation_id

    async def respond(
        self, history: Sequence[Message], new: Sequence[Message], *, timeout_s: float
    ) -> AgentReply:
        connector = self._connector
        data, latency_s = await post_json(
            self._client,
            connector.url,
            {"conversation_id": self.conversation_id, "messages": list(history)},
            timeout_s=timeout_s,
            connect_timeout_s=connector.connect_timeout_s,
        )
        return parse_webhook_reply(data, latency_s=latency_s)

    async def close(self) -> None:
        """Nothing to hang up: the agent learns a conversation ended by no longer hearing of it."""


class WebhookConnector:
    """Reach an agent through ``POST {url}`` with the protocol above; one pool for every conversation.

    ``headers`` are sent with every request (an API key, say); ``max_connections`` sizes the pool (at least
    the number of conversations run at once).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.pool = ClientPool(
            headers=headers, max_connections=max_connections, connect_timeout_s=connect_timeout_s
        )

    async def open(self, conversation_id: str) -> AgentSession:
        return _WebhookSession(self, conversation_id)

    async def aclose(self) -> None:
        await self.pool.aclose()
