"""Ingest recovery: throughput with 1 poisoned row in every 1,000 against the clean rate, in the same run.

A *poisoned* row is one the store refuses on insert while the store itself stays healthy; it is made real
with a ClickHouse ``CHECK`` constraint on ``calls`` (the engine refuses the row, as it would any value it
cannot hold). The worker must find such rows by splitting the failed batch, store every good row, and
set the poisoned ones aside for a later retry, without slowing the rows around them by more than 10 %.

Both phases drain the same number of outbox rows (one call each, as webhooks and single POSTs send them)
through ``IngestWorker.drain_once`` over the real stores: chDB and SQLite in a temporary data directory.
The rows are committed to the outbox before timing (the 202 path is not what recovery changes). The
phases alternate, ``--rounds`` times, each in a fresh database, and the ratio of the medians is printed.

Run: ``uv run python benchmarks/ingest_recovery.py`` (about 1-2 minutes); ``--rows 2000 --rounds 1`` for a
smoke run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment
from convoscope.config import Settings
from convoscope.server.services import Services, open_services
from convoscope.store.clickhouse import open_clickhouse_store
from convoscope.testing import call_payload

POISON_EVERY = 1000


def _enqueue(services: Services, rows: int, *, poisoned: bool) -> int:
    """Commit ``rows`` one-call rows, every ``POISON_EVERY``-th poisoned when asked; returns how many were."""
    project = services.default_project.id
    bad = 0
    for n in range(rows):
        is_poison = poisoned and n % POISON_EVERY == POISON_EVERY // 2
        bad += is_poison
        external_id = f"poison-{n}" if is_poison else f"call-{n}"
        payload = orjson.dumps(call_payload(external_id=external_id))
        services.meta.enqueue(project, kind="calls", payload=payload, content_type="application/json")
    return bad


def _phase(data_dir: Path, rows: int, *, poisoned: bool) -> tuple[float, int, int]:
    """Drain time, good calls stored and rows still pending (poisoned, waiting for their retry)."""
    store = open_clickhouse_store(path=data_dir / "chdb", database=f"b_{uuid.uuid4().hex[:12]}")
    services = open_services(Settings(data_dir=data_dir, outbox_retry_s=3600.0), store=store)
    try:
        store.command(
            f"ALTER TABLE `{store.database}`.calls ADD CONSTRAINT no_poison "
            "CHECK NOT startsWith(external_id, 'poison')"
        )
        bad = _enqueue(services, rows, poisoned=poisoned)
        started = time.perf_counter()
        while services.worker.drain_once():
            pass
        elapsed = time.perf_counter() - started
        stored = services.store.count_calls(services.default_project.id)
        pending = services.meta.pending_count()
        if stored != rows - bad or pending != bad:
            raise SystemExit(
                f"lost rows: stored {stored} of {rows - bad} good calls, {pending} pending of {bad}"
            )
        return elapsed, stored, pending
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="Outbox rows per phase.")
    parser.add_argument("--rounds", type=int, default=3, help="Clean/poisoned pairs to run.")
    args = parser.parse_args()
    print_environment(environment())
    clean: list[float] = []
    poisoned: list[float] = []
    for round_ in range(args.rounds):
        for label, times, flag in (("clean", clean, False), ("poisoned", poisoned, True)):
            with tempfile.TemporaryDirectory() as tmp:
                elapsed, stored, pending = _phase(Path(tmp), args.rows, poisoned=flag)
            times.append(args.rows / elapsed)
            print(
                f"round {round_ + 1} {label:>8}: {stored:>6} good calls stored, {pending} set aside, "
                f"{args.rows / elapsed:8.0f} rows/s"
            )
    ratio = statistics.median(poisoned) / statistics.median(clean)
    clean_rate, poisoned_rate = statistics.median(clean), statistics.median(poisoned)
    print(f"\nmedian clean {clean_rate:.0f} rows/s, poisoned {poisoned_rate:.0f} rows/s")
    print(f"poisoned / clean = {ratio:.3f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
