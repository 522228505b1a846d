"""Deleting calls from the event store for real: every row of every table, and the rollups adjusted.

A call lives in ``calls`` (every version of its natural key), ``turns``, ``tool_calls`` and ``scores``
(by every id those versions had), ``spans`` (linked to it, and every span of the traces they belong to),
``span_logs`` (of those traces), and ``rollup_call_map``; its figures are summed into ``call_hours`` and
``score_hours``. Deleting it removes the rows and recomputes the hours it was counted in.

**Real deletion.** Rows go with ``ALTER TABLE … DELETE`` waited for (``mutations_sync = 2``), which
rewrites the parts that held them; a lightweight ``DELETE FROM`` would only hide them until a merge. The
rewritten parts' predecessors stay on disk for ``old_parts_lifetime`` (eight minutes by default) in case a
crash catches the new part before it is synced; the deletion lowers that to zero on the tables it touched,
restarts their cleanup and waits until the old parts are gone, then restores the setting. So when a
deletion returns, no file of the data directory holds the rows.

**Nothing of the call in the statements.** The calls to delete are written to a ``Memory`` table (held
in memory only, never on disk) and each mutation reads them through ``IN (SELECT …)``. ClickHouse keeps
every mutation's text in a file beside the table (``mutation_N.txt``); with the ids in the statement, the
ids of every deleted call would stay on disk in those files.

Mixed into :class:`~.clickhouse.ClickHouseStore`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import StoreError, Unsupported
from .rows import micros
from .schema import (
    CALLS,
    ROLLUP_CALL_MAP,
    ROLLUP_HOURS,
    SCORES,
    SPAN_LOGS,
    SPANS,
    TOOL_CALLS,
    TURNS,
    TableSpec,
)

log = logging.getLogger(__name__)

__all__ = ["CALL_TABLES", "CallKey", "DeletedCalls", "DeletionMixin", "ExpiredRecordings"]

CALL_TABLES: tuple[TableSpec, ...] = (CALLS, TURNS, TOOL_CALLS, SCORES, SPANS, SPAN_LOGS, ROLLUP_CALL_MAP)
"""The tables a call has rows in (the hourly figure tables hold sums, recomputed instead)."""

_TARGETS = "deletion_targets"
_PURGE_WAIT_S = 30.0
"""How long a deletion waits for the old parts of the tables it rewrote to leave the disk."""
_SHA_PATTERN = "blob:([0-9a-f]{64})"
"""A stored recording in a ``recordings`` JSON (its ``uri``); ``extractAll`` returns the SHA-256."""
_BLOB_URI = '"blob:[0-9a-f]{64}"'


@dataclass(frozen=True, slots=True)
class CallKey:
    """One call by its natural key, with its current id."""

    source: str
    external_id: str
    call_id: str


@dataclass
class DeletedCalls:
    """What a deletion removed: the calls, every id their versions had, and the recordings they named."""

    calls: list[CallKey] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        """How many calls were deleted."""
        return len(self.calls)


@dataclass
class ExpiredRecordings:
    """The calls whose recordings were let go, and the blobs they named."""

    calls: int = 0
    blobs: set[str] = field(default_factory=set)


class DeletionMixin:
    """Deletes calls and recordings; mixed into ``ClickHouseStore``."""

    _db: str
    _client: Any
    _cluster: str | None
    _rows: Callable[[str, Mapping[str, object], str], list[dict[str, Any]]]
    _table: Callable[[TableSpec], str]
    _execute: Callable[[str, Mapping[str, object], str], None]
    _compute_hours: Callable[[str, list[int], int], None]
    _note_write: Callable[[str], None]

    _deletion_lock = threading.Lock()

    # -- finding -------------------------------------------------------------------------------------

    def find_call(self, project_id: str, call_id: str) -> CallKey | None:
        """The current call with this id in the project, or None (another project's id is None too)."""
        calls = self._table(CALLS)
        rows = self._rows(
            f"SELECT source, external_id, id FROM {calls} FINAL PREWHERE project_id = {{p:String}} "
            f"AND (source, external_id) IN (SELECT source, external_id FROM {calls} "
            "PREWHERE project_id = {p:String} AND id = {id:String}) WHERE id = {id:String}",
            {"p": project_id, "id": call_id},
            "find a call to delete",
        )
        return _keys(rows)[0] if rows else None

    def calls_started_before(self, project_id: str, before: datetime) -> list[CallKey]:
        """The project's current calls that started before ``before``."""
        rows = self._rows(
            f"SELECT source, external_id, id FROM {self._table(CALLS)} FINAL "
            "PREWHERE project_id = {p:String} WHERE started_at < fromUnixTimestamp64Micro({t:Int64}, 'UTC')",
            {"p": project_id, "t": micros(before)},
            "find the calls started before a date",
        )
        return _keys(rows)

    # -- deleting ------------------------------------------------------------------------------------

    def delete_calls(self, project_id: str, keys: Sequence[CallKey]) -> DeletedCalls:
        """Remove every row of these calls (all versions) and recompute the hours they were counted in.

        Returns the ids and the recording blobs the deleted rows named; the blobs themselves are the
        caller's to delete (another call may share one).
        """
        self._refuse_on_cluster("delete calls")
        deleted = DeletedCalls(calls=list(keys))
        if not keys:
            return deleted
        with self._deletion_lock:
            batch = uuid.uuid4().hex
            self._ensure_targets()
            try:
                self._stage(batch, project_id, "key", [(k.source, k.external_id) for k in keys])
                params: dict[str, object] = {"p": project_id, "b": batch}
                keyed = self._targets_sql("key", "value, value2")
                calls = self._table(CALLS)
                found = self._rows(
                    "SELECT DISTINCT id, toUnixTimestamp(toStartOfHour(toDateTime(started_at, 'UTC'))) AS h, "
                    f"arrayJoin(arrayConcat([''], extractAll(recordings, '{_SHA_PATTERN}'))) AS sha "
                    f"FROM {calls} PREWHERE project_id = {{p:String}} AND (source, external_id) IN ({keyed})",
                    params,
                    "read the calls to delete",
                )
                deleted.ids = {str(row["id"]) for row in found}
                deleted.blobs = {str(row["sha"]) for row in found if row["sha"]}
                hours = {int(row["h"]) for row in found}
                hours |= {
                    int(row["h"])
                    for row in self._rows(
                        f"SELECT toUnixTimestamp(hour) AS h FROM {self._table(ROLLUP_CALL_MAP)} "
                        f"PREWHERE project_id = {{p:String}} AND (source, external_id) IN ({keyed})",
                        params,
                        "read the hours the deleted calls were counted in",
                    )
                }
                self._stage(batch, project_id, "call", [(call_id, "") for call_id in sorted(deleted.ids)])
                spans = self._table(SPANS)
                by_id = self._targets_sql("call", "value")
                self._execute(
                    f"INSERT INTO {self._table_name(_TARGETS)} SELECT DISTINCT {{b:String}}, 'trace', "
                    f"{{p:String}}, trace_id, '' FROM {spans} PREWHERE project_id = {{p:String}} "
                    f"WHERE call_id IN ({by_id}) OR conversation_id IN "
                    f"({self._targets_sql('key', 'value2')})",
                    params,
                    "find the traces of the deleted calls",
                )
                traces = self._targets_sql("trace", "value")
                conditions = {
                    CALLS: f"(source, external_id) IN ({keyed})",
                    TURNS: f"call_id IN ({by_id})",
                    TOOL_CALLS: f"call_id IN ({by_id})",
                    SCORES: f"call_id IN ({by_id})",
                    SPANS: f"(call_id IN ({by_id}) OR trace_id IN ({traces}))",
                    SPAN_LOGS: f"trace_id IN ({traces})",
                }
                touched = [spec for spec in conditions if self._mutate_delete(spec, conditions[spec], params)]
                self._recompute(project_id, hours)
                if self._mutate_delete(ROLLUP_CALL_MAP, f"(source, external_id) IN ({keyed})", params):
                    touched.append(ROLLUP_CALL_MAP)
            finally:
                self._execute(
                    f"TRUNCATE TABLE {self._table_name(_TARGETS)}", {}, "clear the deletion targets"
                )
            self._purge_old_parts(touched)
        self._note_write(project_id)
        return deleted

    def expire_recordings(self, project_id: str, before: datetime) -> ExpiredRecordings:
        """Let go of the recordings of calls started before ``before``: the call rows keep everything
        else, with ``has_recording`` 0 and each stored recording's ``uri`` null. Returns the blobs named."""
        self._refuse_on_cluster("let go of recordings")
        calls = self._table(CALLS)
        params: dict[str, object] = {"p": project_id, "t": micros(before)}
        where = (
            "project_id = {p:String} AND started_at < fromUnixTimestamp64Micro({t:Int64}, 'UTC') "
            "AND has_recording = 1"
        )
        found = self._rows(
            f"SELECT count(DISTINCT source, external_id) AS n, "
            f"groupUniqArrayArray(extractAll(recordings, '{_SHA_PATTERN}')) AS shas "
            f"FROM {calls} WHERE {where}",
            params,
            "find the recordings past their limit",
        )
        expired = ExpiredRecordings(calls=int(found[0]["n"]), blobs={str(s) for s in found[0]["shas"]})
        if not expired.calls:
            return expired
        with self._deletion_lock:
            try:
                self._client.command(
                    f"ALTER TABLE {calls} UPDATE has_recording = 0, "
                    f"recordings = replaceRegexpAll(recordings, '{_BLOB_URI}', 'null') WHERE {where}",
                    parameters=params,
                    settings={"mutations_sync": 2},
                )
            except Exception as exc:
                raise StoreError(f"ClickHouse store could not let go of recordings: {exc}") from exc
            self._purge_old_parts([CALLS])
        return expired

    def blobs_in_use(self, shas: Sequence[str]) -> set[str]:
        """Which of ``shas`` a call row of any project still names as a recording."""
        if not shas:
            return set()
        rows = self._rows(
            f"SELECT DISTINCT sha FROM (SELECT arrayJoin(extractAll(recordings, '{_SHA_PATTERN}')) AS sha "
            f"FROM {self._table(CALLS)} WHERE has_recording = 1 OR position(recordings, 'blob:') > 0) "
            "WHERE sha IN {shas:Array(String)}",
            {"shas": sorted(set(shas))},
            "check which recordings other calls still name",
        )
        return {str(row["sha"]) for row in rows}

    # -- helpers -------------------------------------------------------------------------------------

    def _refuse_on_cluster(self, what: str) -> None:
        """Deletion is written for one engine: on a cluster it is refused before anything is touched.

        Its mutations read the calls to delete from a ``Memory`` table on the node that runs them, and
        would have to run on every shard's ``_local`` table with those targets sent along (a replicated
        targets table, or ``GLOBAL IN``), then purge the replaced parts on every replica. That path has
        never run against a real cluster, so it is not offered rather than offered untested.
        """
        if self._cluster is not None:
            raise Unsupported(
                f"cannot {what} on the ClickHouse cluster {self._cluster!r} (CONVOSCOPE_CLICKHOUSE_CLUSTER):"
                " deletion and retention run on chDB or a single ClickHouse server only"
            )

    def _table_name(self, name: str) -> str:
        return f"`{self._db}`.`{name}`"

    def _ensure_targets(self) -> None:
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {self._table_name(_TARGETS)} (batch String, kind String, "
            "project_id String, value String, value2 String) ENGINE = Memory",
            {},
            "create the deletion targets",
        )

    def _stage(self, batch: str, project_id: str, kind: str, values: Sequence[tuple[str, str]]) -> None:
        if not values:
            return
        try:
            self._client.insert(
                _TARGETS,
                [(batch, kind, project_id, first, second) for first, second in values],
                database=self._db,
                column_names=("batch", "kind", "project_id", "value", "value2"),
                column_type_names=("String", "String", "String", "String", "String"),
            )
        except Exception as exc:
            raise StoreError(f"ClickHouse store could not stage the calls to delete: {exc}") from exc

    def _targets_sql(self, kind: str, columns: str) -> str:
        return (
            f"SELECT {columns} FROM {self._table_name(_TARGETS)} "
            f"WHERE batch = {{b:String}} AND kind = '{kind}'"
        )

    def _mutate_delete(self, spec: TableSpec, condition: str, params: Mapping[str, object]) -> bool:
        """``ALTER TABLE … DELETE`` waited for; False (and nothing run) when no row matches."""
        table = self._table(spec)
        found = self._rows(
            f"SELECT count() AS n FROM {table} WHERE project_id = {{p:String}} AND {condition}",
            params,
            f"count the rows to delete from {spec.name}",
        )
        if not int(found[0]["n"]):
            return False
        try:
            self._client.command(
                f"ALTER TABLE {table} DELETE WHERE project_id = {{p:String}} AND {condition}",
                parameters=dict(params),
                settings={"mutations_sync": 2},
            )
        except Exception as exc:
            raise StoreError(f"ClickHouse store could not delete from {spec.name}: {exc}") from exc
        return True

    def _recompute(self, project_id: str, hours: set[int]) -> None:
        """Recompute the hours the rollups hold among ``hours`` (the others are computed when asked)."""
        if not hours:
            return
        held = {
            int(row["h"])
            for row in self._rows(
                f"SELECT DISTINCT toUnixTimestamp(hour) AS h FROM {self._table(ROLLUP_HOURS)} "
                "PREWHERE project_id = {p:String} WHERE toUnixTimestamp(hour) IN {hours:Array(UInt32)}",
                {"p": project_id, "hours": sorted(hours)},
                "read which hours of the deleted calls the rollups hold",
            )
        }
        if held:
            self._compute_hours(project_id, sorted(held), micros(datetime.now(UTC)))

    def _purge_old_parts(self, specs: Sequence[TableSpec]) -> None:
        """Remove the parts the mutations replaced now rather than after ``old_parts_lifetime``."""
        if not specs:
            return
        names = [spec.name for spec in specs]
        try:
            for name in names:
                self._client.command(
                    f"ALTER TABLE {self._table_name(name)} MODIFY SETTING old_parts_lifetime = 0"
                )
            deadline = time.monotonic() + _PURGE_WAIT_S
            while True:
                # Restarting a table's cleanup runs it now; it skips a run within a second of the last
                # one, so it is restarted until the old parts are gone.
                for name in names:
                    self._client.command(f"SYSTEM STOP CLEANUP {self._table_name(name)}")
                    self._client.command(f"SYSTEM START CLEANUP {self._table_name(name)}")
                left = self._client.query(
                    "SELECT count() FROM system.parts WHERE database = {db:String} "
                    "AND table IN {names:Array(String)} AND NOT active",
                    parameters={"db": self._db, "names": names},
                ).result_rows[0][0]
                if not left:
                    break
                if time.monotonic() > deadline:
                    log.warning("old parts of %s still on disk after %.0f s", names, _PURGE_WAIT_S)
                    break
                time.sleep(0.2)
        except Exception as exc:
            raise StoreError(f"ClickHouse store could not remove the replaced parts: {exc}") from exc
        finally:
            for name in names:
                try:
                    self._client.command(
                        f"ALTER TABLE {self._table_name(name)} RESET SETTING old_parts_lifetime"
                    )
                except Exception:  # the default returns at the next deletion
                    log.warning("could not reset old_parts_lifetime of %s", name)


def _keys(rows: Sequence[Mapping[str, Any]]) -> list[CallKey]:
    return [CallKey(str(row["source"]), str(row["external_id"]), str(row["id"])) for row in rows]
