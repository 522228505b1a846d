"""A run started over the API of a real ``convoscope serve``, followed over a real WebSocket.

The server's own event loop holds the run (uvicorn, not a test portal), its worker and job runner run
as in production, so the stored calls are scored by the evaluation job without the test driving it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from websockets.sync.client import connect

from convoscope.demo.agent import ReferenceAgentServer

from .conftest import AUTH, KEY, ServerProcess

DEFINITIONS = """\
kind: scenario
id: price
goal: Find out what a cleaning costs.
unmocked_tools: pass_through
checks:
  required_tools: [{{tool: get_price}}]
script:
  lines: ["How much does a cleaning cost?"]
  replies:
    - {{when: "anything else", say: "No, thanks, bye.", hang_up: true}}
---
kind: suite
id: smoke
scenarios: [price]
personas: [neutral, impatient]
metrics: [tool_call_success]
---
kind: agent
id: clinic
connector: {{kind: openai, base_url: "{url}/v1", model: reference-agent}}
tools_url: {url}/tools
"""


def test_a_run_started_on_a_live_server_streams_its_progress_and_its_calls_are_scored(
    server: ServerProcess,
) -> None:
    server.start()
    with ReferenceAgentServer() as agent, httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as api:
        imported = api.post(
            "/api/v1/simulation/definitions:import",
            content=DEFINITIONS.format(url=agent.url),
            headers={"content-type": "text/yaml"},
        )
        assert imported.status_code == 200, imported.text
        started = api.post("/api/v1/simulation/runs:start", json={"suite": "smoke", "agent": "clinic"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        ws_url = (
            server.url.replace("http://", "ws://") + f"/api/v1/simulation/runs/{run_id}/progress?key={KEY}"
        )
        messages: list[dict[str, Any]] = []
        with connect(ws_url, open_timeout=10) as ws:
            while not messages or messages[-1]["type"] != "done":
                messages.append(json.loads(ws.recv(timeout=60)))
        assert sorted(m["persona"] for m in messages[:-1]) == ["impatient", "neutral"]
        assert messages[-1]["totals"] == {"passed": 2, "failed": 0, "errored": 0}, messages

        kept = api.get(f"/api/v1/simulation/runs/{run_id}").json()
        assert kept["status"] == "done" and kept["totals"] == {"passed": 2}

        deadline = time.monotonic() + 60
        scored: dict[str, bool | None] = {}
        while time.monotonic() < deadline:
            call = api.get(f"/api/v1/calls/{messages[0]['call_id']}")
            if call.status_code == 200:
                scored = {s["metric"]: s["passed"] for s in call.json()["scores"]}
                if "scenario_checks" in scored:
                    break
            time.sleep(0.5)
        assert scored.get("scenario_checks") is True, scored
