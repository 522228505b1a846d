"""Answers to the agent's tool calls: the scenario's mocks, else passed through, else an error.

A mock answers when its tool and its argument matchers match (the same matchers as the checks); a mock
with ``times`` answers that many calls and then lets the next one answer, so "fails once, then succeeds"
is two mocks. A call no mock answers either goes to the agent's own tool endpoint (``pass_through``) or
makes the conversation an errored one whose reason names the call: a scenario whose mocks do not cover
what the agent does is a broken test, not an agent failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..errors import ConvoscopeError
from ..evals.scenario import matches
from .connectors.base import ToolCallRequest
from .definitions import Scenario, ToolMock, UnmockedTools

__all__ = ["ToolAnswer", "ToolAnswerer", "UnmatchedTool"]


class UnmatchedTool(ConvoscopeError):
    """A tool call no mock answers, with no pass-through: the conversation is errored with this reason."""


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool call returned, and when."""

    result: Any
    success: bool
    started_s: float
    ended_s: float
    mocked: bool


def _mock_matches(mock: ToolMock, call: ToolCallRequest) -> bool:
    if mock.tool != call.name:
        return False
    return all(matches(m, name in call.arguments, call.arguments.get(name)) for name, m in mock.when.items())


@dataclass
class ToolAnswerer:
    """One conversation's tool answers (mock use counts are per conversation)."""

    scenario: Scenario
    tools_url: str | None = None
    client: httpx.AsyncClient | None = None
    started: float = field(default_factory=time.monotonic)
    _used: dict[int, int] = field(default_factory=dict)

    async def answer(self, call: ToolCallRequest) -> ToolAnswer:
        """The answer to one tool call; raises :class:`UnmatchedTool` when nothing may answer it."""
        begun = time.monotonic() - self.started
        mock = self._mock_for(call)
        if mock is not None:
            if mock.delay_s:
                await asyncio.sleep(mock.delay_s)
            return ToolAnswer(mock.result, mock.success, begun, time.monotonic() - self.started, mocked=True)
        if self.scenario.unmocked_tools is UnmockedTools.PASS_THROUGH and self.tools_url and self.client:
            result, success = await self._pass_through(call)
            return ToolAnswer(result, success, begun, time.monotonic() - self.started, mocked=False)
        shown = orjson.dumps(dict(call.arguments)).decode()
        raise UnmatchedTool(
            f"tool call {call.name}({shown}) matched no mock of scenario {self.scenario.id!r}"
        )

    def _mock_for(self, call: ToolCallRequest) -> ToolMock | None:
        for index, mock in enumerate(self.scenario.tool_mocks):
            if mock.times is not None and self._used.get(index, 0) >= mock.times:
                continue
            if _mock_matches(mock, call):
                self._used[index] = self._used.get(index, 0) + 1
                return mock
        return None

    async def _pass_through(self, call: ToolCallRequest) -> tuple[Any, bool]:
        assert self.client is not None and self.tools_url is not None
        url = f"{self.tools_url.rstrip('/')}/{call.name}"
        try:
            response = await self.client.post(url, json=dict(call.arguments))
        except httpx.HTTPError as exc:
            raise UnmatchedTool(f"tool call {call.name} passed through to {url} failed: {exc}") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = {"error": response.text[:500]}
        return body, response.is_success and not (isinstance(body, Mapping) and body.get("error"))
