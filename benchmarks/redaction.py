"""Ingest throughput with redaction before storage on and off, in the same run, as a ratio.

Why this figure: redaction runs on the ingest path (the outbox worker masks every call before it is
stored), so its cost is paid by every call a redacting project sends. The workload is what a voice
agent produces: 20-turn calls with word timings on every turn, a fifth of the turns holding personal
data (a phone number written or read out digit by digit, an email address, a card number), a tool call
with a phone number in its arguments, and metadata. The agent's sentences recur from call to call (they
are templated); the caller's sentences and every personal value are different in every call, so no
cache of earlier texts makes the masking look cheaper than it is.

The path is the real one: ``POST /api/v1/calls`` over HTTP to the app served by uvicorn on a loopback
port (validation and the durable outbox commit), then the outbox worker's drain into chDB (parse,
masking, inserts, follow-up planning, the outbox rows' payloads emptied). The server runs in this
process, with the garbage collector tuned as ``convoscope serve`` tunes it, so that both modes share one
chDB directory and one warm process; the phases alternate
(off, on, off, on...) and the best round of each mode is compared, so drift on a shared box falls on
both alike.

Run: ``uv run python benchmarks/redaction.py`` (about a minute); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import gc
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
from convoscope.server.runner import GC_YOUNG_THRESHOLD
from convoscope.server.services import open_services
from convoscope.store.clickhouse import open_clickhouse_store
from convoscope.testing.live_app import serve_app

WARM_FROM = 10_000_000
AUTH = {"Authorization": f"Bearer {API_KEY}"}
AGENT = [
    "Thanks for calling the clinic, how can I help you today?",
    "Of course, let me check what we have available on Tuesday.",
    "I can do that, which number should we call you back on?",
    "Thank you, that is all booked, is there anything else?",
]
"""What the agent says: templated, so the same sentences recur from call to call, as they do."""
FIRST = (
    "ana ben cara dev elif femi gita hugo ines jon "  # twenty first names
    "kai lena milo nora omar pia quin rosa sami tara"
).split()
LAST = "adams baker chen diaz evans ford garcia hall ito jones khan lopez moore novak ortiz patel".split()
CALLER = [
    "Hi, this is {name}, I would like to move my appointment to next week if possible.",
    "Tuesday afternoon would work well for me, {name} here, ideally after lunch.",
    "That is great, could you send the confirmation to {name} please?",
    "No, that is everything, thanks a lot, bye from {name}.",
]
"""What the caller says: their own words, so no two calls share a sentence."""
DIGIT_WORDS = "oh one two three four five six seven eight nine".split()
SYLLABLES = "ka lo mi ra ne to su vi de ba fo gu pe ri so ty".split()


def _surname(n: int) -> str:
    """A made-up surname spelled from ``n`` (no digits: a caller's plain sentence has none)."""
    syllables = [SYLLABLES[(n >> shift) & 15] for shift in (0, 4, 8, 12, 16)]
    return "".join(syllables).capitalize()


def _luhn_completed(digits: str) -> str:
    """``digits`` with the check digit that makes the whole a valid card number."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return digits + str((10 - total % 10) % 10)


def _personal(n: int, which: int) -> str:
    """A turn with one personal value of the caller ``n``, written or spoken, different for every caller."""
    phone = f"555{200 + n % 800:03d}{(n * 37) % 10000:04d}"
    if which == 0:
        return f"Sure, my number is {phone[:3]}-{phone[3:6]}-{phone[6:]} if you need to call back."
    if which == 1:
        spoken = [DIGIT_WORDS[int(d)] for d in phone]
        groups = [" ".join(spoken[:3]), " ".join(spoken[3:6]), " ".join(spoken[6:])]
        return f"It is {', '.join(groups)}."
    if which == 2:
        return f"You can email me at {FIRST[n % 20]}.{LAST[n // 20 % 16]}{n}@example.com with the details."
    card = _luhn_completed(f"411111{n:09d}")
    return f"The card on file should be {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}."


def _turn(index: int, text: str) -> dict[str, Any]:
    start = index * 4.0
    words = [
        {"word": word, "start_s": start + 0.3 * i, "end_s": start + 0.3 * i + 0.25}
        for i, word in enumerate(text.split())
    ]
    role = "agent" if index % 2 == 0 else "user"
    return {"role": role, "text": text, "start_s": start, "end_s": words[-1]["end_s"], "words": words}


def _text(n: int, index: int) -> str:
    if index % 5 == 3:
        return _personal(n, (index // 5) % 4)
    if index % 2 == 0:
        return AGENT[index // 2 % len(AGENT)]
    name = f"{FIRST[(n + index) % 20].capitalize()} {_surname(n)}"
    return CALLER[index // 2 % len(CALLER)].format(name=name)


def make_call(n: int, tag: str) -> dict[str, Any]:
    """Caller ``n``'s call: ``n`` must differ between every call of a run, so no caller text recurs."""
    turns = [_turn(i, _text(n, i)) for i in range(20)]
    phone = f"555{200 + n % 800:03d}{(n * 37) % 10000:04d}"
    return {
        "source": "generic",
        "external_id": f"{tag}-{n:06d}",
        "started_at": "2026-12-07T10:00:00Z",
        "agent_id": "clinic",
        "turns": turns,
        "tool_calls": [{"id": "t1", "name": "reschedule", "arguments": {"phone": phone, "day": "Tuesday"}}],
        "metadata": {"campaign": "winter", "caller": f"+1{phone}"},
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
                warm = [make_call(WARM_FROM + i, "warm") for i in range(args.batch)]
                run_round(url, services, [orjson.dumps(warm)])
                # The collector as `convoscope serve` sets it: a larger young generation, and what
                # start-up made frozen out of every full collection.
                gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
                gc.freeze()
                for round_no in range(args.rounds):
                    for mode in ("off", "on"):
                        setting = {"enabled": mode == "on", "kinds": ["phone", "email", "card"]}
                        policies = services.redaction.policies
                        policies.write(project, RedactionSettings.model_validate(setting))
                        tag = f"{mode}{round_no}"
                        first = (2 * round_no + (mode == "on")) * args.calls  # callers never recur
                        bodies = [
                            orjson.dumps([make_call(first + start + i, tag) for i in range(args.batch)])
                            for start in range(0, args.calls, args.batch)
                        ]
                        timings[mode].append(run_round(url, services, bodies))
                        rate = args.calls / timings[mode][-1]
                        print(f"round {round_no + 1} redaction {mode}: {rate:.0f} calls/s")
            # Proof that the "on" rounds were masked and the "off" rounds were not.
            ((masked, plain),) = store.query(
                "SELECT countIf(position(text, '[phone]') > 0), "
                "countIf(match(text, 'my number is 555-[0-9]{3}-[0-9]{4}')) FROM `bench`.`turns`"
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
