"""OTLP ingest throughput: spans through ``POST /v1/traces`` and calls assembled, as ratios to the store.

Figures, all from one run on the same machine:

* **store spans** -- ``ClickHouseStore.insert_spans`` of the same spans (decoded before timing) in
  batches of 512: the floor the store sets. Every span figure is divided by it.
* **store calls** -- ``ClickHouseStore.insert_calls`` of the calls the mappers make of these spans
  (assembled before timing): the reference for calls assembled per second.
* **HTTP ack** -- a real ``convoscope serve`` process; two connections POST pre-encoded protobuf exports
  of 512 spans each (Pipecat conversations, ``conversation`` → ``turn`` → ``stt``/``llm``/``tts``, in the
  order the spans end, several conversations interleaved). Ack = the 200, given after the outbox commit.
* **HTTP stored** -- until the outbox is drained (every acknowledged span in the ``spans`` table).
* **calls assembled** -- until every conversation is a call in the calls list (``otlp_settle_s`` = 0, so
  each conversation is assembled as soon as its root span is stored); "last ack to queryable" is the time
  from the last acknowledgement until then.
* **server CPU per span** -- CPU seconds the server process used (all its threads, from ``/proc``), from
  the first POST until every span is stored, per span: unlike the rates, it barely moves with the load
  other processes put on a shared box.

* **Phoenix** (``--phoenix``) -- the same exports posted to Arize Phoenix (``phoenix serve`` on loopback,
  telemetry off, its own working directory), one server at a time: acknowledged and stored spans per second
  (stored = its project's ``recordCount`` over GraphQL). Phoenix is installed by this script into a
  throwaway virtual environment with ``uv`` (never into the project); ``--phoenix-venv`` reuses one.

Run: ``uv run python benchmarks/otlp_ingest.py`` (a few minutes); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    API_KEY,
    ServerProcess,
    count_listed_calls,
    environment,
    free_port,
    post_all,
    print_environment,
    print_table,
    wait_healthy,
    write_json,
)
from convoscope.ingest.otlp import PriceTable, SpanLimits, decode_export, mapper_for, resolve_keys
from convoscope.model import Call, Span
from convoscope.server.worker import assign_identity
from convoscope.store.clickhouse import open_clickhouse_store

PROTOBUF = "application/x-protobuf"
PHOENIX_START_S = 180.0
"""How long Phoenix may take to answer its health check (its first start migrates its database)."""
BATCH_SPANS = 512
GOAL_SPANS_S = 20_000.0
PROJECT = "bench"
T0_NS = 1_790_000_000 * 10**9


def _value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _pb_span(
    rng: random.Random,
    trace_id: bytes,
    parent: bytes,
    name: str,
    start_s: float,
    end_s: float,
    attributes: dict[str, object],
) -> PbSpan:
    return PbSpan(
        trace_id=trace_id,
        span_id=rng.randbytes(8),
        parent_span_id=parent,
        name=name,
        kind=PbSpan.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0_NS + int(start_s * 1e9),
        end_time_unix_nano=T0_NS + int(end_s * 1e9),
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in attributes.items()],
    )


def pipecat_spans(index: int, turns: int, rng: random.Random) -> list[PbSpan]:
    """One Pipecat conversation's spans, children before parents (the order they end)."""
    conversation = f"bench-{index}"
    trace_id = rng.randbytes(16)
    offset = index * 0.7
    root = _pb_span(
        rng,
        trace_id,
        b"",
        "conversation",
        offset,
        offset + 1 + 8 * turns,
        {"conversation.id": conversation, "conversation.type": "voice"},
    )
    spans: list[PbSpan] = []
    for n in range(turns):
        at = offset + 1 + 8 * n
        turn = _pb_span(
            rng,
            trace_id,
            root.span_id,
            "turn",
            at,
            at + 7,
            {
                "turn.number": n + 1,
                "conversation.id": conversation,
                "turn.was_interrupted": n % 5 == 4,
                "turn.user_bot_latency_seconds": 0.6 + rng.random(),
            },
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "stt",
                at,
                at + 1.5,
                {
                    "transcript": f"user says {n} " * 4,
                    "is_final": True,
                    "metrics.ttfb": 0.2,
                    "gen_ai.request.model": "nova-3",
                },
            )
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "llm",
                at + 1.6,
                at + 2.4,
                {
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.operation.name": "chat",
                    "output": f"agent answers {n} " * 6,
                    "gen_ai.usage.input_tokens": 900 + n,
                    "gen_ai.usage.output_tokens": 60,
                    "metrics.ttfb": 0.3 + rng.random() / 5,
                },
            )
        )
        spans.append(
            _pb_span(
                rng,
                trace_id,
                turn.span_id,
                "tts",
                at + 2.0,
                at + 5.0,
                {"text": f"agent answers {n} " * 6, "metrics.character_count": 90, "metrics.ttfb": 0.15},
            )
        )
        spans.append(turn)
    spans.append(root)
    return spans


def build_exports(conversations: int, turns: int, seed: int, *, first: int = 0) -> list[bytes]:
    """Protobuf exports of ``BATCH_SPANS`` spans, conversations interleaved in the order spans end;
    conversations are numbered from ``first``."""
    rng = random.Random(seed)
    spans = [span for i in range(first, first + conversations) for span in pipecat_spans(i, turns, rng)]
    spans.sort(key=lambda s: s.end_time_unix_nano)
    bodies: list[bytes] = []
    for start in range(0, len(spans), BATCH_SPANS):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.append(KeyValue(key="service.name", value=_value("bench-agent")))
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "pipecat"
        scope_spans.spans.extend(spans[start : start + BATCH_SPANS])
        bodies.append(request.SerializeToString())
    return bodies


def bench_store(bodies: list[bytes], workdir: Path) -> dict[str, Any]:
    """Direct ``insert_spans`` and ``insert_calls`` of the same data, in this process."""
    batches = [decode_export(body, PROTOBUF, SpanLimits()).spans for body in bodies]
    spans = [s for batch in batches for s in batch]
    keys = resolve_keys(spans)
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        grouped.setdefault(keys[(span.trace_id, span.span_id)], []).append(span)
    calls: list[Call] = []
    for key, members in grouped.items():
        call = mapper_for(key).assemble(key, members, started_at=None, prices=PriceTable())
        assert call is not None
        calls.append(assign_identity(PROJECT, call))
    store = open_clickhouse_store(path=workdir / "store-chdb", database="otlp_bench")
    try:
        started = time.perf_counter()
        for batch in batches:
            store.insert_spans(PROJECT, batch)
        spans_s = len(spans) / (time.perf_counter() - started)
        started = time.perf_counter()
        for first in range(0, len(calls), 1000):
            store.insert_calls(PROJECT, calls[first : first + 1000], version=1)
        calls_s = len(calls) / (time.perf_counter() - started)
    finally:
        store.close()
    return {"spans": len(spans), "calls": len(calls), "spans_s": spans_s, "calls_s": calls_s}


def bench_http(
    bodies: list[bytes],
    spans_n: int,
    calls_n: int,
    clients: int,
    workdir: Path,
    timeout_s: float,
    *,
    assemble: bool,
    warmup: tuple[list[bytes], int] = ([], 0),
) -> dict[str, Any]:
    """POST the exports from ``clients`` connections to a real server; time ack, storage and assembly.

    Without ``assemble`` the assembly is deferred past the run (settle and idle times of an hour), so the
    figures are those of the receiver and the span storage alone, with no job competing for the CPU.
    ``warmup`` (exports of other conversations, and how many calls they make) is sent and stored (and
    assembled) before the timing starts, so a fresh process's first-request costs are not in the rates.
    """
    delay = "0" if assemble else "3600"
    server = ServerProcess(data_dir=workdir / ("server-data" if assemble else "server-data-spans-only"))
    idle = "30" if assemble else "3600"
    server.start(extra_env={"CONVOSCOPE_OTLP_SETTLE_S": delay, "CONVOSCOPE_OTLP_IDLE_S": idle})
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": PROTOBUF}
    assert server.process is not None
    pid = server.process.pid
    warmup_bodies, warmup_calls = warmup
    listed = calls_n + warmup_calls
    try:
        if warmup_bodies:
            _post_all(server.url, warmup_bodies, headers, clients)
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                _settle(client, warmup_calls if assemble else 0, timeout_s)
        cpu_before = _cpu_s(pid)
        rate = _post_all(server.url, bodies, headers, clients)
        started, last_ack = rate["started"], rate["last_ack"]
        cpu_stored: float | None = None
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        ) as client:
            deadline = time.monotonic() + timeout_s
            stored = assembled = None
            while time.monotonic() < deadline:
                if stored is None and client.get("/healthz").json()["checks"]["ingest"]["pending"] == 0:
                    stored = time.perf_counter()
                    cpu_stored = _cpu_s(pid)
                if stored is not None and (not assemble or count_listed_calls(client) >= listed):
                    assembled = time.perf_counter()
                    break
                time.sleep(0.1)
            if stored is None or assembled is None:
                raise SystemExit(f"not stored and assembled within {timeout_s}s")
    finally:
        server.stop()
    return {
        "clients": clients,
        "ack_spans_s": spans_n / (last_ack - started),
        "stored_spans_s": spans_n / (stored - started),
        "assembled_calls_s": calls_n / (assembled - started) if assemble else None,
        "last_ack_to_stored_s": stored - last_ack,
        "last_ack_to_queryable_s": assembled - last_ack if assemble else None,
        "server_cpu_us_per_span": _per_span_us(cpu_before, cpu_stored, spans_n),
    }


def _settle(client: httpx.Client, calls: int, timeout_s: float) -> None:
    """Wait until the outbox is drained and ``calls`` calls are listed."""
    deadline = time.monotonic() + timeout_s
    while client.get("/healthz").json()["checks"]["ingest"]["pending"] or count_listed_calls(client) < calls:
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm-up was not stored and assembled within {timeout_s}s")
        time.sleep(0.1)


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) a process has used; None where ``/proc`` is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_span_us(before: float | None, after: float | None, spans: int) -> float | None:
    return None if before is None or after is None else 1e6 * (after - before) / spans


def _phoenix_python(venv: Path) -> Path:
    """A virtual environment with arize-phoenix, made with uv if it is not there yet (never the project's)."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing arize-phoenix into {venv} (throwaway, outside the project)")
        subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "arize-phoenix"], check=True)
    return python


def _phoenix_stored(client: httpx.Client) -> int:
    query = {"query": "{ projects { edges { node { recordCount } } } }"}
    edges = client.post("/graphql", json=query).raise_for_status().json()["data"]["projects"]["edges"]
    return sum(int(edge["node"]["recordCount"]) for edge in edges)


def bench_phoenix(
    bodies: list[bytes], spans_n: int, clients: int, workdir: Path, venv: Path, timeout_s: float
) -> dict[str, Any]:
    """The same exports into Arize Phoenix on loopback; time its acks and until it has stored every span."""
    python = _phoenix_python(venv)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "CONVOSCOPE_"))},
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(workdir / "phoenix.log", "ab")
    process = subprocess.Popen(
        [str(python), "-m", "phoenix.server.main", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(process, url, timeout_s=PHOENIX_START_S, poll_s=0.5, probe_timeout_s=2):
            if process.poll() is not None:
                raise SystemExit(f"phoenix exited with {process.returncode}; see {workdir / 'phoenix.log'}")
        rate = _post_all(url, bodies, {"Content-Type": PROTOBUF}, clients)
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + timeout_s
            while _phoenix_stored(client) < spans_n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"phoenix did not store {spans_n} spans within {timeout_s}s")
                time.sleep(0.2)
            stored = time.perf_counter()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return {
        "spans": spans_n,
        "ack_spans_s": spans_n / (rate["last_ack"] - rate["started"]),
        "stored_spans_s": spans_n / (stored - rate["started"]),
        "last_ack_to_stored_s": stored - rate["last_ack"],
    }


def _post_all(url: str, bodies: list[bytes], headers: dict[str, str], clients: int) -> dict[str, float]:
    """POST every body from ``clients`` connections; the start and the last acknowledgement."""
    sent = post_all(
        url, "/v1/traces", bodies, headers, clients=clients, accepted=200, timeout_s=120, what="export"
    )
    return {"started": sent.started, "last_ack": sent.last_ack}


def report(results: dict[str, Any]) -> None:
    store, http, alone = results["store"], results["http"], results["http_spans_only"]

    def ratio(value: float, reference: float) -> str:
        return f"{value / reference:.2f}x"

    print(
        f"\n{store['spans']:,} spans in {len(results['bodies'])} exports of {BATCH_SPANS}, "
        f"{store['calls']:,} calls"
    )
    print_table(
        ["path", "rate", "vs store"],
        [
            ["store insert_spans (reference)", f"{store['spans_s']:,.0f} spans/s", "1.00x"],
            [
                "HTTP ack, assembly deferred",
                f"{alone['ack_spans_s']:,.0f} spans/s",
                ratio(alone["ack_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP stored, assembly deferred",
                f"{alone['stored_spans_s']:,.0f} spans/s",
                ratio(alone["stored_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP ack, assembling as spans come",
                f"{http['ack_spans_s']:,.0f} spans/s",
                ratio(http["ack_spans_s"], store["spans_s"]),
            ],
            [
                "HTTP stored, assembling as spans come",
                f"{http['stored_spans_s']:,.0f} spans/s",
                ratio(http["stored_spans_s"], store["spans_s"]),
            ],
            ["store insert_calls (reference)", f"{store['calls_s']:,.0f} calls/s", "1.00x"],
            [
                "calls assembled (listed)",
                f"{http['assembled_calls_s']:,.1f} calls/s",
                ratio(http["assembled_calls_s"], store["calls_s"]),
            ],
        ],
    )
    print(
        f"last ack -> spans stored: {http['last_ack_to_stored_s']:.2f} s; "
        f"-> every call queryable: {http['last_ack_to_queryable_s']:.2f} s"
    )
    cpu = alone["server_cpu_us_per_span"]
    if cpu is not None:
        per_cpu_s = 1e6 / cpu
        print(f"server CPU until stored, assembly deferred: {cpu:.1f} us/span ({per_cpu_s:,.0f} spans/CPU-s)")
    phoenix = results.get("phoenix")
    if phoenix is not None:
        ours = results["http_spans_only_phoenix_sized"]
        print(f"\nArize Phoenix, the first {phoenix['spans']:,} spans, one server at a time:")
        print_table(
            ["server", "ack spans/s", "stored spans/s", "last ack -> stored"],
            [
                [
                    "convoscope (assembly deferred)",
                    f"{ours['ack_spans_s']:,.0f}",
                    f"{ours['stored_spans_s']:,.0f}",
                    f"{ours['last_ack_to_stored_s']:.2f} s",
                ],
                [
                    "Arize Phoenix",
                    f"{phoenix['ack_spans_s']:,.0f}",
                    f"{phoenix['stored_spans_s']:,.0f}",
                    f"{phoenix['last_ack_to_stored_s']:.2f} s",
                ],
            ],
        )
        print(
            f"stored spans/s, convoscope / Phoenix: {ours['stored_spans_s'] / phoenix['stored_spans_s']:.1f}x"
        )
    goal = "meets" if alone["ack_spans_s"] >= GOAL_SPANS_S else "misses"
    print(f"goal >= {GOAL_SPANS_S:,.0f} spans/s acknowledged: {goal} it")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation (4 spans each, + root)")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 conversations")
    parser.add_argument(
        "--warmup", type=int, default=50, help="conversations sent and stored before timing (0: none)"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--phoenix", action="store_true", help="also measure Arize Phoenix (throwaway venv)")
    parser.add_argument("--phoenix-venv", type=Path, default=None, help="reuse this Phoenix venv")
    parser.add_argument("--phoenix-exports", type=int, default=8, help="exports of 512 spans sent to Phoenix")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations = 100
    env = environment()
    print_environment(env)
    workdir = Path(tempfile.mkdtemp(prefix="convoscope-bench-otlp-"))
    try:
        bodies = build_exports(args.conversations, args.turns, seed=7)
        warmup = (build_exports(args.warmup, args.turns, seed=8, first=args.conversations), args.warmup)
        store = bench_store(bodies, workdir)
        spans_only, http = (
            bench_http(
                bodies,
                store["spans"],
                store["calls"],
                args.clients,
                workdir,
                args.timeout,
                assemble=assemble,
                warmup=warmup,
            )
            for assemble in (False, True)
        )
        extra: dict[str, Any] = {}
        if args.phoenix:
            subset = bodies[: args.phoenix_exports]
            subset_spans = sum(len(decode_export(b, PROTOBUF, SpanLimits()).spans) for b in subset)
            extra["http_spans_only_phoenix_sized"] = bench_http(
                subset, subset_spans, 0, args.clients, workdir / "small", args.timeout, assemble=False
            )
            venv = args.phoenix_venv or workdir / "phoenix-venv"
            extra["phoenix"] = bench_phoenix(subset, subset_spans, args.clients, workdir, venv, args.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = {
        "environment": env,
        "args": vars(args) | {"json": str(args.json)},
        "bodies": bodies,
        "store": store,
        "http_spans_only": spans_only,
        "http": http,
        **extra,
    }
    report(results)
    results.pop("bodies")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
