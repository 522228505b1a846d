"""Deletion and retention: what deleting one call costs in a store of N calls, and what one retention
pass costs over it.

The store is seeded fast: ``--template`` synthetic calls through the store path (``insert_calls``, with
turns and tool calls), then copied inside the engine (``INSERT … SELECT`` with new ids, each copy a day
earlier) until it holds ``--calls`` calls, with their metadata (a job per call) in SQLite. Each figure is
printed also as a ratio to references measured in the same run on the same store: a bare
``SELECT count() FROM calls FINAL`` of the project, and ``get_call`` of one call.

* **delete one call** -- ``Eraser.delete_call`` (every table, the rollups, metadata, blobs, and the wait
  until the replaced parts left the disk), ``--deletes`` times on calls picked at random.
* **retention pass** -- ``Eraser.apply`` with ``calls_days`` set so that about ``--expire`` of the calls
  are past it: finding them, deleting them everywhere, recomputing the rollups.

Run: ``uv run python benchmarks/deletion.py`` (100,000 calls, a few minutes on a 2-core box);
``--calls 1000000`` for a million (the seeding then takes most of the time). Do not run it beside other
benchmarks.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, print_environment, print_table, write_json
from _synth import synth_calls
from convoscope.config import Settings
from convoscope.runtime.stores import open_stores
from convoscope.server.worker import assign_identity
from convoscope.store.clickhouse import ClickHouseStore
from convoscope.store.metadata import JobSpec
from convoscope.store.retention import SETTINGS_PATH, Eraser
from convoscope.store.rows import micros


def seed(store: ClickHouseStore, project: str, calls: int, template: int) -> dict[str, float]:
    """``template`` calls through the store path, then engine-side copies up to ``calls``."""
    t0 = time.perf_counter()
    for start in range(0, template, 1000):
        batch = [assign_identity(project, c) for c in synth_calls(min(1000, template - start), start=start)]
        store.insert_calls(project, batch, version=1)
    t1 = time.perf_counter()
    db = store.database
    copies = -(-calls // template)
    for k in range(1, copies):
        suffix = f"~{k}"
        store.command(
            f"INSERT INTO `{db}`.calls SELECT * REPLACE (concat(external_id, '{suffix}') AS external_id, "
            f"concat(id, '{suffix}') AS id, started_at - toIntervalDay({k}) AS started_at) "
            f"FROM (SELECT * FROM `{db}`.calls WHERE position(external_id, '~') = 0)"
        )
        store.command(
            f"INSERT INTO `{db}`.turns SELECT * REPLACE (concat(call_id, '{suffix}') AS call_id, "
            f"call_started_at - toIntervalDay({k}) AS call_started_at) "
            f"FROM (SELECT * FROM `{db}`.turns WHERE position(call_id, '~') = 0)"
        )
        store.command(
            f"INSERT INTO `{db}`.tool_calls SELECT * REPLACE (concat(call_id, '{suffix}') AS call_id) "
            f"FROM (SELECT * FROM `{db}`.tool_calls WHERE position(call_id, '~') = 0)"
        )
    t2 = time.perf_counter()
    return {"template_s": round(t1 - t0, 1), "copies_s": round(t2 - t1, 1)}


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--template", type=int, default=5_000)
    parser.add_argument("--deletes", type=int, default=5)
    parser.add_argument("--expire", type=float, default=0.1, help="share of the calls past the limit")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    env = environment()
    print_environment(env)
    root = Path(tempfile.mkdtemp(prefix="cvs-bench-deletion-"))
    try:
        stores = open_stores(Settings(data_dir=root))
        store = stores.store
        assert isinstance(store, ClickHouseStore)
        project = stores.default_project.id
        seeding = seed(store, project, args.calls, args.template)
        total = store.count_calls(project)
        ids = [str(row[0]) for row in store.query(f"SELECT id FROM `{store.database}`.calls")]
        rng = random.Random(7)
        stores.meta.enqueue_jobs(
            project, [JobSpec(kind="evals.run", call_id=i) for i in rng.sample(ids, min(20_000, len(ids)))]
        )
        print(f"seeded {total:,} calls ({seeding}); active parts settle ...", flush=True)
        time.sleep(5)
        eraser = Eraser(store, stores.meta, stores.blobs)
        count_sql = f"SELECT count() FROM `{store.database}`.calls FINAL WHERE project_id = {{p:String}}"
        picked = rng.sample(ids, args.deletes * 2)
        references: dict[str, list[float]] = {"count() FROM calls FINAL": [], "get_call": []}
        deletes: list[float] = []
        for n in range(args.deletes):
            references["count() FROM calls FINAL"].append(
                timed(lambda: store.query(count_sql, {"p": project}))
            )
            references["get_call"].append(timed(lambda n=n: store.get_call(project, picked[2 * n + 1])))
            deletes.append(timed(lambda n=n: eraser.delete_call(project, picked[2 * n])))
        ref_count = statistics.median(references["count() FROM calls FINAL"])
        ref_get = statistics.median(references["get_call"])
        # Retention: the limit falls where about --expire of the calls started before it.
        cutoff_us = int(
            store.query(
                f"SELECT toUnixTimestamp64Micro(quantileExact({args.expire})(started_at)) "
                f"FROM `{store.database}`.calls FINAL WHERE project_id = {{p:String}}",
                {"p": project},
            )[0][0]
        )
        cutoff = datetime.fromtimestamp(cutoff_us / 1e6, UTC)
        stores.meta.update_project_settings(project, SETTINGS_PATH, {"calls_days": 30})
        expiring = len(store.calls_started_before(project, cutoff))
        before_count = timed(lambda: store.query(count_sql, {"p": project}))
        result: dict[str, Any] = {}
        apply_ms = timed(
            lambda: result.update(eraser.apply(project, now=cutoff + timedelta(days=30)).as_json())
        )
        after = store.count_calls(project)
        assert result["calls_deleted"] == expiring and after == total - args.deletes - expiring, (
            result,
            after,
        )
        rows = [
            ["count() FROM calls FINAL (reference)", f"{ref_count:.1f}", "1.0", f"{ref_count / ref_get:.2f}"],
            ["get_call (reference)", f"{ref_get:.1f}", f"{ref_get / ref_count:.2f}", "1.0"],
            [
                f"delete one call (median of {args.deletes})",
                f"{statistics.median(deletes):.1f}",
                f"{statistics.median(deletes) / ref_count:.1f}",
                f"{statistics.median(deletes) / ref_get:.1f}",
            ],
            [
                f"retention pass: {expiring:,} calls past the limit",
                f"{apply_ms:.0f}",
                f"{apply_ms / before_count:.0f}",
                f"{apply_ms / ref_get:.0f}",
            ],
        ]
        print(f"\nstore: {total:,} calls; deletes (ms): {[round(d) for d in deletes]}")
        print_table(["operation", "ms", "x count FINAL", "x get_call"], rows)
        write_json(
            args.json,
            {
                "environment": env,
                "calls": total,
                "seeding": seeding,
                "delete_ms": deletes,
                "references_ms": references,
                "retention": {"ms": apply_ms, "reference_count_ms": before_count, **result},
                "cutoff_us": micros(cutoff),
            },
        )
        stores.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
