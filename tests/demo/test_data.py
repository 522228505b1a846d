"""The demo week: deterministic, plausible, valid, and its recordings are the files it names."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
import soundfile as sf

from convoscope.demo import demo_calls, demo_recordings, recording_bytes
from convoscope.errors import NotFound
from convoscope.model import Call, CallSource, EndReason, Role

NOW = datetime(2025, 3, 14, 16, 30, 12, 345678, tzinfo=UTC)


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    return demo_calls(now=NOW)


def test_same_now_and_seed_give_the_same_calls(calls: list[Call]) -> None:
    again = demo_calls(now=NOW)
    assert [c.model_dump_json() for c in again] == [c.model_dump_json() for c in calls]
    other = demo_calls(now=NOW, seed=8)
    assert [c.external_id for c in other] != [c.external_id for c in calls]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_calls(now=datetime(2025, 3, 14, 12, 0))  # noqa: DTZ001 - the point of the test


def test_volume_spread_agents_and_sources(calls: list[Call]) -> None:
    assert len(calls) == 320
    assert len(demo_calls(now=NOW, count=12)) == 12
    assert all(NOW - timedelta(days=7) <= c.started_at and c.ended_at is not None for c in calls)
    assert all(c.ended_at is not None and c.ended_at <= NOW for c in calls)
    assert max(c.started_at for c in calls) - min(c.started_at for c in calls) > timedelta(days=6)
    assert [c.started_at for c in calls] == sorted(c.started_at for c in calls)
    assert {c.agent_id for c in calls} == {"dental-receptionist", "order-status"}
    assert {c.source for c in calls} == {CallSource.VAPI, CallSource.RETELL}
    assert {c.agent_version for c in calls if c.agent_id == "dental-receptionist"} == {"v3", "v4"}
    assert (
        len({(c.source, c.external_id) for c in calls}) == len({c.external_id for c in calls}) == len(calls)
    )
    # More calls in the business's office hours (UTC-5, 8:00-18:00) than outside them.
    office = sum(1 for c in calls if 13 <= c.started_at.hour < 23)
    assert office > 0.7 * len(calls)


def test_every_call_validates_and_round_trips(calls: list[Call]) -> None:
    for call in calls:
        assert Call.model_validate_json(call.model_dump_json()) == call
        assert Call.model_validate(call.model_dump(mode="json")) == call


def test_conversations_are_plausible(calls: list[Call]) -> None:
    for call in calls:
        low = 4 if call.end_reason is EndReason.VOICEMAIL else 6
        assert low <= len(call.turns) <= 30, call.external_id
        roles = [t.role for t in call.turns]
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), call.external_id
        assert all(t.text for t in call.turns)
        for before, after in zip(call.turns, call.turns[1:], strict=False):
            overlap = before.end_s - after.start_s
            assert overlap <= 0.6, (call.external_id, before.index)
            if overlap > 0:
                assert before.interrupted and before.role is Role.AGENT
        assert call.duration_s is not None and call.turns[-1].end_s <= call.duration_s
        for turn in call.turns:
            if turn.e2e_s is not None:
                assert turn.role is Role.AGENT
                assert turn.stt_s is not None and turn.llm_ttft_s is not None and turn.tts_ttfb_s is not None
                assert turn.stt_s + turn.llm_ttft_s + turn.tts_ttfb_s < turn.e2e_s
        if call.source is CallSource.RETELL:
            assert all(t.words for t in call.turns)
        else:
            assert all(t.words is None for t in call.turns)


def test_latency_has_a_heavy_tail_and_a_regression(calls: list[Call]) -> None:
    def e2e(version: str) -> list[float]:
        return sorted(
            t.e2e_s
            for c in calls
            if c.agent_id == "dental-receptionist" and c.agent_version == version
            for t in c.turns
            if t.e2e_s is not None
        )

    v3, v4 = e2e("v3"), e2e("v4")
    assert 0.6 <= v3[len(v3) // 2] <= 2.5
    assert max(v3) > 3.0
    assert v4[len(v4) // 2] > v3[len(v3) // 2] + 0.4
    deploy = NOW - timedelta(days=2)
    assert all(
        (c.agent_version == "v4") == (c.started_at >= deploy) for c in calls if c.agent_id != "order-status"
    )


def test_tools_end_reasons_costs_and_analysis(calls: list[Call]) -> None:
    tools = [(c, t) for c in calls for t in c.tool_calls]
    names = {t.name for _, t in tools}
    assert {"check_availability", "book_appointment", "lookup_order", "transfer_call"} <= names
    failed = [t for _, t in tools if t.success is False]
    assert len(failed) >= 10
    assert all(isinstance(t.result, dict) and "error" in t.result for t in failed)
    for call, tool in tools:
        assert tool.turn_index is not None and call.turns[tool.turn_index].role is Role.AGENT
        assert tool.start_s is not None and tool.end_s is not None and tool.start_s <= tool.end_s
        assert tool.end_s <= call.turns[tool.turn_index].start_s
        assert tool.id.startswith(call.external_id[-8:]) or tool.id.startswith("rec")
    assert len({t.id for _, t in tools}) == len(tools)

    reasons = Counter(c.end_reason for c in calls)
    assert reasons.most_common(1)[0][0] is EndReason.USER_HANGUP
    expected = {EndReason.AGENT_HANGUP, EndReason.TRANSFER, EndReason.VOICEMAIL, EndReason.SILENCE_TIMEOUT}
    assert expected | {EndReason.ERROR, EndReason.USER_HANGUP} == set(reasons)
    assert 0.01 <= reasons[EndReason.ERROR] / len(calls) <= 0.08
    assert all(c.end_reason_raw for c in calls)
    assert {c.end_reason_raw for c in calls if c.source is CallSource.VAPI} >= {"customer-ended-call"}

    for call in calls:
        assert {line.product for line in call.cost} == {"stt", "llm", "tts", "platform"}
        per_minute = call.cost_total("USD") / (call.effective_duration_s / 60)
        assert 0.04 <= per_minute <= 0.16, call.external_id
        assert call.usage.llm_prompt_tokens and call.usage.tts_characters
    analysed = [c for c in calls if c.vendor_analysis]
    assert 0.5 * len(calls) < len(analysed) < len(calls)
    assert all(isinstance(c.vendor_analysis["call_successful"], bool) for c in analysed)
    assert {"booking", "escalation", "transfer"} <= {tag for c in calls for tag in c.tags}


def test_recording_calls_match_the_shipped_files(calls: list[Call]) -> None:
    shipped = {r.sha256: r for r in demo_recordings()}
    assert 3 <= len(shipped) <= 5
    assert sum(r.size_bytes for r in shipped.values()) < 1_500_000
    recorded = [c for c in calls if c.recordings]
    assert len(recorded) == len(shipped)
    assert any(t.interrupted for c in recorded for t in c.turns)
    for call in recorded:
        (recording,) = call.recordings
        assert recording.uri is None and recording.sha256 in shipped
        demo = shipped[recording.sha256]
        data = recording_bytes(recording.sha256)
        assert hashlib.sha256(data).hexdigest() == recording.sha256 == demo.sha256
        assert recording.channel_map == {0: Role.USER, 1: Role.AGENT}
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        assert recording.format == "flac" and recording.channels == audio.shape[1] == 2
        assert recording.sample_rate == rate
        assert recording.duration_s == pytest.approx(len(audio) / rate, abs=1e-3)
        assert call.duration_s == recording.duration_s
        assert [(t.role, t.start_s, t.end_s) for t in call.turns] == [
            (t.role, t.start_s, t.end_s) for t in demo.turns
        ]
        # Each turn is audible on its own channel and the other party's channel is quiet in its middle.
        for turn in call.turns:
            mine = 0 if turn.role is Role.USER else 1
            first, last = int(turn.start_s * rate), int(turn.end_s * rate)
            assert abs(audio[first:last, mine]).max() > 0.05, (demo.file, turn.index)
            if not turn.interrupted and not any(
                t.interrupted for t in call.turns[turn.index - 1 : turn.index]
            ):
                middle = audio[(first + last) // 2 - rate // 10 : (first + last) // 2 + rate // 10, 1 - mine]
                assert abs(middle).max() < 0.02, (demo.file, turn.index)


def test_manifest_lists_exactly_the_packaged_files() -> None:
    folder = resources.files("convoscope.demo").joinpath("recordings")
    manifest = json.loads(folder.joinpath("manifest.json").read_text(encoding="utf-8"))
    listed = {entry["file"] for entry in manifest["recordings"]}
    present = {entry.name for entry in folder.iterdir() if entry.name.endswith(".flac")}
    assert listed == present
    for demo in demo_recordings():
        assert len(demo.read_bytes()) == demo.size_bytes


def test_unknown_recording_is_not_found() -> None:
    with pytest.raises(NotFound):
        recording_bytes("0" * 64)
