"""The call page in the browser: the stereo waveforms from peaks and the one player, seeking from the
transcript, scores highlighting what they cite, the span waterfall, missing data, hostile text, and a
call with 500 turns and 5,000 spans.

Calls beyond the demo's are made here: through the API (``POST /api/v1/calls``, ``POST /v1/traces``) where
the test is about what a client sends, and straight into the stores for the generated large call.
"""

from __future__ import annotations

import base64
import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import soundfile as sf
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.sync_api import Browser, Dialog, Page, Request, expect

from convoscope.ingest.otlp import PriceTable
from convoscope.model import Call, CallSource, MetricResult, MetricSource, Recording, Role, Span, Turn
from convoscope.server.ui.call_view import CalibrationBadge, calibration_badge
from convoscope.server.ui.definitions import Definition
from convoscope.server.ui.evidence import citations
from convoscope.server.ui.peaks import MAX_POINTS, compute_peaks
from convoscope.server.ui.waterfall import waterfall
from convoscope.server.worker import assign_identity
from convoscope.store.base import CallFilter, StoredCall

from .conftest import UiServer

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(2)>"
SEEK_TOLERANCE_S = 0.1
BIG_TURNS = 500
BIG_SPANS = 5000
BIG_SECONDS = 300.0


# -- calls made for these tests ------------------------------------------------------------------------


def _api(ui: UiServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ui.key}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{ui.url}{path}", headers=headers, timeout=30, **kwargs)


def _ingest(ui: UiServer, call: dict[str, Any]) -> str:
    """Send a canonical call through the API and have the outbox worker store it; returns its id."""
    answer = _api(ui, "POST", "/api/v1/calls", json=call)
    assert answer.status_code == 202, answer.text
    (call_id,) = answer.json()["ids"]
    while ui.services.worker.drain_once():
        pass
    assert ui.services.store.get_call(ui.project_id, call_id) is not None
    return str(call_id)


def _started() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


@dataclass
class Recorded:
    """A demo call with a stereo recording and its audio analysis."""

    stored: StoredCall

    @property
    def id(self) -> str:
        assert self.stored.call.id is not None
        return self.stored.call.id


@pytest.fixture(scope="module")
def recorded(ui: UiServer) -> Recorded:
    page = ui.services.store.list_calls(ui.project_id, CallFilter(has_recording=True), limit=50, cursor=None)
    for item in page.items:
        stored = ui.services.store.get_call(ui.project_id, item.id)
        assert stored is not None
        recording = stored.call.recordings[0]
        gaps = [s for s in stored.scores if s.metric == "turn_taking.response_gap_p50_s"]
        if (
            recording.channels == 2
            and len(recording.channel_map) == 2
            and gaps
            and gaps[0].evidence["responses"]
        ):
            return Recorded(stored)
    raise AssertionError("the demo has no stereo recording with its audio analysis")


@pytest.fixture(scope="module")
def bare_call(ui: UiServer) -> str:
    """A call sent through the API with turns only: no recording, no scores (no evaluation runs), no spans."""
    return _ingest(
        ui,
        {
            "source": "generic",
            "external_id": f"bare-{uuid.uuid4().hex}",
            "started_at": _started(),
            "turns": [
                {"role": "agent", "text": "Hello, how can I help?", "start_s": 0.0, "end_s": 2.0},
                {"role": "user", "text": "Just checking.", "start_s": 2.5, "end_s": 4.0},
            ],
        },
    )


@pytest.fixture(scope="module")
def hostile_call(ui: UiServer) -> str:
    """Markup in every place a call carries text: turns, tool arguments and results, metadata, tags, the
    agent id, a vendor's raw event, a score's metric name, parameters and evidence, and a job's error."""
    external_id = f"hostile-{uuid.uuid4().hex}"
    call_id = _ingest(
        ui,
        {
            "source": "vapi",
            "external_id": external_id,
            "agent_id": HOSTILE_IMG,
            "started_at": _started(),
            "tags": ["<b>bold</b>"],
            "turns": [
                {"role": "user", "text": f"hi {HOSTILE} and {HOSTILE_IMG}", "start_s": 0.0, "end_s": 2.0},
                {
                    "role": "agent",
                    "text": "</td></tr></table><script>alert(3)</script>",
                    "start_s": 2.5,
                    "end_s": 4.0,
                },
            ],
            "tool_calls": [
                {
                    "id": "t1",
                    "turn_index": 1,
                    "name": "lookup<script>",
                    "arguments": {"query": HOSTILE_IMG},
                    "result": {"answer": HOSTILE},
                    "success": True,
                }
            ],
            "metadata": {"note": f"{HOSTILE} {HOSTILE_IMG}"},
            "vendor_analysis": {"summary": HOSTILE},
        },
    )
    ui.services.store.insert_scores(
        ui.project_id,
        [
            MetricResult(
                call_id=call_id,
                metric=f"custom.{HOSTILE}",
                version=HOSTILE_IMG,
                value=HOSTILE,
                params={"pattern": HOSTILE},
                evidence={"quote": HOSTILE_IMG, "turn_index": 0},
                source=MetricSource.TRANSCRIPT,
            )
        ],
    )
    event = orjson.dumps({"type": "end-of-call-report", "transcript": f"{HOSTILE} {HOSTILE_IMG}"})
    ui.services.meta.add_source_event(ui.project_id, "vapi", external_id, "test-event-1", event)
    ui.services.meta.record_outcomes(ui.project_id, "recording.fetch", {call_id: f"HTTP 403 {HOSTILE}"})
    return call_id


# -- a traced call through OTLP -------------------------------------------------------------------------

_T0 = time.time() - 7200.0


def _ns(offset_s: float) -> int:
    return int(round((_T0 + offset_s) * 1e9))


def _otlp_json(spans: list[ReadableSpan]) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping with ids as hex, as OTLP asks."""
    document = MessageToDict(encode_spans(spans))
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return orjson.dumps(document)


@dataclass
class Traced:
    call_id: str
    span_count: int


@pytest.fixture(scope="module")
def traced(ui: UiServer) -> Traced:
    """A Pipecat-style conversation (conversation → turn → stt/llm/tts) sent as OTLP/JSON, assembled into
    a call by the server's own job."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "ui-test-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    conversation = f"ui-{uuid.uuid4().hex[:12]}"

    def emit(
        scope: str, name: str, start: float, end: float, attrs: dict[str, Any], parent: Any = None
    ) -> Any:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = provider.get_tracer(scope).start_span(
            name, context=context, attributes=attrs, start_time=_ns(start)
        )
        span.end(end_time=_ns(end))
        return span

    root = provider.get_tracer("pipecat.turn").start_span(
        "conversation",
        attributes={"conversation.id": conversation, "conversation.type": "voice"},
        start_time=_ns(0.0),
    )
    context_root = root
    for n in range(2):
        at = 1 + 8 * n
        turn = emit(
            "pipecat.turn",
            "turn",
            at,
            at + 7,
            {"turn.number": n + 1, "conversation.id": conversation, "turn.user_bot_latency_seconds": 0.9},
            context_root,
        )
        emit(
            "pipecat",
            "stt",
            at,
            at + 1.5,
            {"gen_ai.operation.name": "stt", "transcript": f"user says {n}", "is_final": True},
            turn,
        )
        emit(
            "pipecat",
            "llm",
            at + 1.6,
            at + 2.4,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "output": f"agent answers {n}",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
            },
            turn,
        )
        emit(
            "pipecat",
            "tts",
            at + 2.0,
            at + 5.0,
            {"gen_ai.operation.name": "tts", "text": f"agent answers {n}"},
            turn,
        )
    root.end(end_time=_ns(17.0))
    spans = list(memory.get_finished_spans())
    answer = _api(
        ui, "POST", "/v1/traces", content=_otlp_json(spans), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    trace_id = format(spans[0].context.trace_id, "032x")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the conversation is assembled once it settles (seconds)
        while ui.services.worker.drain_once():
            pass
        ui.services.jobs.run_until_idle()
        linked = {s.call_id for s in ui.services.store.list_spans(ui.project_id, trace_id=trace_id)} - {None}
        if linked:
            (call_id,) = linked
            assert call_id is not None
            return Traced(call_id, len(spans))
        time.sleep(0.25)
    raise AssertionError("the OTLP conversation was not assembled into a call")


# -- a generated call with 500 turns, 5,000 spans and a five-minute stereo recording -------------------------


def _stereo_wav(seconds: float, turns: list[Turn], rate: int = 8000) -> bytes:
    """Noise bursts where each party speaks (user left, agent right): a waveform to draw, 9.6 MB of WAV."""
    rng = np.random.default_rng(7)
    audio = np.zeros((int(seconds * rate), 2), dtype=np.float32)
    for turn in turns:
        channel = 0 if turn.role is Role.USER else 1
        a, b = int(turn.start_s * rate), int(turn.end_s * rate)
        audio[a:b, channel] = rng.uniform(-0.5, 0.5, b - a)
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


@pytest.fixture(scope="module")
def big_call(ui: UiServer) -> str:
    step = BIG_SECONDS / BIG_TURNS
    turns = [
        Turn(
            index=i,
            role=Role.AGENT if i % 2 == 0 else Role.USER,
            text=f"turn {i}: " + "words spoken in this turn " * 4,
            start_s=round(i * step, 3),
            end_s=round(i * step + step * 0.8, 3),
            e2e_s=0.9 if i % 2 == 0 and i else None,
        )
        for i in range(BIG_TURNS)
    ]
    sha = ui.services.blobs.put(_stereo_wav(BIG_SECONDS, turns))
    started = datetime.now(UTC) - timedelta(days=2)
    call = assign_identity(
        ui.project_id,
        Call(
            source=CallSource.PIPECAT,
            external_id=f"big-{uuid.uuid4().hex}",
            started_at=started,
            duration_s=BIG_SECONDS,
            turns=turns,
            recordings=[
                Recording(
                    uri=f"blob:{sha}",
                    format="wav",
                    sample_rate=8000,
                    channels=2,
                    channel_map={0: Role.USER, 1: Role.AGENT},
                    duration_s=BIG_SECONDS,
                    sha256=sha,
                )
            ],
        ),
    )
    assert call.id is not None
    ui.services.store.insert_calls(ui.project_id, [call], version=1)
    trace_id = uuid.uuid4().hex
    root = uuid.uuid4().hex[:16]
    spans = [
        Span(
            trace_id=trace_id,
            span_id=root,
            name="conversation",
            start=started,
            end=started + timedelta(seconds=BIG_SECONDS),
            call_id=call.id,
        )
    ]
    for i in range(BIG_SPANS - 1):
        begin = started + timedelta(seconds=i * BIG_SECONDS / BIG_SPANS)
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=uuid.uuid4().hex[:16],
                parent_span_id=root,
                name=f"llm {i}",
                start=begin,
                end=begin + timedelta(seconds=0.05),
                call_id=call.id,
                attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10},
            )
        )
    ui.services.store.insert_spans(ui.project_id, spans)
    return call.id


# -- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def requests(page: Page) -> Iterator[list[Request]]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    yield seen


def _open_with_player(page: Page, call_id: str) -> None:
    response = page.goto(f"/calls/{call_id}")
    assert response is not None and response.status == 200
    page.wait_for_function("() => window.convoscopeCall && window.convoscopeCall.ready", timeout=15_000)


def _player_time(page: Page) -> float:
    value = page.evaluate("() => window.convoscopeCall.media.currentTime")
    assert value == pytest.approx(page.evaluate("() => window.convoscopeCall.ws.getCurrentTime()"))
    return float(value)


def _click_turn(page: Page, index: int) -> None:
    page.locator(f"#turn-{index} td.text .said").click()


# -- the tests ---------------------------------------------------------------------------------------------


def test_a_stereo_call_shows_two_waveforms_from_peaks_and_clicking_a_turn_seeks_the_player(
    page: Page, ui: UiServer, recorded: Recorded, requests: list[Request]
) -> None:
    _open_with_player(page, recorded.id)
    recording = recorded.stored.call.recordings[0]
    decoded = page.evaluate(
        "() => { const d = window.convoscopeCall.ws.getDecodedData();"
        " return [d.numberOfChannels, d.duration]; }"
    )
    assert decoded[0] == 2 and decoded[1] == pytest.approx(recording.duration_s, abs=0.05)
    labels = page.locator(".lane-label").all_inner_texts()
    assert [label.split()[0] for label in labels] == [recording.channel_map[c].value for c in (0, 1)]
    # the waveform came from the peaks; the media element downloads nothing until it plays
    urls = [r.url for r in requests]
    assert any("/peaks?index=0" in u for u in urls)
    assert all(r.headers.get("range") for r in requests if "/audio" in r.url)
    # one region per turn on the timeline, in its party's lane
    regions = page.evaluate("() => window.convoscopeCall.regions.getRegions().length")
    assert regions >= len(recorded.stored.call.turns)

    turns = recorded.stored.call.turns
    for turn in (turns[len(turns) // 2], turns[-1], turns[1]):
        _click_turn(page, turn.index)
        assert _player_time(page) == pytest.approx(turn.start_s - recording.offset_s, abs=SEEK_TOLERANCE_S)
        expect(page.locator("#clock")).not_to_have_text("0:00.00")
    # a timeline event in the list is a button that moves the same player
    mark = page.locator("#marks button.mark").first
    start = float(mark.get_attribute("data-start") or "nan")
    mark.focus()
    page.keyboard.press("Enter")  # seeks and plays: the media element now streams the file, in ranges
    page.wait_for_function("() => window.convoscopeCall.media.readyState >= 3", timeout=10_000)
    page.evaluate("() => window.convoscopeCall.ws.pause()")
    assert _player_time(page) == pytest.approx(start, abs=0.5)
    audio = [r for r in requests if "/audio" in r.url]
    assert audio and all(r.headers.get("range") for r in audio)


def test_the_peaks_are_bounded_json_for_the_session_only(
    page: Page, ui: UiServer, recorded: Recorded, big_call: str
) -> None:
    for call_id, duration in (
        (recorded.id, recorded.stored.call.recordings[0].duration_s),
        (big_call, BIG_SECONDS),
    ):
        answer = page.request.get(f"/calls/{call_id}/peaks?index=0")
        assert answer.status == 200
        body = answer.json()
        assert [c["role"] for c in body["channels"]] == ["user", "agent"]
        assert all(0 < len(c["peaks"]) <= MAX_POINTS for c in body["channels"])
        assert all(0.0 <= v <= 1.0 for c in body["channels"] for v in c["peaks"])
        assert body["duration_s"] == pytest.approx(duration, abs=0.05)
        assert len(answer.body()) < 120_000  # a 10 MB recording's waveform is tens of KB
    assert page.request.get(f"/calls/{recorded.id}/peaks?index=7").status == 404
    outsider = httpx.get(f"{ui.url}/calls/{recorded.id}/peaks?index=0", timeout=10)  # no session
    assert outsider.status_code == 401


def test_selecting_a_score_highlights_the_turns_and_stretches_it_cites(
    page: Page, recorded: Recorded
) -> None:
    _open_with_player(page, recorded.id)
    (score,) = [s for s in recorded.stored.scores if s.metric == "turn_taking.response_gap_p50_s"]
    responses = score.evidence["responses"]
    assert isinstance(responses, list)
    stretches = {
        (float(r[k][0]), float(r[k][1]))  # type: ignore[index, arg-type]
        for r in responses
        if isinstance(r, dict)
        for k in ("user_turn", "agent_turn")
    }
    expected = sorted(
        {
            t.index
            for t in recorded.stored.call.turns
            for a, b in stretches
            if min(b, t.end_s) - max(a, t.start_s) >= 0.05
        }
    )
    assert expected and len(expected) < len(recorded.stored.call.turns)
    button = page.locator("button.select-score", has_text="turn_taking.response_gap_p50_s")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    cited = page.locator("tr.turn.cited")
    expect(cited).to_have_count(len(expected))
    assert sorted(int(i) for i in cited.evaluate_all("rows => rows.map(r => r.dataset.turn)")) == expected
    assert page.evaluate("() => window.convoscopeCall.cited.length") == len(stretches)
    # another score replaces the selection; selecting it again clears it
    other = page.locator("button.select-score", has_text="turn_taking.longest_silence_s")
    other.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(page.locator("tr.turn.cited")).to_have_count(0)  # a silence lies between turns
    assert page.evaluate("() => window.convoscopeCall.cited.length") == 1
    other.click()
    expect(other).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("() => window.convoscopeCall.cited.length") == 0


def test_the_page_lists_latency_tools_scores_with_definitions_and_the_jobs(
    page: Page, recorded: Recorded
) -> None:
    page.goto(f"/calls/{recorded.id}")
    call = recorded.stored.call
    for tool in call.tool_calls:
        assert tool.turn_index is not None
        expect(page.locator(f"#turn-{tool.turn_index} .tool-name", has_text=tool.name)).to_be_visible()
    timed = [t for t in call.turns if t.e2e_s is not None and t.stt_s is not None]
    assert timed
    cells = page.locator(f"#turn-{timed[0].index} td.num").all_inner_texts()
    assert f"{timed[0].e2e_s:.3f}" in cells and f"{timed[0].stt_s:.3f}" in cells
    assert any(c.strip() and c.strip()[0].isdigit() for c in cells[2:3])  # the audio gap, from the analysis
    rows = page.locator("#score-table tbody tr")
    expect(rows).to_have_count(len(recorded.stored.scores))
    expect(page.locator("#score-table")).to_contain_text("Median of the response gap")
    for job in page.locator("#job-table tbody tr td:first-child").all_inner_texts():
        assert job in {"audio.analyze", "evals.run"}
    page.locator("#raw-payload summary").click()
    expect(page.locator("#no-payload")).to_be_visible()


def test_markup_in_a_call_is_shown_as_text_and_never_runs(page: Page, hostile_call: str) -> None:
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    page.goto(f"/calls/{hostile_call}")
    expect(page.locator("#turn-0 .said")).to_have_text(f"hi {HOSTILE} and {HOSTILE_IMG}")
    expect(page.locator("#turn-1 .said")).to_have_text("</td></tr></table><script>alert(3)</script>")
    expect(page.locator("#turn-1 .tool-name")).to_contain_text("lookup<script>")
    expect(page.locator("#turn-1 .tool")).to_contain_text(HOSTILE_IMG)
    expect(page.locator("#turn-1 .tool")).to_contain_text(HOSTILE)
    expect(page.locator("#metadata")).to_contain_text(f"{HOSTILE} {HOSTILE_IMG}")
    expect(page.locator("#vendor-analysis")).to_contain_text(HOSTILE)
    expect(page.locator("h1")).to_contain_text(HOSTILE_IMG)
    expect(page.locator(".tag")).to_have_text("<b>bold</b>")
    score = page.locator("button.select-score")
    expect(score).to_have_text(f"custom.{HOSTILE}")
    score.click()
    expect(page.locator("tr.turn.cited")).to_have_count(1)
    page.locator("#score-table summary", has_text="evidence").click()
    expect(page.locator("#score-table")).to_contain_text(HOSTILE_IMG)
    page.locator("#raw-payload summary").click()
    expect(page.locator("#raw-payload pre.payload")).to_contain_text(f"{HOSTILE} {HOSTILE_IMG}")
    failed = page.locator("#job-table tr.job-failed")
    expect(failed.locator("td").first).to_have_text("recording.fetch")
    expect(failed).to_contain_text(f"HTTP 403 {HOSTILE}")  # a failed job says why
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    assert page.locator("b").count() == 0


def test_a_call_without_recording_scores_or_spans_says_what_is_missing_and_how_to_get_it(
    page: Page, bare_call: str
) -> None:
    page.goto(f"/calls/{bare_call}")
    expect(page.locator("#no-recording")).to_contain_text("No recording is stored")
    expect(page.locator("#no-recording")).to_contain_text("channel_map=user,agent")
    expect(page.locator("#no-scores")).to_contain_text(f"convoscope eval --call {bare_call}")
    expect(page.locator("#no-spans")).to_contain_text("/v1/traces")
    expect(page.locator("#waveform")).to_have_count(0)
    expect(page.locator("tr.turn")).to_have_count(2)
    _click_turn(page, 1)  # no player: nothing happens, nothing breaks
    assert page.evaluate("() => window.convoscopeCall.ws") is None


def test_a_traced_call_shows_its_span_waterfall(page: Page, traced: Traced) -> None:
    page.goto(f"/calls/{traced.call_id}")
    rows = page.locator("#waterfall tr.span-row")
    expect(rows).to_have_count(traced.span_count)
    names = rows.locator("td.span-name").all_inner_texts()
    assert names[0] == "conversation" and names.count("llm") == 2
    llm = rows.filter(has_text="llm").first
    expect(llm.locator("td").nth(1)).to_have_text("llm")
    expect(llm).to_contain_text("1000 / 200")
    left = llm.locator(".bar").evaluate("bar => [parseFloat(bar.style.left), parseFloat(bar.style.width)]")
    assert 0 < left[0] < 100 and 0 < left[1] <= 100
    padding = [
        float(p.removesuffix("px"))
        for p in rows.locator("td.span-name").evaluate_all("cells => cells.map(c => c.style.paddingLeft)")
    ]
    assert padding[0] < padding[1] < padding[2]  # conversation > turn > stt: indented by depth
    expect(page.locator("#no-spans")).to_have_count(0)


def test_a_call_with_500_turns_and_5000_spans_renders_fast_and_stays_interactive(
    page: Page, big_call: str, requests: list[Request]
) -> None:
    began = time.perf_counter()
    answer = page.request.get(f"/calls/{big_call}")
    server_s = time.perf_counter() - began
    assert answer.status == 200
    # Its speed is measured by benchmarks/ui_render.py, not bounded here: a wall-clock bound failed a CI
    # run on a loaded box (3.08 s) while the page itself was unchanged.
    print(f"\n500 turns / 5,000 spans: page answered in {server_s:.3f} s, {len(answer.body()):,} bytes")
    began = time.perf_counter()
    _open_with_player(page, big_call)
    print(f"loaded with the waveform drawn in {time.perf_counter() - began:.3f} s")
    expect(page.locator("tr.turn")).to_have_count(200)
    expect(page.locator("#waterfall tr.span-row")).to_have_count(500)
    began = time.perf_counter()
    _click_turn(page, 151)  # scrolls the row into view and clicks it, as a person would
    page.wait_for_function(
        f"() => Math.abs(window.convoscopeCall.media.currentTime - {151 * BIG_SECONDS / BIG_TURNS}) < 0.1",
        timeout=1000,
    )
    clicked_s = time.perf_counter() - began
    print(f"a click on turn 151 moved the player in {clicked_s:.3f} s")
    assert clicked_s < 2.0  # 1 s after the click at most, and the click itself (Playwright's checks)
    # the next pages come on demand, and their rows seek too
    page.locator("#turn-rows tr.more button").click()
    expect(page.locator("tr.turn")).to_have_count(400)
    page.locator("#span-rows tr.more button").click()
    expect(page.locator("#waterfall tr.span-row")).to_have_count(1000)
    _click_turn(page, 350)
    assert _player_time(page) == pytest.approx(350 * BIG_SECONDS / BIG_TURNS, abs=SEEK_TOLERANCE_S)
    assert not [r for r in requests if "/audio" in r.url and not r.headers.get("range")]


def test_an_unknown_call_is_a_404_page(browser: Browser, ui: UiServer) -> None:
    """Its own console error (the document's 404) is expected; anything else is not."""
    context = browser.new_context(base_url=ui.url)
    try:
        opened = context.new_page()
        opened.goto(f"/?key={ui.key}")
        errors: list[str] = []
        opened.on("console", lambda m: errors.append(m.location["url"]) if m.type == "error" else None)
        opened.on("pageerror", lambda e: errors.append(str(e)))
        response = opened.goto("/calls/no-such-call<b>")
        assert response is not None and response.status == 404
        expect(opened.locator("h1")).to_have_text("Call not found")
        expect(opened.locator("#call-missing")).to_contain_text("No call no-such-call<b>")
        opened.wait_for_timeout(200)
        assert errors in ([], [response.url])
    finally:
        context.close()


# -- the pieces behind the page, without a browser ---------------------------------------------------------


def test_citations_read_turn_indices_and_stretches_at_any_depth() -> None:
    turns = [
        Turn(index=i, role=Role.USER if i % 2 else Role.AGENT, start_s=2.0 * i, end_s=2.0 * i + 1.5)
        for i in range(6)
    ]
    result = MetricResult(
        call_id="c",
        metric="m",
        value=1.0,
        evidence={
            "claims": [{"turn_index": 1, "quote": "[3, 4]"}, {"sentences": [{"turn_index": 99}]}],
            "repeated": [{"turn_indices": [3, 5], "run_turn_indices": [True]}],
            "silence": [4.0, 5.0],  # touches turn 2 (4.0-5.5): cites it
            "gap": [5.5, 6.0],  # between turns 2 and 3: cites none
            "nested": {"deeper": [{"segment": [8.2, 8.4]}]},  # inside turn 4
            "not_a_stretch": [3, 1],
        },
        source=MetricSource.TRANSCRIPT,
    )
    (cites,) = citations([result], turns)
    assert cites.turns == (1, 2, 3, 4, 5)
    assert cites.intervals == ((4.0, 5.0), (5.5, 6.0), (8.2, 8.4))


def test_peaks_keep_the_loudest_sample_of_each_stretch_per_channel() -> None:
    rate, seconds = 8000, 10
    audio = np.zeros((rate * seconds, 2), dtype=np.float32)
    audio[rate * 7 + 5, 0] = -0.9  # one click on the left channel, 7 s in
    audio[rate * 2 : rate * 3, 1] = 0.25  # a second of tone-level signal on the right
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="FLOAT")
    out.seek(0)
    peaks = compute_peaks("0" * 64, out, points=1000)
    assert peaks.points == 1000 and len(peaks.channels) == 2
    assert peaks.duration_s == pytest.approx(seconds)
    left, right = peaks.channels
    assert left[700] == pytest.approx(0.9) and sum(1 for v in left if v) == 1
    assert all(v == pytest.approx(0.25) for v in right[200:300]) and not any(right[:200] + right[300:])


def test_the_waterfall_is_the_span_tree_in_reading_order_a_page_at_a_time() -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    trace_id = "a" * 32

    def span(span_id: str, parent: str | None, start_s: float, end_s: float) -> Span:
        return Span(
            trace_id=trace_id,
            span_id=span_id * 16,
            parent_span_id=parent * 16 if parent else None,
            name=span_id,
            start=origin + timedelta(seconds=start_s),
            end=origin + timedelta(seconds=end_s),
        )

    spans = [span("b", "a", 1, 2), span("a", None, 0, 10), span("d", "c", 6, 7), span("c", "a", 5, 9)]
    spans.append(span("e", "f", 3, 4))  # its parent never arrived: a root of its own
    first = waterfall(spans, origin, PriceTable(), limit=3)
    assert [(r.span.name, r.depth) for r in first.rows] == [("a", 0), ("b", 1), ("c", 1)]
    assert first.next_offset == 3 and first.total == 5
    rest = waterfall(spans, origin, PriceTable(), offset=3, limit=3)
    assert [(r.span.name, r.depth) for r in rest.rows] == [("d", 2), ("e", 0)] and rest.next_offset is None
    a, b = first.rows[0], first.rows[1]
    assert (a.left_pct, a.width_pct) == (0.0, 100.0) and (b.left_pct, b.width_pct) == (10.0, 10.0)


def test_a_judge_nobody_labelled_is_uncalibrated_and_a_labelled_metric_shows_its_kappa() -> None:
    judge = Definition("asks an LLM", None, judge=True)
    rule = Definition("counts things", None)
    assert calibration_badge("csat", judge, {}) == CalibrationBadge("uncalibrated", None, 0)
    assert calibration_badge("tool_call_success", rule, {}) is None
    stored = {"kappa": 0.4, "n": 10}
    assert calibration_badge("tool_call_success", rule, {"tool_call_success": stored}) == CalibrationBadge(
        "calibrated", 0.4, 10
    )
    same_verdicts = {"csat": {"kappa": None, "n": 3}}
    assert calibration_badge("csat", judge, same_verdicts) == CalibrationBadge("undefined", None, 3)
