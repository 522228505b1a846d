"""An agent behind an OpenAI-compatible Chat Completions endpoint (``POST {base_url}/chat/completions``).

Most chat agents, and every LLM server worth testing a prompt against (vLLM, llama.cpp, Ollama, LiteLLM,
OpenAI itself), speak this protocol, so it is the connector a team reaches for first. It is stateless:
every turn posts the whole history (``model``, ``messages``, the configured ``tools`` and any
``extra_body``) and reads ``choices[0].message``: its ``content`` is what the agent said, its
``tool_calls`` the tools it wants (``function.arguments`` is JSON text, parsed to a dict here), and the
response's ``usage`` is copied into the reply.

**Agent speaks first:** ``respond(history, new=[])`` posts ``history`` as given: only the messages that
precede the opening line (a system message, or none at all; an empty ``messages`` list is sent as such,
and an endpoint that refuses it answers an HTTP error, reported as :class:`AgentUnreachable`). Whatever
the endpoint answers is the opening line; ``content`` null with no tool calls means it had nothing to say.

**Errors:** an HTTP error status, a refused or broken connection → :class:`AgentUnreachable` (status and
the start of the body in the message); no answer within ``timeout_s`` → :class:`AgentTimeout`; a body
that is not JSON or not a chat completion, or tool-call arguments that are not a JSON object →
:class:`MalformedReply` (naming the tool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._http import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MAX_CONNECTIONS, ClientPool, post_json
from ._wire import load_json_object, reply_text, tool_call, usage_counts
from .base import AgentReply, AgentSession, MalformedReply, Message, ToolCallRequest

__all__ = ["OpenAIChatConnector", "parse_chat_completion"]


def parse_chat_completion(data: bytes, *, latency_s: float = 0.0) -> AgentReply:
    """A Chat Completions response body as an :class:`AgentReply`, or :class:`MalformedReply`."""
    body = load_json_object(data, "the chat completion")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("the chat completion has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        raise MalformedReply("choices[0] of the chat completion has no message")
    text = reply_text(message.get("content"), where="choices[0].message.content")
    calls: list[ToolCallRequest] = []
    raw_calls = message.get("tool_calls")
    if raw_calls is not None:
        if not isinstance(raw_calls, list):
            raise MalformedReply("choices[0].message.tool_calls is not a list")
        for index, item in enumerate(raw_calls):
            where = f"choices[0].message.tool_calls[{index}]"
            function = item.get("function") if isinstance(item, Mapping) else None
            if not isinstance(function, Mapping):
                raise MalformedReply(f"{where} has no function")
            flat = {
                "id": item.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
            }
            calls.append(tool_call(flat, where=where))
    return AgentReply(
        text=text, tool_calls=tuple(calls), latency_s=latency_s, usage=usage_counts(body.get("usage"))
    )


class _ChatSession:
    """One conversation: nothing is held between turns but its shard of the connector's pool."""

    def __init__(self, connector: OpenAIChatConnector) -> None:
        self._connector = connector
        self._client = connector.pool.client()

    async def respond(
        self, history: Sequence[Message], new: Sequence[Message], *, timeout_s: float
    ) -> AgentReply:
        connector = self._connector
        data, latency_s = await post_json(
            self._client,
            connector.url,
            connector.request_body(history),
            timeout_s=timeout_s,
            connect_timeout_s=connector.connect_timeout_s,
        )
        return parse_chat_completion(data, latency_s=latency_s)

    async def close(self) -> None:
        """Nothing to hang up: the protocol has no conversation on the server's side."""


class OpenAIChatConnector:
    """Reach an agent through ``POST {base_url}/chat/completions``; one pool for every conversation.

    ``base_url`` is the API root, as OpenAI clients take it (``http://host:port/v1``). ``tools`` (OpenAI's
    tool list) and ``extra_body`` (merged into the request last, e.g. ``{"temperature": 0}``) go in every
    request; ``api_key`` becomes a Bearer header; ``headers`` are added to every request.
    ``max_connections`` sizes the pool (at least the number of conversations run at once).
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.tools = [dict(tool) for tool in tools or ()]
        self.extra_body = dict(extra_body or {})
        self.connect_timeout_s = connect_timeout_s
        all_headers = dict(headers or {})
        if api_key:
            all_headers["authorization"] = f"Bearer {api_key}"
        self.pool = ClientPool(
            headers=all_headers, max_connections=max_connections, connect_timeout_s=connect_timeout_s
        )

    def request_body(self, history: Sequence[Message]) -> dict[str, Any]:
        """The JSON posted for one turn: the whole history, the tools, then ``extra_body`` over them."""
        body: dict[str, Any] = {"model": self.model, "messages": list(history)}
        if self.tools:
            body["tools"] = self.tools
        body.update(self.extra_body)
        return body

    async def open(self, conversation_id: str) -> AgentSession:
        return _ChatSession(self)

    async def aclose(self) -> None:
        await self.pool.aclose()
