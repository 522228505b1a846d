"""``convoscope pull``: the vendor clients against a loopback server speaking each vendor's list API,
resumable pulls into a real store, and the command end to end (direct and through a running server)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from convoscope.cli.pull import DirectSink, PullState, run_pull
from convoscope.config import Settings
from convoscope.errors import AuthError, ConvoscopeError, InputError
from convoscope.ingest.pull import Page, get_puller, parse_since
from convoscope.ingest.sources import get_source
from convoscope.server.services import Services, open_services
from convoscope.store.base import CallFilter
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.metadata import MetadataStore
from convoscope.testing.vendors import (
    VendorServer,
    bland_call,
    elevenlabs_conversation,
    retell_call,
    spread,
    vapi_call,
)

from .conftest import KEY, ServerProcess, run_cli

Builder = Callable[[int, datetime], dict[str, Any]]
BUILDERS: dict[str, Builder] = {
    "vapi": vapi_call,
    "retell": retell_call,
    "elevenlabs": elevenlabs_conversation,
    "bland": bland_call,
}
ID_KEYS = {"vapi": "id", "retell": "call_id", "elevenlabs": "conversation_id", "bland": "call_id"}
CALLS = 11
PAGE = 4
STARTS = spread(CALLS)


@pytest.fixture
def vendor() -> Iterator[VendorServer]:
    with VendorServer() as server:
        for name, build in BUILDERS.items():
            server.add(name, [build(i, at) for i, at in enumerate(STARTS)])
        yield server


def client_for(server: VendorServer, name: str, *, key: str | None = None) -> httpx.Client:
    spec = get_puller(name)
    return httpx.Client(base_url=server.url, headers=spec.auth_headers(key or server.api_key))


def pages(server: VendorServer, name: str, since: datetime | None = None) -> list[Page]:
    spec = get_puller(name)
    with client_for(server, name) as http:
        puller = spec.factory(http, page_size=PAGE)
        found, cursor = [], None
        while True:
            page = puller.page(since=since, cursor=cursor)
            found.append(page)
            if page.cursor is None:
                return found
            cursor = page.cursor


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_client_pages_through_every_call_once(vendor: VendorServer, name: str) -> None:
    got = pages(vendor, name)
    events = [event for page in got for event in page.events]
    adapter = get_source(name)
    ids = [adapter.identify(event).external_id for event in events]
    expected = sorted(call[ID_KEYS[name]] for call in vendor.calls(name))
    assert sorted(ids) == expected and len(ids) == len(set(ids))
    assert len(got) == -(-CALLS // PAGE)  # ceil: every page but the last is full
    for event in events:  # the pulled event is exactly what the webhook adapter takes
        assert adapter.assemble([event]).call.started_at in STARTS
    assert max(p.newest for p in got if p.newest) == STARTS[-1]


def test_vapi_client_follows_either_list_order(vendor: VendorServer) -> None:
    vendor.vapi_newest_first = False
    got = pages(vendor, "vapi", since=STARTS[1])
    ids = [event["id"] for page in got for event in page.events]
    assert ids == [f"vapi-call-{i:05d}" for i in range(1, CALLS)]
    assert [r.query.get("createdAtGt") for r in vendor.requests][1:] == [
        STARTS[4].isoformat(),
        STARTS[8].isoformat(),
    ]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_each_client_applies_since(vendor: VendorServer, name: str) -> None:
    since = STARTS[7]
    events = [event for page in pages(vendor, name, since=since) for event in page.events]
    adapter = get_source(name)
    starts = sorted(adapter.assemble([e]).call.started_at for e in events)
    assert starts == STARTS[7:]


def test_clients_speak_each_vendors_parameters(vendor: VendorServer) -> None:
    for name in BUILDERS:
        pages(vendor, name, since=STARTS[2])
    sent = {(r.method, r.path): r for r in vendor.requests}
    vapi = [r for r in vendor.requests if r.path == "/call"]
    assert vapi[0].query["limit"] == str(PAGE) and parse_since(vapi[0].query["createdAtGe"]) == STARTS[2]
    assert "createdAtLt" in vapi[1].query
    retell = [r for r in vendor.requests if r.path == "/v2/list-calls"]
    assert (
        retell[0].body["filter_criteria"]["start_timestamp"]["lower_threshold"]
        == STARTS[2].timestamp() * 1000
    )
    assert retell[0].body["sort_order"] == "ascending" and "pagination_key" not in retell[0].body
    assert retell[1].body["pagination_key"] == "retell-call-00005"
    eleven = [r for r in vendor.requests if r.path == "/v1/convai/conversations"]
    assert eleven[0].query["call_start_after_unix"] == str(int(STARTS[2].timestamp()))
    assert eleven[1].query["cursor"] == "page-at-4"
    assert ("GET", "/v1/convai/conversations/conv-00002") in sent
    bland = [r for r in vendor.requests if r.path == "/v1/calls"]
    assert [(r.query["from"], r.query["to"]) for r in bland] == [("0", "4"), ("4", "8"), ("8", "12")]
    assert all(r.query["ascending"] == "true" for r in bland)
    assert pages(vendor, "bland")[0].total == CALLS  # Bland's count sizes the progress bar


@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_refused_key_is_an_auth_error(vendor: VendorServer, name: str) -> None:
    spec = get_puller(name)
    with client_for(vendor, name, key="wrong") as http, pytest.raises(AuthError, match="401"):
        spec.factory(http).page(since=None, cursor=None)


def test_unknown_vendor_and_bad_since() -> None:
    with pytest.raises(ConvoscopeError, match="pull supports"):
        get_puller("webex")
    with pytest.raises(InputError, match="--since"):
        parse_since("last tuesday")
    assert parse_since("2025-01-06") == datetime(2025, 1, 6, tzinfo=UTC)
    assert parse_since("2025-01-06T10:00+02:00") == datetime(2025, 1, 6, 8, tzinfo=UTC)


@pytest.fixture
def services(tmp_path: Path, clickhouse_store: ClickHouseStore) -> Iterator[Services]:
    opened = open_services(Settings(data_dir=tmp_path / "data"), store=clickhouse_store)
    yield opened
    opened.meta.close()


def stored_ids(services: Services, source: str) -> list[str]:
    project_id = services.meta.ensure_project("default").id
    page = services.store.list_calls(project_id, CallFilter(source=source), limit=1000, cursor=None)
    return sorted(item.external_id for item in page.items)


def pull_into(services: Services, vendor: VendorServer, name: str, state: PullState, **kwargs: Any) -> Any:
    spec = get_puller(name)
    with client_for(vendor, name) as http:
        return run_pull(
            spec.factory(http, page_size=PAGE),
            DirectSink(services, "default"),
            state,
            project="default",
            base_url=vendor.url,
            since=kwargs.get("since"),
        )


@pytest.mark.parametrize("name", ["vapi", "bland"])
def test_interrupted_pull_resumes_at_its_cursor(
    services: Services, vendor: VendorServer, tmp_path: Path, name: str
) -> None:
    state = PullState(tmp_path / "pull-state.json")
    # Bland fetches each call after listing it: 5 + 1 answers are the first page and the next list.
    vendor.fail_after = 2 if name == "vapi" else PAGE + 2
    with pytest.raises(ConvoscopeError, match="503"):
        pull_into(services, vendor, name, state)
    saved = PullState.load(state.path).entry("default", name)
    assert saved["cursor"] is not None
    first_pages = stored_ids(services, name)
    assert len(first_pages) == (2 if name == "vapi" else 1) * PAGE  # committed pages are stored

    vendor.fail_after = None
    before = len(vendor.requests)
    result = pull_into(services, vendor, name, state)
    assert result.resumed
    resumed_list = next(r for r in vendor.requests[before:] if r.path in ("/call", "/v1/calls"))
    if name == "vapi":
        assert saved["cursor"] == f"lt:{resumed_list.query['createdAtLt']}"
    else:
        assert resumed_list.query["from"] == saved["cursor"]
    assert result.sent == CALLS - len(first_pages)  # nothing already stored is fetched again
    assert stored_ids(services, name) == sorted(c[ID_KEYS[name]] for c in vendor.calls(name))
    finished = PullState.load(state.path).entry("default", name)
    assert finished["cursor"] is None and parse_since(finished["since"]) == STARTS[-1]


def test_next_pull_asks_only_for_newer_calls(
    services: Services, vendor: VendorServer, tmp_path: Path
) -> None:
    state = PullState(tmp_path / "pull-state.json")
    assert pull_into(services, vendor, "retell", state).sent == CALLS
    later = [retell_call(100 + i, STARTS[-1] + timedelta(hours=1, minutes=i)) for i in range(3)]
    vendor.add("retell", later)
    before = len(vendor.requests)
    second = pull_into(services, vendor, "retell", state)
    first_request = vendor.requests[before]
    assert (
        first_request.body["filter_criteria"]["start_timestamp"]["lower_threshold"]
        == STARTS[-1].timestamp() * 1000
    )
    assert second.sent == 1 + len(later)  # the newest of the last pull comes again, harmlessly
    assert len(stored_ids(services, "retell")) == CALLS + len(later)


def test_an_unusable_call_is_refused_and_the_rest_stored(
    services: Services, vendor: VendorServer, tmp_path: Path
) -> None:
    # A webhook secret guards the webhook route; pulled events, fetched with the vendor key, carry none.
    project_id = services.meta.ensure_project("default").id
    services.meta.update_project_settings(project_id, ("sources", "bland", "secret"), "bland-signing-secret")
    broken = bland_call(999, STARTS[-1]) | {"call_length": "long"}
    vendor.add("bland", [broken])
    result = pull_into(services, vendor, "bland", PullState(tmp_path / "pull-state.json"))
    assert result.sent == CALLS
    [(external_id, message)] = result.refused
    assert external_id == "bland-call-00999" and "call_length" in message
    assert len(stored_ids(services, "bland")) == CALLS


def test_elevenlabs_audio_is_pulled_with_its_conversation(vendor: VendorServer) -> None:
    mp3 = (
        Path(__file__).parent.parent / "ingest" / "fixtures" / "elevenlabs" / "post_call_audio.json"
    ).read_text()
    audio = base64.b64decode(json.loads(mp3)["data"]["full_audio"])
    talkative = elevenlabs_conversation(50, STARTS[-1] + timedelta(hours=1)) | {"has_audio": True}
    vendor.add("elevenlabs", [talkative])
    vendor.audio["conv-00050"] = audio
    spec = get_puller("elevenlabs")
    with client_for(vendor, "elevenlabs") as http:
        first = spec.factory(http, page_size=PAGE).page(since=None, cursor=None)  # newest first: ours leads
        silent = spec.factory(http, page_size=PAGE, with_audio=False).page(since=None, cursor=None)
    assert [e["type"] for e in first.events[:2]] == ["post_call_transcription", "post_call_audio"]
    assembled = get_source("elevenlabs").assemble(first.events[:2])
    assert list(assembled.attachments.values()) == [audio]
    assert assembled.call.recordings[0].source_url == "attachment:elevenlabs-conv-00050.mp3"
    assert [e["type"] for e in first.events[2:]] == ["post_call_transcription"] * (
        PAGE - 1
    )  # no audio: none asked
    assert "post_call_audio" not in [e["type"] for e in silent.events]
    audio_requests = [r.path for r in vendor.requests if r.path.endswith("/audio")]
    assert audio_requests == ["/v1/convai/conversations/conv-00050/audio"]


def test_pulled_and_webhook_events_of_a_call_merge(
    services: Services, vendor: VendorServer, tmp_path: Path
) -> None:
    """A call pulled after its webhook arrived is the same call, not a second one."""
    sink = DirectSink(services, "default")
    webhook = {"type": "post_call_transcription", "data": elevenlabs_conversation(0, STARTS[0])}
    assert sink.send("elevenlabs", webhook) is None
    sink.flush()
    pull_into(services, vendor, "elevenlabs", PullState(tmp_path / "pull-state.json"))
    assert stored_ids(services, "elevenlabs") == sorted(f"conv-{i:05d}" for i in range(CALLS))


def test_the_command_pulls_into_the_data_directory(tmp_path: Path, vendor: VendorServer) -> None:
    data_dir = tmp_path / "data"
    args = [
        "pull",
        "bland",
        "--base-url",
        vendor.url,
        "--page-size",
        str(PAGE),
        "--since",
        STARTS[3].isoformat(),
    ]
    refused = run_cli(*args, "--api-key", "wrong", data_dir=data_dir)
    assert refused.returncode == 1 and "check the API key" in refused.stderr
    done = run_cli(*args, data_dir=data_dir, CONVOSCOPE_PULL_API_KEY=vendor.api_key)
    assert done.returncode == 0, done.stderr
    assert f"pulled {CALLS - 3} bland calls" in done.stdout and "3 older calls skipped" in done.stdout
    listed = run_cli("calls", "list", "--json", "--limit", "100", "--source", "bland", data_dir=data_dir)
    assert sorted(c["external_id"] for c in json.loads(listed.stdout)["items"]) == [
        f"bland-call-{i:05d}" for i in range(3, CALLS)
    ]
    state = json.loads((data_dir / "pull-state.json").read_text())
    assert parse_since(state["default"]["bland"]["since"]) == STARTS[-1]


def test_the_command_pulls_through_a_running_server(
    server: ServerProcess, vendor: VendorServer, auth: dict[str, str]
) -> None:
    # The project signs its Vapi webhooks; pulled events are still accepted (they are not webhooks).
    server.data_dir.mkdir(parents=True)
    meta = MetadataStore(f"sqlite:///{server.data_dir / 'metadata.db'}")
    meta.update_project_settings(
        meta.ensure_project("default").id, ("sources", "vapi", "secret"), "vapi-secret"
    )
    meta.close()
    server.start()
    done = run_cli(
        "pull", "vapi", "--base-url", vendor.url, "--api-key", vendor.api_key, "--page-size", str(PAGE),
        data_dir=server.data_dir, CONVOSCOPE_API_KEY=KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"pulled {CALLS} vapi calls" in done.stdout
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    items: list[Any] = []
    while datetime.now(UTC) < deadline:
        answer = httpx.get(
            f"{server.url}/api/v1/calls", params={"source": "vapi", "limit": 100}, headers=auth
        )
        items = answer.json()["items"]
        if len(items) == CALLS:
            break
        time.sleep(0.2)
    assert sorted(i["external_id"] for i in items) == [f"vapi-call-{i:05d}" for i in range(CALLS)]
