"""Ingest throughput with redaction before storage on and off, in the same run, as a ratio.

Why this figure: redaction runs on the ingest path (the outbox worker masks every call before it is
stored), so its cost is paid by every call a redacting project sends. The workload is what a voice
agent produces: 20-turn calls with word timings on every turn, a fifth of the turns holding personal
data (a phone number written or read out digit by digit, an email address, a card number), a tool call
with a phone number in its arguments, and metadata.

The path is the real one: ``POST /api/v1/calls`` over HTTP to the app served by uvicorn on a loopback
port (validation and the durable outbox commit), then the outbox worker's drain into chDB (parse,
masking, inserts, follow-up planning, the outbox rows' payloads emptied). The server runs in this
process so that both modes share one chDB directory and one warm process; the phases alternate
(off, on, off, on...) and the best round of each mode is compared, so drift on a shared box falls on
both alike.

Run: ``uv run python benchmarks/redaction.py`` (about a minute); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import API_KEY, environment, print_environment, print_table
from convoscope.config import Settings
from convoscope.redaction import RedactionSettings
from convoscope.server.app import create_app
from convoscope.server.services import open_services
from convoscope.store.clickhouse import open_clickhouse_store
from convoscope.testing.live_app import serve_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PLAIN = [
    "Thanks for calling the clinic, how can I help you today?",
    "I would like to move my appointment to next week if possible.",
    "Of course, let me check what we have available on Tuesday.",
    "Tuesday afternoon would work well for me, around three.",
]
PERSONAL = [
    "Sure, my number is 555-867-5309 if you need to call back.",
    "It is five five five, eight six seven, five three oh nine.",
    "You can email me at jane.doe@example.com with the details.",
    "The card on file should be 4111 1111 1111 1111.",
]


def _turn(index: int, text: str) -> dict[str, Any]:
    start = index * 4.0
    words = [
        {"word": word, "start_s": start + 0.3 * i, "end_s": start + 0.3 * i + 0.25}
        for i, word in enumerate(text.split())
    ]
    role = "agent" if index % 2 == 0 else "user"
    return {"role": role, "text": text, "start_s": start, "end_s": words[-1]["end_s"], "words": words}


def make_call(n: int, tag: str) -> dict[str, Any]:
    turns = [
        _turn(i, PERSONAL[(i // 5) % len(PERSONAL)] if i % 5 == 3 else PLAIN[i % len(PLAIN)])
        for i in range(20)
    ]
    return {
        "source": "generic",
        "external_id": f"{tag}-{n:06d}",
        "started_at": "2026-12-07T10:00:00Z",
        "agent_id": "clinic",
        "turns": turns,
        "tool_calls": [
            {"id": "t1", "name": "reschedule", "arguments": {"phone": "5558675309", "day": "Tuesday"}}
        ],
        "metadata": {"campaign": "winter", "caller": "+15558675309"},
    }


def run_round(url: str, services: Any, bodies: list[bytes]) -> float:
    """Seconds from the first POST until the worker has stored every call of ``bodies``."""
    started = time.perf_counter()
    with httpx.Client(
        base_url=url, headers={**AUTH, "Content-Type": "application/json"}, timeout=60
    ) as client:
        for body in bodies:
            response = client.post("/api/v1/calls", content=body)
            if response.status_code != 202:
                raise SystemExit(f"ingest refused: {response.status_code} {response.text[:300]}")
            while services.worker.drain_once():
                pass
    while services.worker.drain_once():
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="Calls per round.")
    parser.add_argument("--batch", type=int, default=100, help="Calls per POST.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each mode (alternating).")
    parser.add_argument("--quick", action="store_true", help="A small smoke run.")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 200, 1
    print_environment(environment())
    with tempfile.TemporaryDirectory(prefix="cvs-redaction-bench-") as tmp:
        root = Path(tmp)
        store = open_clickhouse_store(path=root / "chdb", database="bench")
        settings = Settings(data_dir=root / "data", init_api_key=API_KEY)
        services = open_services(settings, store=store)
        project = services.default_project.id
        timings: dict[str, list[float]] = {"off": [], "on": []}
        try:
            with serve_app(create_app(services, run_worker=False)) as url:
                # Warm-up: imports, the detectors' caches, the first inserts.
                run_round(url, services, [orjson.dumps([make_call(i, "warm") for i in range(args.batch)])])
                for round_no in range(args.rounds):
                    for mode in ("off", "on"):
                        setting = {"enabled": mode == "on", "kinds": ["phone", "email", "card"]}
                        policies = services.redaction.policies
                        policies.write(project, RedactionSettings.model_validate(setting))
                        tag = f"{mode}{round_no}"
                        bodies = [
                            orjson.dumps([make_call(start + i, tag) for i in range(args.batch)])
                            for start in range(0, args.calls, args.batch)
                        ]
                        timings[mode].append(run_round(url, services, bodies))
                        rate = args.calls / timings[mode][-1]
                        print(f"round {round_no + 1} redaction {mode}: {rate:.0f} calls/s")
            # Proof that the "on" rounds were masked and the "off" rounds were not.
            ((masked, plain),) = store.query(
                "SELECT countIf(position(text, '[phone]') > 0), countIf(position(text, '555-867-5309') > 0) "
                "FROM `bench`.`turns`"
            )
            print(f"stored turns with a masked phone: {masked}; with the phone as sent: {plain}")
        finally:
            services.close()
    best = {mode: args.calls / min(seconds) for mode, seconds in timings.items()}
    print()
    print_table(
        ["redaction", "calls/s (best round)", "rounds (calls/s)"],
        [
            [mode, f"{best[mode]:.0f}", ", ".join(f"{args.calls / s:.0f}" for s in timings[mode])]
            for mode in ("off", "on")
        ],
    )
    ratio = best["on"] / best["off"]
    print(f"\nthroughput with redaction on / off: {ratio:.2f} (cost {1 - ratio:.0%}; goal <= 25 %)")


if __name__ == "__main__":
    main()
