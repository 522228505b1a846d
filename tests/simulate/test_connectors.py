"""The simulator's chat connectors against real agents on loopback (tests/simulate/agents.py).

Every connector is driven the way the runner drives it (open, respond with history and what is new,
close), over real sockets: the happy path with text and tool calls, the agent's opening line, each
failure class the runner tells apart, and 300 conversations at once through one connector.
"""

from __future__ import annotations

import asyncio
import re
import sys
import types
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from convoscope.errors import InputError
from convoscope.simulate.connectors.base import (
    AgentError,
    AgentReply,
    AgentTimeout,
    AgentUnreachable,
    Connector,
    MalformedReply,
    Message,
)
from convoscope.simulate.connectors.http_webhook import WebhookConnector
from convoscope.simulate.connectors.openai_chat import OpenAIChatConnector, parse_chat_completion
from convoscope.simulate.connectors.registry import connector_from_config
from convoscope.simulate.connectors.websocket_text import WebSocketConnector

from .agents import (
    GREETING,
    DroppingAgent,
    HttpAgent,
    WebSocketAgent,
    refusing_port,
    serve_dropping_agent,
    serve_http_agent,
    serve_websocket_agent,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "simulation-connectors.md"
KINDS = ["openai", "webhook", "websocket"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
SYSTEM: Message = {"role": "system", "content": "You are a helpful travel agent."}


@pytest.fixture(scope="module")
def http_agent() -> Iterator[HttpAgent]:
    yield from serve_http_agent()


@pytest.fixture(scope="module")
def ws_agent() -> Iterator[WebSocketAgent]:
    yield from serve_websocket_agent()


@pytest.fixture
def make(http_agent: HttpAgent, ws_agent: WebSocketAgent) -> Callable[..., Connector]:
    """A connector of a kind, pointed at a behaviour of the loopback agents ("ok" is the good agent)."""

    def build(kind: str, behaviour: str = "ok", **options: Any) -> Connector:
        if kind == "openai":
            return OpenAIChatConnector(
                f"{http_agent.url}/{behaviour}/v1", model="agent-1", tools=TOOLS, **options
            )
        if kind == "webhook":
            return WebhookConnector(f"{http_agent.url}/{behaviour}/webhook", **options)
        ws_behaviour = {"ok": "quiet", "first": "greet"}.get(behaviour, behaviour)
        return WebSocketConnector(
            f"{ws_agent.url}/{ws_behaviour}", **{"first_reply_timeout_s": 0.05, **options}
        )

    return build


def user(text: str) -> Message:
    return {"role": "user", "content": text}


def assistant(reply: AgentReply) -> Message:
    """The reply as the runner keeps it in the history (OpenAI's shape)."""
    message: Message = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.raw_arguments},
            }
            for call in reply.tool_calls
        ]
    return message


def talk(connector: Connector, body: Callable[[Any], Awaitable[Any]], conversation_id: str = "conv-1") -> Any:
    """Open one conversation, run ``body(session)``, hang up and release the connector: the runner's
    life cycle, on a fresh event loop."""

    async def go() -> Any:
        try:
            session = await connector.open(conversation_id)
            try:
                return await body(session)
            finally:
                await session.close()
        finally:
            await connector.aclose()

    return asyncio.run(go())


def say(
    text: str, *, before: list[Message] | None = None, timeout_s: float = 5.0
) -> Callable[[Any], Awaitable[Any]]:
    """A body for :func:`talk` that says one line after ``before`` and returns the agent's reply."""
    history = [*(before or []), user(text)]

    async def body(session: Any) -> AgentReply:
        reply: AgentReply = await session.respond(history, history[-1:], timeout_s=timeout_s)
        return reply

    return body


# ---------------------------------------------------------------- every connector, same expectations


@pytest.mark.parametrize("kind", KINDS)
def test_a_line_gets_the_agents_text(make: Callable[..., Connector], kind: str) -> None:
    reply = talk(make(kind), say("hello", before=[SYSTEM]))
    assert reply.text == "You said: hello"
    assert reply.tool_calls == ()
    assert reply.end_call is False
    assert reply.latency_s > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_call_round_trip(make: Callable[..., Connector], kind: str) -> None:
    async def body(session: Any) -> tuple[AgentReply, AgentReply]:
        history: list[Message] = [SYSTEM, user("weather in Paris")]
        asked = await session.respond(history, history[-1:], timeout_s=5)
        results = [
            {"role": "tool", "tool_call_id": call.id, "content": "sunny in Paris"}
            for call in asked.tool_calls
        ]
        history += [assistant(asked), *results]
        answered = await session.respond(history, results, timeout_s=5)
        return asked, answered

    asked, answered = talk(make(kind), body)
    assert asked.text is None
    [call] = asked.tool_calls
    assert (call.id, call.name, dict(call.arguments)) == ("call_1", "get_weather", {"city": "Paris"})
    assert call.raw_arguments.replace(" ", "") == '{"city":"Paris"}'
    assert answered.text == "The weather is sunny in Paris."
    assert answered.tool_calls == ()


@pytest.mark.parametrize("kind", KINDS)
def test_the_agent_speaks_first_when_asked_with_nothing_new(
    make: Callable[..., Connector], kind: str
) -> None:
    async def body(session: Any) -> tuple[AgentReply, AgentReply]:
        opening = await session.respond([], [], timeout_s=5)
        history = [assistant(opening), user("hi")]
        return opening, await session.respond(history, history[-1:], timeout_s=5)

    opening, reply = talk(make(kind, "first"), body)
    assert opening.text == GREETING
    assert opening.tool_calls == ()
    assert reply.text == "You said: hi", "the reply to the first line is not the greeting again"
    assert reply.unsolicited == ()


@pytest.mark.parametrize("kind", KINDS)
def test_an_agent_that_is_down_is_unreachable(kind: str) -> None:
    with refusing_port() as port:
        connector: Connector
        if kind == "openai":
            connector = OpenAIChatConnector(f"http://127.0.0.1:{port}/v1", model="m")
        elif kind == "webhook":
            connector = WebhookConnector(f"http://127.0.0.1:{port}/webhook?key=secret")
        else:
            connector = WebSocketConnector(f"ws://127.0.0.1:{port}/chat")
        with pytest.raises(AgentUnreachable, match=f"127.0.0.1:{port}") as caught:
            talk(connector, say("hello"))
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_an_agent_slower_than_the_timeout_times_out(make: Callable[..., Connector], kind: str) -> None:
    with pytest.raises(AgentTimeout, match="0.3 s"):
        talk(make(kind, "slow"), say("hello", timeout_s=0.3))


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_that_is_not_json_is_malformed(make: Callable[..., Connector], kind: str) -> None:
    with pytest.raises(MalformedReply, match="not JSON"):
        talk(make(kind, "garbage"), say("hello"))


@pytest.mark.parametrize("kind", KINDS)
def test_tool_arguments_that_are_not_json_are_malformed_and_name_the_tool(
    make: Callable[..., Connector], kind: str
) -> None:
    with pytest.raises(MalformedReply, match="'get_weather'"):
        talk(make(kind, "badargs"), say("weather in Paris"))


@pytest.mark.parametrize("kind", KINDS)
def test_300_conversations_at_once_each_get_their_own_replies(
    make: Callable[..., Connector], kind: str
) -> None:
    # Generous connection deadlines: the agent shares this process's cores, and correctness is the point.
    options = {"open_timeout_s": 60.0} if kind == "websocket" else {"connect_timeout_s": 60.0}
    connector = make(kind, **options)
    count = 300

    async def conversation(index: int) -> tuple[str | None, dict[str, Any]]:
        session = await connector.open(f"conv-{index}")
        try:
            history: list[Message] = [user(f"I am caller {index}")]
            first = await session.respond(history, history[-1:], timeout_s=60)
            history += [assistant(first), user(f"weather in City{index}")]
            second = await session.respond(history, history[-1:], timeout_s=60)
            return first.text, dict(second.tool_calls[0].arguments)
        finally:
            await session.close()

    async def go() -> list[tuple[str | None, dict[str, Any]]]:
        try:
            return await asyncio.gather(*(conversation(index) for index in range(count)))
        finally:
            await connector.aclose()

    results = asyncio.run(go())
    assert results == [(f"You said: I am caller {index}", {"city": f"City{index}"}) for index in range(count)]


def test_conversations_beyond_the_pool_wait_for_a_connection_instead_of_failing(
    make: Callable[..., Connector],
) -> None:
    connector = make("webhook", max_connections=2)

    async def conversation(index: int) -> str | None:
        session = await connector.open(f"conv-{index}")
        line = [user(f"caller {index}")]
        reply: AgentReply = await session.respond(line, line, timeout_s=30)
        await session.close()
        return reply.text

    async def go() -> list[str | None]:
        try:
            return await asyncio.gather(*(conversation(index) for index in range(20)))
        finally:
            await connector.aclose()

    assert asyncio.run(go()) == [f"You said: caller {index}" for index in range(20)]


# ---------------------------------------------------------------- OpenAI-compatible


def test_openai_posts_model_history_tools_key_and_extra_body(http_agent: HttpAgent) -> None:
    connector = OpenAIChatConnector(
        f"{http_agent.url}/ok/v1/",
        model="agent-1",
        api_key="sk-test",
        tools=TOOLS,
        headers={"x-test": "openai-request"},
        extra_body={"temperature": 0},
    )
    reply = talk(connector, say("hello", before=[SYSTEM]))
    [seen] = [seen for seen in http_agent.seen if seen.headers.get("x-test") == "openai-request"]
    assert seen.path == "/ok/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.body == {
        "model": "agent-1",
        "messages": [SYSTEM, user("hello")],
        "tools": TOOLS,
        "temperature": 0,
    }
    assert reply.usage == {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}


def test_openai_turns_of_a_conversation_reuse_one_kept_alive_connection(http_agent: HttpAgent) -> None:
    connector = OpenAIChatConnector(f"{http_agent.url}/ok/v1", model="m", headers={"x-test": "keep-alive"})

    async def body(session: Any) -> None:
        history: list[Message] = []
        for line in ("one", "two", "three"):
            history.append(user(line))
            history.append(assistant(await session.respond(history, history[-1:], timeout_s=5)))

    talk(connector, body)
    ports = {seen.client_port for seen in http_agent.seen if seen.headers.get("x-test") == "keep-alive"}
    assert len(ports) == 1


def test_openai_http_error_is_unreachable_with_status_and_body(make: Callable[..., Connector]) -> None:
    with pytest.raises(AgentUnreachable, match=r"HTTP 500: 'agent crashed: boom'"):
        talk(make("openai", "fail"), say("hello"))


def test_openai_json_of_the_wrong_shape_is_malformed(make: Callable[..., Connector]) -> None:
    with pytest.raises(MalformedReply, match="no choices"):
        talk(make("openai", "shape"), say("hello"))


def test_openai_text_parts_and_empty_arguments_are_read() -> None:
    completion = {
        "choices": [
            {
                "message": {
                    "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "hang_up", "arguments": ""}}
                    ],
                }
            }
        ]
    }
    body = orjson.dumps(completion)
    reply = parse_chat_completion(body)
    assert reply.text == "Hi there"
    assert [(call.name, dict(call.arguments)) for call in reply.tool_calls] == [("hang_up", {})]
    with pytest.raises(MalformedReply, match="'hang_up'.*JSON list"):
        parse_chat_completion(body.replace(b'"arguments":""', b'"arguments":"[1]"'))


# ---------------------------------------------------------------- webhook


def test_webhook_posts_the_conversation_id_and_the_whole_history(http_agent: HttpAgent) -> None:
    connector = WebhookConnector(f"{http_agent.url}/ok/webhook", headers={"x-test": "webhook-request"})
    talk(connector, say("hello", before=[SYSTEM]), conversation_id="conv-42")
    [seen] = [seen for seen in http_agent.seen if seen.headers.get("x-test") == "webhook-request"]
    assert seen.body == {"conversation_id": "conv-42", "messages": [SYSTEM, user("hello")]}


def test_a_kept_alive_connection_dropped_under_a_request_is_retried_once_on_a_fresh_one() -> None:
    for agent in serve_dropping_agent():
        assert isinstance(agent, DroppingAgent)

        async def two_turns(session: Any) -> list[str | None]:
            history: list[Message] = []
            texts = []
            for line in ("one", "two"):
                history.append(user(line))
                reply: AgentReply = await session.respond(history, history[-1:], timeout_s=5)
                history.append(assistant(reply))
                texts.append(reply.text)
            return texts

        assert talk(WebhookConnector(f"{agent.url}/hook"), two_turns) == ["You said: one", "You said: two"]
        assert (agent.requests, agent.connections) == (3, 2), "turn two was dropped once, then answered"
        with pytest.raises(AgentUnreachable, match="/always"):
            talk(WebhookConnector(f"{agent.url}/always"), say("hello"))
        assert agent.requests == 5, "a second drop is not retried"


def test_webhook_end_call_and_arguments_as_json_text(make: Callable[..., Connector]) -> None:
    assert talk(make("webhook"), say("bye")).end_call is True
    reply = talk(make("webhook", "strargs"), say("weather in Rome"))
    assert [(call.name, dict(call.arguments)) for call in reply.tool_calls] == [
        ("get_weather", {"city": "Rome"})
    ]


def test_webhook_http_error_is_unreachable_with_status_and_body(make: Callable[..., Connector]) -> None:
    with pytest.raises(AgentUnreachable, match=r"HTTP 500: 'agent crashed: boom'"):
        talk(make("webhook", "fail"), say("hello"))


def test_webhook_answer_without_reply_is_malformed(make: Callable[..., Connector]) -> None:
    with pytest.raises(MalformedReply, match="no 'reply'"):
        talk(make("webhook", "shape"), say("hello"))


# ---------------------------------------------------------------- WebSocket


def test_websocket_sends_headers_and_conversation_id_in_the_handshake(
    make: Callable[..., Connector], ws_agent: WebSocketAgent
) -> None:
    reply = talk(make("websocket", headers={"x-test": "ws-handshake"}), say("bye"), conversation_id="conv-7")
    assert reply.end_call is True
    [handshake] = [seen for seen in ws_agent.handshakes if seen.get("x-test") == "ws-handshake"]
    assert handshake["x-conversation-id"] == "conv-7"


def test_websocket_greeting_sent_unasked_comes_back_as_unsolicited(make: Callable[..., Connector]) -> None:
    reply = talk(make("websocket", "greet", first_reply_timeout_s=2.0), say("hi"))
    assert reply.text == "You said: hi"
    assert [greeting.text for greeting in reply.unsolicited] == [GREETING]


def test_websocket_opening_line_asked_of_a_quiet_agent_times_out(make: Callable[..., Connector]) -> None:
    async def body(session: Any) -> AgentReply:
        reply: AgentReply = await session.respond([], [], timeout_s=0.3)
        return reply

    with pytest.raises(AgentTimeout):
        talk(make("websocket", "quiet"), body)


@pytest.mark.parametrize(
    ("behaviour", "error", "match"),
    [
        ("binary", MalformedReply, "binary frame"),
        ("wrongtype", MalformedReply, "type 'typing', not 'reply'"),
        ("hangup", AgentUnreachable, "closed the connection .code 1011: agent crashed"),
        ("reject", AgentUnreachable, "HTTP 403"),
    ],
)
def test_websocket_failures(
    make: Callable[..., Connector], behaviour: str, error: type[AgentError], match: str
) -> None:
    with pytest.raises(error, match=match):
        talk(make("websocket", behaviour), say("hello"))


def test_websocket_aclose_hangs_up_conversations_left_open(make: Callable[..., Connector]) -> None:
    connector = make("websocket")

    async def go() -> None:
        session = await connector.open("left-open")
        await connector.aclose()
        await session.respond([user("anyone?")], [user("anyone?")], timeout_s=2)

    with pytest.raises(AgentUnreachable, match="closed the connection"):
        asyncio.run(go())


# ---------------------------------------------------------------- registry


def test_registry_builds_each_kind_and_the_connector_works(
    http_agent: HttpAgent, ws_agent: WebSocketAgent
) -> None:
    openai = connector_from_config(
        "openai", {"kind": "openai", "base_url": f"{http_agent.url}/ok/v1", "model": "m", "tools": TOOLS}
    )
    webhook = connector_from_config(
        "webhook", {"url": f"{http_agent.url}/ok/webhook", "max_connections": 600}
    )
    websocket = connector_from_config(
        "websocket", {"url": f"{ws_agent.url}/quiet", "first_reply_timeout_s": 0}
    )
    assert isinstance(openai, OpenAIChatConnector)
    assert isinstance(webhook, WebhookConnector)
    assert isinstance(websocket, WebSocketConnector)
    for connector in (openai, webhook, websocket):
        assert talk(connector, say("hello")).text == "You said: hello"


def test_registry_reads_the_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_KEY_FOR_TEST", "sk-env")
    connector = connector_from_config(
        "openai", {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key_env": "AGENT_KEY_FOR_TEST"}
    )
    assert isinstance(connector, OpenAIChatConnector)
    assert connector.pool.headers["authorization"] == "Bearer sk-env"
    asyncio.run(connector.aclose())
    monkeypatch.delenv("AGENT_KEY_FOR_TEST")
    with pytest.raises(InputError, match="'AGENT_KEY_FOR_TEST'.*not set"):
        connector_from_config(
            "openai", {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key_env": "AGENT_KEY_FOR_TEST"}
        )


@pytest.mark.parametrize(
    ("kind", "settings", "match"),
    [
        ("grpc", {}, r"unknown connector kind 'grpc'; known kinds: openai, pcm, twilio, webhook, websocket"),
        ("openai", {"model": "m"}, r"'openai': setting 'base_url' is required"),
        ("openai", {"base_url": "http://x/v1"}, r"setting 'model' is required"),
        ("openai", {"base_url": "ftp://x/v1", "model": "m"}, r"'base_url' must be a http or https URL"),
        ("openai", {"base_url": "http://x/v1", "model": "m", "tools": {"a": 1}}, r"'tools' must be a list"),
        ("openai", {"base_url": "http://x/v1", "model": "m", "api_key": "k", "api_key_env": "K"}, "not both"),
        (
            "webhook",
            {"url": "http://x/hook", "max_connections": "many"},
            r"'max_connections' must be a positive",
        ),
        ("webhook", {"url": "http://x/hook", "max_connections": 0}, r"'max_connections' must be a positive"),
        ("webhook", {"url": "http://x/hook", "headers": {"x": 1}}, r"'headers' must be a mapping of strings"),
        ("webhook", {"url": "http://x/hook", "base-url": "y"}, r"unknown setting\(s\) 'base-url'; known: "),
        ("websocket", {"url": "http://x/chat"}, r"'url' must be a ws or wss URL"),
        (
            "websocket",
            {"url": "ws://x/chat", "first_reply_timeout_s": -1},
            r"'first_reply_timeout_s' must be",
        ),
        ("websocket", [("url", "ws://x")], r"settings must be a mapping"),
    ],
)
def test_registry_names_what_is_wrong(kind: str, settings: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        connector_from_config(kind, settings)


# ---------------------------------------------------------------- the documented recipe


def _doc_blocks() -> dict[str, str]:
    """The recipe's Python blocks, by the path named on their first line (``# path``)."""
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    return {path: code for path, code in blocks}


def test_the_recipe_in_the_docs_builds_a_connector_that_passes_its_template_tests(
    http_agent: HttpAgent,
) -> None:
    """docs/simulation-connectors.md's example connector and test template, run as written."""
    blocks = _doc_blocks()
    name = "convoscope.simulate.connectors.ask_json"
    module = types.ModuleType(name)
    module.__package__ = "convoscope.simulate.connectors"
    sys.modules[name] = module
    try:
        exec(
            compile(blocks["src/convoscope/simulate/connectors/ask_json.py"], "ask_json.py", "exec"),
            module.__dict__,
        )
        template: dict[str, Any] = {"__name__": "recipe_template"}
        exec(compile(blocks["tests/simulate/test_connectors.py"], "template.py", "exec"), template)
    finally:
        del sys.modules[name]
    tests = {key: value for key, value in template.items() if key.startswith("test_")}
    assert len(tests) >= 4
    for test in tests.values():
        test(http_agent)
