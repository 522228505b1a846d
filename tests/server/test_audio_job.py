"""The audio.analyze job through the real server path: upload, worker, job runner, scores on the call.

Recordings are generated with known intervals (``convoscope.testing``); their speech-like bursts are
synthetic, so the project's analysis settings pick the webrtc detector, whose boundaries on them are exact
to the 10 ms frame (silero is trained on real speech and is exercised on espeak-ng in tests/audio).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from convoscope.analysis.job import PROJECT_PARAMS_PATH
from convoscope.audio.segments import VAD_PARAMS_VERSION
from convoscope.cli.demo import seed_demo
from convoscope.demo.data import demo_recordings
from convoscope.runtime.kinds import AUDIO_ANALYZE
from convoscope.server.services import Services
from convoscope.testing import call_payload, stereo_wav_bytes

# The intervals of call_payload's turns: agent 0.4-2.2, user 2.8-4.3, agent 5.2-6.9, user 7.5-9.0.
USER = [(2.8, 4.3), (7.5, 9.0)]
AGENT = [(0.4, 2.2), (5.2, 6.9)]
DURATION_S = 9.5
TOL_S = 0.02

Drain = Callable[[], int]


@pytest.fixture(autouse=True)
def webrtc_project(services: Services) -> None:
    services.meta.update_project_settings(
        services.default_project.id, PROJECT_PARAMS_PATH, {"backend": "webrtc"}
    )


def _upload(client: TestClient, auth: dict[str, str], external_id: str, wav: bytes, channel_map: str) -> str:
    data = {"call": orjson.dumps(call_payload(external_id=external_id)).decode()}
    if channel_map:
        data["channel_map"] = channel_map
    response = client.post(
        "/api/v1/calls", data=data, files={"recording": ("call.wav", wav, "audio/wav")}, headers=auth
    )
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def _ingest_json(
    client: TestClient, auth: dict[str, str], external_id: str, recordings: list[dict[str, Any]]
) -> str:
    payload = call_payload(external_id=external_id, recordings=recordings)
    response = client.post("/api/v1/calls", json=payload, headers=auth)
    assert response.status_code == 202, response.text
    return str(response.json()["ids"][0])


def _run(services: Services, drain: Drain) -> None:
    drain()
    services.jobs.run_until_idle()


def _detail(client: TestClient, auth: dict[str, str], call_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/calls/{call_id}", headers=auth)
    assert response.status_code == 200
    detail: dict[str, Any] = response.json()
    return detail


def _scores(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        score["metric"].removeprefix("turn_taking."): score
        for score in detail["scores"]
        if score["metric"].startswith("turn_taking.")
    }


def _jobs(detail: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    jobs = [job for job in detail["jobs"] if job["kind"] == AUDIO_ANALYZE]
    return [(job["kind"], job["status"], job["error"]) for job in jobs]


def _stereo() -> bytes:
    return stereo_wav_bytes(left=USER, right=AGENT, duration_s=DURATION_S, noise_db=-60)


def _mono(intervals: list[tuple[float, float]], *, left: bool) -> bytes:
    """One party's side as a mono WAV (the matching channel of a generated stereo file)."""
    stereo = stereo_wav_bytes(
        left=intervals if left else [], right=[] if left else intervals, duration_s=DURATION_S, noise_db=-60
    )
    samples, rate = sf.read(io.BytesIO(stereo), dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, np.ascontiguousarray(samples[:, 0 if left else 1]), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _check_known_values(scores: dict[str, dict[str, Any]]) -> None:
    # One answered user turn: it ends at 4.3 s and the agent starts at 5.2 s.
    assert scores["response_gap_p50_s"]["value"] == pytest.approx(0.9, abs=TOL_S)
    assert scores["first_response_s"]["value"] == pytest.approx(0.4, abs=TOL_S)
    assert scores["agent_talk_ratio"]["value"] == pytest.approx((1.8 + 1.7) / DURATION_S, abs=0.01)
    assert scores["agent_interruptions"]["value"] == 0.0
    assert scores["talk_over_s"]["value"] == 0.0
    assert scores["longest_silence_s"]["value"] == pytest.approx(0.9, abs=TOL_S)
    assert all(score["source"] == "audio" for score in scores.values())


def test_uploaded_stereo_call_is_analysed_and_scores_match_the_intervals(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    call_id = _upload(client, auth, "stereo", _stereo(), "user,agent")
    _run(services, drain)
    detail = _detail(client, auth, call_id)
    assert _jobs(detail) == [(AUDIO_ANALYZE, "done", None)]
    scores = _scores(detail)
    _check_known_values(scores)
    assert scores["response_gap_p50_s"]["params"]["vad"]["backend"] == "webrtc"
    # The third turn reports e2e 0.9 s and components 0.1 + 0.45 + 0.15 s against an audio gap of 0.9 s.
    vendor = scores["vendor_e2e_minus_audio_gap_s"]
    assert vendor["value"] == pytest.approx(0.0, abs=TOL_S)
    [pair] = vendor["evidence"]["pairs"]
    assert pair["transcript_turn_index"] == 2
    assert pair["audio_gap_s"] == pytest.approx(0.9, abs=TOL_S)
    assert pair["e2e_minus_audio_gap_s"] == pytest.approx(0.0, abs=TOL_S)
    assert scores["unattributed_latency_s"]["value"] == pytest.approx(0.2, abs=TOL_S)


def test_channel_order_comes_from_the_map(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    swapped = stereo_wav_bytes(left=AGENT, right=USER, duration_s=DURATION_S, noise_db=-60)
    call_id = _upload(client, auth, "swapped", swapped, "agent,user")
    _run(services, drain)
    _check_known_values(_scores(_detail(client, auth, call_id)))


def test_mono_pair_is_analysed_like_stereo(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    user_sha = services.blobs.put(_mono(USER, left=True))
    agent_sha = services.blobs.put(_mono(AGENT, left=False))
    recordings = [
        {"uri": f"blob:{agent_sha}", "format": "wav", "channels": 1, "channel_map": {"0": "agent"}},
        {"uri": f"blob:{user_sha}", "format": "wav", "channels": 1, "channel_map": {"0": "user"}},
    ]
    call_id = _ingest_json(client, auth, "pair", recordings)
    _run(services, drain)
    detail = _detail(client, auth, call_id)
    assert _jobs(detail) == [(AUDIO_ANALYZE, "done", None)]
    _check_known_values(_scores(detail))


def test_mono_recording_gets_not_scorable_results(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    call_id = _upload(client, auth, "mono", _mono(USER, left=True), "")
    _run(services, drain)
    detail = _detail(client, auth, call_id)
    assert _jobs(detail) == [(AUDIO_ANALYZE, "done", None)]
    scores = _scores(detail)
    assert "response_gap_p50_s" in scores and "talk_over_s" in scores
    for score in scores.values():
        assert score["value"] is None and score["passed"] is None
        assert "mono recording" in score["evidence"]["not_scorable"]


def test_corrupt_recording_fails_its_job_and_the_next_call_is_still_analysed(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    truncated = services.blobs.put(_stereo()[:5000])
    missing = "0" * 64
    recording = {"format": "wav", "channels": 2, "channel_map": {"0": "user", "1": "agent"}}
    batch = [
        call_payload(external_id="corrupt", recordings=[{**recording, "uri": f"blob:{truncated}"}]),
        call_payload(external_id="missing", recordings=[{**recording, "uri": f"blob:{missing}"}]),
    ]
    response = client.post("/api/v1/calls", json=batch, headers=auth)
    assert response.status_code == 202
    corrupt_id, missing_id = response.json()["ids"]
    good_id = _upload(client, auth, "good", _stereo(), "user,agent")
    _run(services, drain)

    [(kind, status, error)] = _jobs(_detail(client, auth, corrupt_id))
    assert (kind, status) == (AUDIO_ANALYZE, "failed")
    assert error is not None and f"blob:{truncated}" in error and "truncated" in error
    [(_, status, error)] = _jobs(_detail(client, auth, missing_id))
    assert status == "failed" and error is not None and missing in error
    assert _scores(_detail(client, auth, corrupt_id)) == {}
    good = _detail(client, auth, good_id)
    assert _jobs(good) == [(AUDIO_ANALYZE, "done", None)]
    _check_known_values(_scores(good))


def test_call_without_a_stored_recording_gets_no_job(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    call_id = _ingest_json(client, auth, "norec", [{"source_url": "https://example.invalid/a.wav"}])
    _run(services, drain)
    detail = _detail(client, auth, call_id)
    assert _jobs(detail) == [] and _scores(detail) == {}


def test_reanalysis_route_replaces_results_with_new_parameters(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    call_id = _upload(client, auth, "re", _stereo(), "user,agent")
    other_id = _upload(client, auth, "other", _stereo(), "user,agent")
    _run(services, drain)
    before = _scores(_detail(client, auth, call_id))
    assert before["long_silences"]["value"] == 0.0

    response = client.post(
        "/api/v1/jobs/audio.analyze",
        json={"call_ids": [call_id], "params": {"long_silence_s": 0.5}},
        headers=auth,
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"kind": AUDIO_ANALYZE, "queued": 1, "call_ids": [call_id]}
    services.jobs.run_until_idle()

    after = _scores(_detail(client, auth, call_id))
    assert set(after) == set(before)
    # Mutual silences 2.2-2.8, 4.3-5.2 and 6.9-7.5 s are all longer than 0.5 s.
    assert after["long_silences"]["value"] == 3.0
    assert after["long_silences"]["params"]["long_silence_s"] == 0.5
    assert after["long_silences"]["params"]["vad"]["backend"] == "webrtc"  # the project's setting stays
    newer = datetime.fromisoformat(after["long_silences"]["evaluated_at"])
    assert newer > datetime.fromisoformat(before["long_silences"]["evaluated_at"])
    untouched = _scores(_detail(client, auth, other_id))
    assert untouched["long_silences"]["params"]["long_silence_s"] == 10.0


def test_reanalysis_with_another_silero_state_reset_uses_it(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    """The job keeps one silero backend for the default reset; a project's other reset gets its own."""
    call_id = _upload(client, auth, "reset", _stereo(), "user,agent")
    _run(services, drain)
    for reset_s in (0.5, 2.0):
        response = client.post(
            "/api/v1/jobs/audio.analyze",
            json={"call_ids": [call_id], "params": {"backend": "silero", "vad.state_reset_s": reset_s}},
            headers=auth,
        )
        assert response.status_code == 202, response.text
        services.jobs.run_until_idle()
        detail = _detail(client, auth, call_id)
        assert _jobs(detail)[-1] == (AUDIO_ANALYZE, "done", None)
        vad = _scores(detail)["response_gap_p50_s"]["params"]["vad"]
        assert (vad["backend"], vad["state_reset_s"], vad["version"]) == (
            "silero",
            reset_s,
            VAD_PARAMS_VERSION,
        )


def test_reanalysis_by_filter_selects_calls_with_recordings(
    client: TestClient, auth: dict[str, str], services: Services, drain: Drain
) -> None:
    recorded = _upload(client, auth, "rec", _stereo(), "user,agent")
    _ingest_json(client, auth, "plain", [])
    _run(services, drain)
    response = client.post(
        "/api/v1/jobs/audio.analyze",
        json={"agent_id": "test-agent", "since": "2025-01-01T00:00:00Z"},
        headers=auth,
    )
    assert response.status_code == 202
    assert response.json()["call_ids"] == [recorded]
    none = client.post("/api/v1/jobs/audio.analyze", json={"agent_id": "nobody"}, headers=auth)
    assert none.json()["queued"] == 0


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"params": {"no_such_knob": 1}}, 400, "no_such_knob"),
        ({"params": {"threshold": 7}}, 400, "threshold"),
        ({"call_ids": ["nope"]}, 404, "nope"),
        ({"unknown_filter": 1}, 422, "unknown_filter"),
        ({"since": "2025-01-01T00:00:00"}, 422, "since"),
        ({"params": {"vad": {"threshold": {"x": 1}}}}, 400, "threshold"),
        ({"params": {"turn_taking": {"version": "tt-0"}}}, 400, "turn_taking.version"),
        ({"params": {"vad": [1, 2]}}, 400, "'vad'"),
        ({"call_ids": [""]}, 404, "call  not found"),
        ({"call_ids": "abc"}, 422, "call_ids"),
    ],
)
def test_reanalysis_refuses_bad_requests_and_queues_nothing(
    client: TestClient,
    auth: dict[str, str],
    services: Services,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    response = client.post("/api/v1/jobs/audio.analyze", json=body, headers=auth)
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert services.meta.job_counts()["pending"] == 0


def test_reanalysis_needs_a_key(client: TestClient) -> None:
    assert client.post("/api/v1/jobs/audio.analyze", json={}).status_code == 401


def test_demo_recordings_are_analysed_with_the_default_detector(
    client: TestClient, auth: dict[str, str], services: Services
) -> None:
    project = services.default_project.id
    services.meta.update_project_settings(project, PROJECT_PARAMS_PATH, None)  # back to the defaults: silero
    count = len(demo_recordings()) + 2
    assert seed_demo(services, count=count) == count
    services.jobs.run_until_idle()
    page = client.get("/api/v1/calls", params={"has_recording": "true"}, headers=auth).json()
    assert len(page["items"]) == len(demo_recordings())
    for item in page["items"]:
        detail = _detail(client, auth, item["id"])
        assert _jobs(detail) == [(AUDIO_ANALYZE, "done", None)]
        recording = next(
            r for r in demo_recordings() if r.sha256 == detail["call"]["recordings"][0]["sha256"]
        )
        gaps = [
            nxt.start_s - prev.end_s
            for prev, nxt in zip(recording.turns, recording.turns[1:], strict=False)
            if prev.role.value == "user" and nxt.role.value == "agent"
        ]
        scores = _scores(detail)
        # Real (espeak-ng) speech, analysed with silero, against the timing the recording was built with.
        assert scores["response_gap_p50_s"]["value"] == pytest.approx(float(np.median(gaps)), abs=0.03)
        assert scores["response_gap_p50_s"]["params"]["vad"]["backend"] == "silero"
        # The demo's vendor e2e latency is the scripted gap, so vendor and audio truth agree to the frame.
        assert scores["vendor_e2e_minus_audio_gap_s"]["value"] == pytest.approx(0.0, abs=0.03)
    plain = client.get("/api/v1/calls", params={"has_recording": "false"}, headers=auth).json()["items"]
    assert plain and all(_jobs(_detail(client, auth, item["id"])) == [] for item in plain)
