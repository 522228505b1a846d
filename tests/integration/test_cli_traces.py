"""``convoscope traces`` as a user runs it: on a stopped data directory and through a running server,
the same filters give the same traces, and one trace prints as a tree."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from convoscope.config import Settings
from convoscope.model import Span
from convoscope.runtime.stores import open_stores

from .conftest import AUTH, ServerProcess, run_cli

RAG, CHAT = "a" * 32, "b" * 32


def _spans() -> list[Span]:
    def span(trace: str, ident: str, parent: str | None, name: str, at: str, **extra: object) -> Span:
        body = {
            "trace_id": trace,
            "span_id": ident,
            "parent_span_id": parent,
            "name": name,
            "start": at,
            "end": at,
            "resource_attributes": {"service.name": "rag-app"},
            **extra,
        }
        return Span.model_validate(body)

    return [
        span(RAG, "1" * 16, None, "rag chain", "2026-09-01T12:00:00Z"),
        span(
            RAG,
            "2" * 16,
            "1" * 16,
            "llm",
            "2026-09-01T12:00:01Z",
            attributes={"llm.model_name": "gpt-4o-mini"},
        ),
        span(
            CHAT,
            "3" * 16,
            None,
            "chat",
            "2026-09-01T12:05:00Z",
            status_code="error",
            attributes={"gen_ai.request.model": "gpt-4o"},
        ),
    ]


def _listed(data_dir: Path, *args: str) -> list[str]:
    result = run_cli("traces", "list", "--json", *args, data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return [item["trace_id"] for item in json.loads(result.stdout)]


def test_traces_are_found_on_a_stopped_data_dir_and_through_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stores = open_stores(Settings(data_dir=data))
    project = stores.meta.ensure_project("default").id
    stores.store.insert_spans(project, _spans())
    stores.close()

    assert _listed(data) == [CHAT, RAG]
    assert _listed(data, "--errors") == [CHAT]
    assert _listed(data, "--model", "gpt-4o-mini") == [RAG]
    assert _listed(data, "--since", "2026-09-01T12:01:00Z") == [CHAT]
    shown = run_cli("traces", "show", RAG, data_dir=data)
    assert shown.returncode == 0 and "rag chain" in shown.stdout and "  llm  +1000 ms" in shown.stdout
    bad = run_cli("traces", "list", "--attribute", "nokey", data_dir=data)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    missing = run_cli("traces", "show", "c" * 32, data_dir=data)
    assert missing.returncode != 0 and "not found" in missing.stderr

    server = ServerProcess(data)
    server.start()
    try:
        export = {
            "resourceSpans": [
                {
                    "resource": {"attributes": []},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "d" * 32,
                                    "spanId": "4" * 16,
                                    "name": "late chat",
                                    "kind": 1,
                                    "startTimeUnixNano": "1788000000000000000",
                                    "endTimeUnixNano": "1788000001000000000",
                                    "attributes": [
                                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}
                                    ],
                                }
                            ]
                        }
                    ],
                }
            ]
        }
        assert httpx.post(f"{server.url}/v1/traces", json=export, headers=AUTH).status_code == 200
        deadline = time.monotonic() + 20
        while "d" * 32 not in _listed(data, "--model", "gpt-4o") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _listed(data, "--model", "gpt-4o") == [CHAT, "d" * 32]  # the same filter, now over HTTP
        sessions = run_cli("traces", "sessions", "--json", data_dir=data)
        assert sessions.returncode == 0 and json.loads(sessions.stdout) == []  # none names a conversation
    finally:
        server.stop()
