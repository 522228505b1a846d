"""A voice suite run by the server: each call is stored with its recording, which the audio analysis scores.

The run is started over the API against the reference agent's voice front on loopback; the stored call
names its stereo recording in the blob store, the post-ingest audio analysis runs on it like on any
production call, and its turn-taking results are the call's scores.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from convoscope.demo.agent import ReferenceAgentServer
from convoscope.demo.agent.voice import VoiceOptions
from convoscope.server.app import create_app
from convoscope.server.services import Services

SUITE = """\
kind: scenario
id: book
goal: Book a cleaning.
script:
  lines: ["I would like to book a cleaning, please.", "Tuesday works for me."]
  closing: null
---
kind: suite
id: voice
scenarios: [book]
metrics: []
"""


@pytest.fixture(scope="module")
def voice_url() -> Iterator[str]:
    with ReferenceAgentServer(voice=VoiceOptions()) as server:
        yield server.twilio_url


@pytest.fixture
def live(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, run_worker=False)) as client:
        yield client


def test_a_voice_run_stores_each_call_with_its_recording_and_its_audio_scores(
    live: TestClient, auth: dict[str, str], key: str, services: Services, voice_url: str
) -> None:
    headers = {**auth, "content-type": "application/yaml"}
    assert (
        live.post("/api/v1/simulation/definitions:import", content=SUITE, headers=headers).status_code == 200
    )
    params = {"greeting": "Hello, clinic.", "replies": "Sure, which day?|Booked. Goodbye."}
    agent = {"connector": {"kind": "twilio", "url": voice_url, "custom_parameters": params}}
    assert live.put("/api/v1/simulation/agents/clinic-voice", json=agent, headers=auth).status_code == 201
    started = live.post(
        "/api/v1/simulation/runs:start", json={"suite": "voice", "agent": "clinic-voice"}, headers=auth
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    with live.websocket_connect(f"/api/v1/simulation/runs/{run_id}/progress?key={key}") as ws:
        while (message := ws.receive_json())["type"] != "done":
            pass
    assert message["totals"] == {"passed": 1, "failed": 0, "errored": 0}, message

    (item,) = live.get("/api/v1/calls", params={"source": "simulation"}, headers=auth).json()["items"]
    assert services.jobs.run_until_idle() >= 1
    stored = live.get(f"/api/v1/calls/{item['id']}", headers=auth).json()
    call = stored["call"]
    (recording,) = call["recordings"]
    assert recording["uri"].startswith("blob:") and recording["channels"] == 2
    assert recording["channel_map"] == {"0": "user", "1": "agent"}
    audio = live.get(f"/api/v1/calls/{item['id']}/recording", headers=auth)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert [u["kind"] for u in call["metadata"]["voice"]["truth"]["utterances"]] == ["line", "line"]
    scores = {score["metric"]: score for score in stored["scores"]}
    gap = scores["turn_taking.response_gap_p50_s"]
    # The reference agent answers 500 ms of silence + 200 ms of processing after the caller's line.
    assert gap["source"] == "audio" and 0.6 < gap["value"] < 1.0, gap
    assert scores["turn_taking.missed_barge_ins"]["value"] == 0
