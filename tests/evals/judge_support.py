"""Fixtures and helpers for the judge tests: a real loopback chat-completions server and a client on it.

Test modules import the fixtures they use by name (``from .judge_support import fake_llm, judge``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from convoscope.evals.llm import JudgeClient, JudgeConfig
from convoscope.testing.openai_server import FakeOpenAIServer, RecordedRequest, Reply, json_reply

__all__ = ["Waits", "fake_llm", "judge", "judge_config", "script", "system_of", "user_of"]


class Waits(list[float]):
    """An injected ``sleep`` that records the waits the client chose instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAIServer]:
    """A started fake server with the full structured-output support."""
    with FakeOpenAIServer() as server:
        yield server


def judge_config(server: FakeOpenAIServer, tmp_path: Path | None = None, **options: Any) -> JudgeConfig:
    """A config pointed at ``server``; with ``tmp_path`` the cache lives there."""
    base: dict[str, Any] = {"base_url": server.url, "model": "judge-model", "backoff_initial_s": 0.01}
    if tmp_path is not None:
        base["cache_path"] = tmp_path / "judge_cache.sqlite"
    return JudgeConfig(**{**base, **options})


@pytest.fixture
def judge(fake_llm: FakeOpenAIServer, tmp_path: Path) -> Iterator[JudgeClient]:
    """A client of ``fake_llm`` with a cache in the test's directory and waits recorded, not slept."""
    client = JudgeClient(judge_config(fake_llm, tmp_path), sleep=Waits())
    try:
        yield client
    finally:
        client.close()


def system_of(request: RecordedRequest) -> str:
    """The system message a request carried."""
    return next(str(m["content"]) for m in request.messages if m["role"] == "system")


def user_of(request: RecordedRequest) -> str:
    """The user (data) message a request carried."""
    return next(str(m["content"]) for m in request.messages if m["role"] == "user")


def script(server: FakeOpenAIServer, rubric_phrase: str, *replies: dict[str, Any] | Reply) -> None:
    """Answer requests whose system message contains ``rubric_phrase`` with ``replies`` in order."""
    listed = [r if isinstance(r, Reply) else json_reply(r) for r in replies]
    server.add(listed, when=lambda request: rubric_phrase in system_of(request))
