"""Looking for a deleted call everywhere: every chDB table and column, every SQLite table, every file."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path

from convoscope.store.clickhouse import ClickHouseStore

AUDIT_TABLE = "audit_log"
"""Append-only, and the record of a deletion names the call it deleted."""


def chdb_hits(store: ClickHouseStore, needles: Iterable[str]) -> list[str]:
    """``table.column`` for every column of every table of the store's database (every physical row, no
    FINAL) whose text holds one of ``needles``."""
    columns = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        {"db": store.database},
    )
    assert {table for table, _, _ in columns} >= {"calls", "turns", "tool_calls", "spans", "span_logs"}
    hits: list[str] = []
    for table, name, kind in columns:
        text = f"hex(`{name}`)" if str(kind).startswith("AggregateFunction") else f"toString(`{name}`)"
        for needle in needles:
            found = store.query(
                f"SELECT count() FROM `{store.database}`.`{table}` WHERE position({text}, {{n:String}}) > 0",
                {"n": needle},
            )[0][0]
            if found:
                hits.append(f"{table}.{name} holds {needle}")
    return hits


def sqlite_hits(database: Path, needles: Iterable[str]) -> list[str]:
    """``table`` for every SQLite table but the audit log with a row holding one of ``needles`` (zlib
    payloads read decompressed)."""
    wanted = [needle.encode() for needle in needles]
    hits: list[str] = []
    assert database.is_file()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"jobs", "source_events", "outbox", "review_items"} <= set(tables)
        for table in tables:
            if table == AUDIT_TABLE:
                continue
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    if isinstance(value, bytes):
                        try:
                            raw += zlib.decompress(value)
                        except zlib.error:
                            pass
                    hits.extend(f"{table} holds {needle.decode()}" for needle in wanted if needle in raw)
    return hits


def file_hits(roots: Iterable[Path], needles: Iterable[str], *, skip: Iterable[Path] = ()) -> list[str]:
    """Every file under ``roots`` whose bytes hold one of ``needles``."""
    wanted = [needle.encode() for needle in needles]
    skipped = {path.resolve() for path in skip}
    hits: list[str] = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.resolve() in skipped:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits.extend(f"{path} holds {needle.decode()}" for needle in wanted if needle in data)
    return hits
