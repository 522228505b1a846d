"""Redaction before storage on every ingest path, proven by scanning everything the server keeps.

Each test turns redaction on over the API, sends calls holding written and spoken personal data
through one real path (REST, Vapi and Retell webhooks, a pull from a vendor's list API, OTLP traces and
logs, a simulation run), lets the server store them and run their follow-up jobs, and then reads every
chDB table, every metadata table, every file in the data directory and the log: no value may be there,
the words around it must be, and the stored call must show the markers where the values were.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from convoscope.cli.pull import HttpSink, PullState, run_pull
from convoscope.demo.agent import ReferenceAgentServer
from convoscope.ingest.pull import get_puller
from convoscope.testing.vendors import VendorServer, retell_call

from .conftest import (
    AGENT,
    CARD,
    CONTROL,
    KEY,
    REDACT_ON,
    SPELLED,
    SPOKEN,
    SPOKEN_EMAIL,
    WRITTEN,
    Live,
    holds,
    leaks,
)

FIXTURES = Path(__file__).parents[1] / "ingest" / "fixtures"
SAID = (WRITTEN, CARD, SPOKEN, SPELLED, SPOKEN_EMAIL)


def _words(text: str, start_s: float) -> list[dict[str, Any]]:
    return [
        {"word": word, "start_s": start_s + 0.3 * i, "end_s": start_s + 0.3 * i + 0.25}
        for i, word in enumerate(text.split())
    ]


def canonical_call(external_id: str) -> dict[str, Any]:
    turns: list[dict[str, Any]] = []
    at = 0.0
    for text in (AGENT, *SAID):
        role = "agent" if text == AGENT else "user"
        words = _words(text, at)
        turns.append({"role": role, "text": text, "start_s": at, "end_s": words[-1]["end_s"], "words": words})
        at = words[-1]["end_s"] + 0.5
    return {
        "source": "generic",
        "external_id": external_id,
        "started_at": "2026-12-01T10:00:00Z",
        "turns": turns,
        "tool_calls": [
            {
                "id": "t1",
                "name": "book_appointment",
                "arguments": {"phone": "555-867-5309", "email": "jane@example.com", "day": "Tuesday"},
                "result": json.dumps(
                    {"confirmation": "sent to jane@example.com", "card": "4111111111111111"}
                ),
            }
        ],
        "metadata": {"caller_number": "+15558675309", "note": f"{CONTROL} via {SPOKEN}"},
        "vendor_analysis": {"summary": f"Caller gave {WRITTEN}"},
    }


def assert_nothing_kept(live: Live, *, besides: tuple[str, ...] = ()) -> dict[str, str]:
    """No personal value anywhere; ``besides`` names places holding the test's own configuration."""
    kept = {place: content for place, content in live.kept_text().items() if place not in besides}
    assert leaks(kept) == []
    assert holds(kept, CONTROL), "the scan read nothing of the calls"
    return kept


def assert_masked(call: dict[str, Any]) -> None:
    texts = " ".join(turn["text"] for turn in call["call"]["turns"])
    assert "[phone]" in texts or "[email]" in texts or "[card]" in texts, texts


def test_rest_calls_are_stored_masked_everywhere(live: Live) -> None:
    live.redact(REDACT_ON)
    response = live.post("/api/v1/calls", json=[canonical_call("rest-1"), canonical_call("rest-2")])
    assert response.status_code == 202, response.text
    live.process()
    calls = live.calls()
    assert len(calls) == 2
    call = calls[0]["call"]
    texts = [turn["text"] for turn in call["turns"]]
    assert texts[1] == "Hi, my number is [phone] and my email is [email]."
    assert texts[2] == "The card is [card], expiring next year."
    assert texts[3] == "Again, that is [phone]."
    assert texts[4] == "My national insurance number is [national_id]."
    assert texts[5] == "Or write to [email]."
    words = [w["word"] for w in call["turns"][3]["words"]]
    assert words[:3] == ["Again,", "that", "is"] and set(words[3:]) == {"[phone]"}
    assert call["tool_calls"][0]["arguments"] == {"phone": "[phone]", "email": "[email]", "day": "Tuesday"}
    assert call["metadata"]["caller_number"] == "[phone]"
    # Evaluators read what is stored: the PII metric finds nothing left to leak.
    assert calls[0]["scores"] is not None
    kept = assert_nothing_kept(live)
    assert holds(kept, "[national_id]")


def _vapi_report() -> dict[str, Any]:
    report = json.loads((FIXTURES / "vapi" / "end_of_call_report.json").read_text())
    message = report["message"]
    users = [m for m in message["artifact"]["messages"] if m["role"] == "user"]
    for said, entry in zip(SAID, users, strict=False):
        entry["message"] = said
        entry.pop("metadata", None)
    message["artifact"]["transcript"] = "\n".join(f"User: {said}" for said in SAID)
    for key in ("recording", "recordingUrl", "stereoRecordingUrl", "logUrl", "pcapUrl"):
        message["artifact"].pop(key, None)
    message["call"]["customer"] = {"number": "+15558675309"}
    message["analysis"] = {"summary": f"The caller said {WRITTEN} {CONTROL}"}
    return report


def _retell_call(call: dict[str, Any]) -> dict[str, Any]:
    call = copy.deepcopy(call)
    turns = [call["transcript_object"][0]]
    at = 3.0
    for said in SAID:
        words = [{"word": w["word"], "start": w["start_s"], "end": w["end_s"]} for w in _words(said, at)]
        turns.append({"role": "user", "content": said, "words": words})
        at = words[-1]["end"] + 0.5
    call["transcript_object"] = turns
    call["transcript"] = "\n".join(f"User: {said}" for said in SAID) + f"\nAgent: {AGENT}"
    call["from_number"] = "+15558675309"
    for key in ("recording_url", "recording_multi_channel_url", "scrubbed_recording_url", "public_log_url"):
        call.pop(key, None)
    call.pop("transcript_with_tool_calls", None)
    call["call_analysis"] = {"call_summary": f"Caller {WRITTEN} {CONTROL}"}
    return call


def test_vendor_webhooks_keep_masked_events_and_calls(live: Live) -> None:
    live.redact(REDACT_ON)
    vapi = live.post("/api/v1/ingest/vapi", json=_vapi_report())
    assert vapi.status_code == 202, vapi.text
    event = json.loads((FIXTURES / "retell" / "call_ended.json").read_text())
    event.pop("_comment", None)
    event["call"] = _retell_call(event["call"])
    retell = live.post("/api/v1/ingest/retell", json=event)
    assert retell.status_code == 202, retell.text
    live.process()
    calls = live.calls()
    assert {c["call"]["source"] for c in calls} == {"vapi", "retell"}
    for call in calls:
        assert_masked(call)
    retell_turns = next(c for c in calls if c["call"]["source"] == "retell")["call"]["turns"]
    spoken = next(t for t in retell_turns if t["text"].startswith("Again"))
    assert spoken["text"] == "Again, that is [phone]." and "[phone]" in {w["word"] for w in spoken["words"]}
    # The kept events are masked too, and still make the same call when the call is rebuilt from them.
    events = live.services.meta.source_events(
        live.services.default_project.id, "retell", event["call"]["call_id"]
    )
    assert events and b"[phone]" in events[0] and b"5558675309" not in events[0]
    assert_nothing_kept(live)


def test_a_pull_from_a_vendor_api_is_masked(live: Live) -> None:
    live.redact(REDACT_ON)
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with VendorServer() as vendor:
        vendor.add("retell", [_retell_call(retell_call(i, started)) for i in range(3)])
        spec = get_puller("retell")
        with (
            httpx.Client(base_url=vendor.url, headers=spec.auth_headers(vendor.api_key)) as http,
            closing(HttpSink(live.url, KEY)) as sink,
        ):
            result = run_pull(
                spec.factory(http, page_size=2),
                sink,
                PullState(live.data_dir.parent / "pull-state.json"),
                project="default",
                base_url=vendor.url,
                since=None,
            )
    assert result.sent == 3 and result.refused == []
    live.process()
    calls = live.calls()
    assert len(calls) == 3
    for call in calls:
        assert_masked(call)
    assert_nothing_kept(live)


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _otlp_export(trace_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    start = int(datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp() * 1e9)
    messages = [{"role": "user", "parts": [{"type": "text", "content": said}]} for said in SAID]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": AGENT}], "finish_reason": "stop"}]
    root = {
        "traceId": trace_id,
        "spanId": "1" * 16,
        "name": "chat session",
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 4_000_000_000),
        "attributes": [
            _attr("gen_ai.conversation.id", "chat-redaction"),
            _attr("caller.phone", "5558675309"),
        ],
    }
    chat = {
        "traceId": trace_id,
        "spanId": "2" * 16,
        "parentSpanId": "1" * 16,
        "name": "chat gpt-4o-mini",
        "kind": 3,
        "startTimeUnixNano": str(start + 1_000_000_000),
        "endTimeUnixNano": str(start + 2_000_000_000),
        "attributes": [
            _attr("gen_ai.operation.name", "chat"),
            _attr("gen_ai.request.model", "gpt-4o-mini"),
            _attr("gen_ai.input.messages", json.dumps(messages)),
            _attr("gen_ai.output.messages", json.dumps(answer)),
        ],
        "events": [
            {
                "name": "exception",
                "timeUnixNano": str(start + 1_500_000_000),
                "attributes": [_attr("exception.message", f"lookup failed for {WRITTEN}")],
            }
        ],
        "status": {"code": 2, "message": f"no account for {CARD}"},
    }
    resource = {"attributes": [_attr("service.name", "clinic-chat")]}
    traces = {
        "resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": {"name": "app"}, "spans": [root, chat]}]}
        ]
    }
    record = {
        "timeUnixNano": str(start + 1_200_000_000),
        "traceId": trace_id,
        "spanId": "2" * 16,
        "eventName": "app.note",
        "body": {"stringValue": f"{CONTROL} noted: {SPOKEN} {SPELLED}"},
        "attributes": [_attr("user.email", "jane@example.com")],
    }
    logs = {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [record]}]}
        ]
    }
    return traces, logs


def test_otlp_traces_and_logs_are_masked(live: Live) -> None:
    live.redact(REDACT_ON)
    traces, logs = _otlp_export("ab" * 16)
    sent = live.post("/v1/traces", content=json.dumps(traces), headers={"Content-Type": "application/json"})
    assert sent.status_code == 200, sent.text
    sent = live.post("/v1/logs", content=json.dumps(logs), headers={"Content-Type": "application/json"})
    assert sent.status_code == 200, sent.text
    live.process(settle_s=1.0)
    spans = live.store.list_spans(live.services.default_project.id, trace_id="ab" * 16)
    assert len(spans) == 2
    chat = next(span for span in spans if span.span_id == "2" * 16)
    assert "[phone]" in str(chat.attributes["gen_ai.input.messages"])
    assert "[card]" in chat.status_message
    root = next(span for span in spans if span.span_id == "1" * 16)
    assert root.attributes["caller.phone"] == "[phone]"
    assert root.attributes["gen_ai.conversation.id"] == "chat-redaction"
    kept = assert_nothing_kept(live)
    assert holds(kept, "[national_id]")  # the log record's body, masked


SCENARIO = f"""\
kind: scenario
id: share
goal: Book a visit and give contact details.
unmocked_tools: pass_through
script:
  lines: ["I want an {CONTROL}. {WRITTEN}", "{SPOKEN} {SPELLED}"]
  replies:
    - {{when: "anything else", say: "No, thanks, bye.", hang_up: true}}
---
kind: suite
id: privacy
scenarios: [share]
iterations: 1
metrics: [pii_leakage]
"""


def test_a_simulation_run_stores_and_scores_masked_calls(live: Live) -> None:
    live.redact(REDACT_ON)
    with ReferenceAgentServer() as agent:
        imported = live.post(
            "/api/v1/simulation/definitions:import",
            content=SCENARIO,
            headers={"content-type": "application/yaml"},
        )
        assert imported.status_code == 200, imported.text
        definition = {
            "version": "1.0",
            "connector": {"kind": "openai", "base_url": f"{agent.url}/v1", "model": "reference-agent"},
            "tools_url": f"{agent.url}/tools",
        }
        assert live.put("/api/v1/simulation/agents/clinic", json=definition).status_code in (200, 201)
        started = live.post("/api/v1/simulation/runs:start", json={"suite": "privacy", "agent": "clinic"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        deadline = time.monotonic() + 60
        while live.get(f"/api/v1/simulation/runs/{run_id}").json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    live.process()
    (call,) = live.calls()
    user_text = " ".join(t["text"] for t in call["call"]["turns"] if t["role"] == "user")
    assert "[phone]" in user_text and "[email]" in user_text and "[national_id]" in user_text
    # The scenario's script is configuration the test wrote, not data a caller gave; it stays as written.
    assert_nothing_kept(live, besides=("sqlite:simulation_definitions",))


def test_without_redaction_text_is_stored_as_sent(live: Live) -> None:
    """The control: the same REST call in a project without redaction keeps every value, and the scan
    finds each of them, so the scans above would have seen a leak."""
    response = live.post("/api/v1/calls", json=canonical_call("plain"))
    assert response.status_code == 202
    live.process()
    (call,) = live.calls()
    assert [t["text"] for t in call["call"]["turns"]] == [AGENT, *SAID]
    assert call["call"]["metadata"]["caller_number"] == "+15558675309"
    found = {needle for _, needle in leaks(live.kept_text())}
    assert {
        "555-867-5309",
        "jane@example.com",
        "4111 1111 1111 1111",
        "eight six seven",
        "jane dot doe",
    } <= found


@pytest.mark.parametrize("later", [True])
def test_a_setting_change_applies_to_what_is_ingested_after_it(live: Live, later: bool) -> None:
    assert live.post("/api/v1/calls", json=canonical_call("before")).status_code == 202
    live.process()
    live.redact(REDACT_ON)
    assert live.post("/api/v1/calls", json=canonical_call("after")).status_code == 202
    live.process()
    by_id = {c["call"]["external_id"]: c["call"] for c in live.calls()}
    assert by_id["before"]["turns"][1]["text"] == WRITTEN
    assert by_id["after"]["turns"][1]["text"] == "Hi, my number is [phone] and my email is [email]."
