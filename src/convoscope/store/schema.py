"""The versioned ClickHouse schema of the event store, and the fields a time series may ask for.

One set of table specs renders to DDL for embedded chDB and for a ClickHouse server or cluster. Everything
that differs between the two (engine names, replication paths, ``ON CLUSTER``) lives in :class:`Dialect`,
so DML and queries never change with the deployment.

Every table is a ``ReplacingMergeTree(version)``: ClickHouse has no unique keys, so idempotent re-ingest
comes from a sorting key equal to the natural identity plus a version that decides which row survives.
Reads use ``FINAL`` so the newest version wins before the data is merged on disk. No table is partitioned
by time: a partition key that changes between versions of one row (a corrected ``started_at``) would put
the versions in different partitions, where they are never replaced.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from ..errors import PayloadError

__all__ = [
    "AGENT_LATENCY_FIELDS",
    "CALLS",
    "CALL_SERIES_COLUMNS",
    "METRIC_PREFIX",
    "SCHEMA_VERSION",
    "SCORES",
    "SERIES_FIELDS",
    "SPANS",
    "SPAN_LOGS",
    "CALL_HOURS",
    "ROLLUP_CALL_MAP",
    "ROLLUP_HOURS",
    "ROLLUP_TABLES",
    "SCORE_HOURS",
    "TABLES",
    "TOOL_CALLS",
    "TURNS",
    "LOCAL_SUFFIX",
    "Dialect",
    "SeriesField",
    "TableSpec",
    "ddl_statements",
    "rebuild_statements",
    "resolve_series_field",
    "upgrade_statements",
]

SCHEMA_VERSION = 8
"""Bumped whenever a table spec changes; stored in ``schema_info`` so an old binary refuses a newer store.

Specs only ever gain columns and skip indexes: opening a store adds the missing ones
(``upgrade_statements``), so a data directory written by an older version keeps working. 2: per-call
agent-turn latency arrays and ``agent_latency_filled`` on ``calls``; ``error`` on ``scores``. 3: a bloom
filter index on ``calls.id`` (the id → key lookup of call detail). 4: 1,024-row granules for ``calls``,
``turns`` and ``tool_calls`` created from now on (existing tables keep theirs). 5: a bloom filter index
on ``spans.conversation_id`` (the span reads of OTLP call assembly). 6: ``events`` and ``links`` on
``spans`` (JSON; empty for spans written before). 7: ``documents`` on ``spans`` and ``turns`` (retrieved
and re-ranked documents, JSON, kept apart from the attribute caps) and the ``span_logs`` table (OTLP log
records, joined to their spans by trace and span id); ``spans`` sorted by start hour, then trace (a
store written before is rebuilt in the new order when it is opened, see ``rebuild_statements``), with a
bloom filter index on ``trace_id``. 8: ``written_at`` on ``scores`` (when the row was written; 1970 on rows
written before) and the overview's hourly rollups (``rollup_hours``, ``call_hours``, ``score_hours``,
``rollup_call_map``, see ``store.rollups``).
"""

_CALL_READ_GRANULARITY = 1024
"""Granule size of the tables call detail reads with ``FINAL`` (``calls``, ``turns``, ``tool_calls``)."""

_SPAN_READ_GRANULARITY = 2048
"""Granule size of ``spans``: reads by trace id or conversation decode whole granules under ``FINAL``."""

_TS = "DateTime64(6, 'UTC')"
_LC = "LowCardinality(String)"

AGENT_LATENCY_FIELDS = ("e2e_s", "eou_s", "stt_s", "llm_ttft_s", "tts_ttfb_s")
"""Per-turn latency components kept, for agent turns, also as ``agent_<name>`` arrays on ``calls``."""

_AGENT_ARRAYS = tuple(f"agent_{name}" for name in AGENT_LATENCY_FIELDS)

CALL_SERIES_COLUMNS = (*_AGENT_ARRAYS, "agent_latency_filled")
"""``calls`` columns that only series read; a call is rebuilt without them."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The deployment-specific part of the DDL: the only place engine and cluster syntax is spelled.

    ``embedded()`` serves chDB and a single server; ``cluster(name)`` renders replicated engines whose
    Keeper path follows the usual ``{shard}``/``{replica}`` macros, and ``ON CLUSTER`` on every statement.

    On a cluster each table's rows live in ``<name>_local`` (replicated on every shard) and the table of
    the spec's name is a ``Distributed`` one over them, so DML and queries keep their table names. Rows are
    sharded by project: every query reads one project, so the subqueries and joins it holds can run on each
    shard alone (``distributed_product_mode = 'local'``), and ``FINAL`` sees every version of a key.
    """

    cluster_name: str | None = None

    @classmethod
    def embedded(cls) -> Dialect:
        """Plain engines, no cluster clause: chDB or one ClickHouse server."""
        return cls(cluster_name=None)

    @classmethod
    def cluster(cls, name: str) -> Dialect:
        """Replicated engines and ``ON CLUSTER name`` for a ClickHouse cluster."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"cluster name {name!r} must be alphanumeric or '_'")
        return cls(cluster_name=name)

    @property
    def on_cluster(self) -> str:
        """The clause placed after an object name in DDL; empty when embedded."""
        return f" ON CLUSTER {self.cluster_name}" if self.cluster_name else ""

    def local(self, table: TableSpec) -> TableSpec:
        """The table that holds the rows: ``table`` itself, or on a cluster its ``<name>_local``."""
        return table if self.cluster_name is None else replace(table, name=table.name + LOCAL_SUFFIX)

    @property
    def client_settings(self) -> dict[str, str]:
        """Settings every statement needs: on a cluster, shard-local subqueries and joins, and inserts that
        return once the shards have the rows (a read right after a write must see them)."""
        if self.cluster_name is None:
            return {}
        return {"distributed_product_mode": "local", "insert_distributed_sync": "1"}

    def engine(self, table: str, version_column: str) -> str:
        """The table engine for a replacing table with ``version_column`` deciding the survivor."""
        if self.cluster_name is None:
            return f"ReplacingMergeTree({version_column})"
        return (
            f"ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{{database}}/{table}', "
            f"'{{replica}}', {version_column})"
        )


LOCAL_SUFFIX = "_local"
"""On a cluster, the name of the replicated table that holds a ``Distributed`` table's rows."""


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table: ordered columns (the insert order of ``rows``), sorting key and skip indexes."""

    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]
    version_column: str = "version"
    indexes: tuple[str, ...] = ()
    index_granularity: int | None = None
    """Rows per granule when the table is created (ClickHouse's default, 8,192, when None). ``FINAL``
    decodes whole granules of every selected column in each part, so tables read one call at a time use
    smaller ones. Applies to new tables only: ClickHouse cannot change it on an existing one."""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in insert order."""
        return tuple(name for name, _ in self.columns)

    @property
    def column_types(self) -> tuple[str, ...]:
        """Column types in insert order; passed to inserts so no ``DESCRIBE`` runs per batch."""
        return tuple(kind for _, kind in self.columns)

    def select_list(self, exclude: Collection[str] = ()) -> str:
        """The columns for a SELECT, with wall-clock columns read as microsecond ticks (``rows``'s form)."""
        return ", ".join(
            f"toUnixTimestamp64Micro(`{name}`) AS `{name}`" if "DateTime64" in kind else f"`{name}`"
            for name, kind in self.columns
            if name not in exclude
        )

    def create(self, database: str, dialect: Dialect) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for this table."""
        body = [f"    `{name}` {kind}" for name, kind in self.columns]
        body += [f"    {index}" for index in self.indexes]
        columns = ",\n".join(body)
        return (
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{self.name}`{dialect.on_cluster} (\n{columns}\n)\n"
            f"ENGINE = {dialect.engine(self.name, self.version_column)}\n"
            f"ORDER BY ({', '.join(self.order_by)})"
            + (
                ""
                if self.index_granularity is None
                else f"\nSETTINGS index_granularity = {self.index_granularity}"
            )
        )

    def distributed(self, database: str, dialect: Dialect) -> str:
        """On a cluster: the ``Distributed`` table of this spec's name over its local tables."""
        if dialect.cluster_name is None:
            raise ValueError("a Distributed table needs a cluster")
        local = dialect.local(self).name
        shard = "cityHash64(project_id)" if "project_id" in self.column_names else "0"
        return (
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{self.name}`{dialect.on_cluster} "
            f"AS `{database}`.`{local}`\n"
            f"ENGINE = Distributed('{dialect.cluster_name}', '{database}', '{local}', {shard})"
        )

    @property
    def sorting_key(self) -> str:
        """The sorting key as ``system.tables.sorting_key`` spells it."""
        return ", ".join(self.order_by)

    def add_missing(self, database: str, dialect: Dialect, *, indexes: bool = True) -> str:
        """``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` for every column in spec order, then every index.

        A no-op on a table created from this spec; on one created by an older spec it adds what is
        missing (each column after its predecessor, so the physical order follows the spec). Rows
        written before hold the type's default in a new column (see ``agent_latency_filled``); a new
        index covers parts written or merged from then on.
        """
        clauses = [f"ADD COLUMN IF NOT EXISTS `{self.columns[0][0]}` {self.columns[0][1]} FIRST"]
        clauses += [
            f"ADD COLUMN IF NOT EXISTS `{name}` {kind} AFTER `{previous}`"
            for (previous, _), (name, kind) in zip(self.columns, self.columns[1:], strict=False)
        ]
        for index in self.indexes if indexes else ():
            if not index.startswith("INDEX "):
                raise ValueError(f"index of {self.name!r} must start with 'INDEX ': {index!r}")
            clauses.append(f"ADD INDEX IF NOT EXISTS {index.removeprefix('INDEX ')}")
        return f"ALTER TABLE `{database}`.`{self.name}`{dialect.on_cluster}\n    " + ",\n    ".join(clauses)


CALLS = TableSpec(
    name="calls",
    columns=(
        ("project_id", _LC),
        ("source", _LC),
        ("external_id", "String"),
        ("id", "String"),
        ("agent_id", "LowCardinality(Nullable(String))"),
        ("agent_version", "LowCardinality(Nullable(String))"),
        ("direction", _LC),
        ("started_at", _TS),
        ("ended_at", f"Nullable({_TS})"),
        # The effective length (given, else from ended_at, else from the last turn) that lists and series
        # use, and the raw given value kept apart so the stored call reads back exactly as sent.
        ("duration_s", "Float64"),
        ("duration_given_s", "Nullable(Float64)"),
        ("end_reason", _LC),
        ("end_reason_raw", "Nullable(String)"),
        ("turn_count", "UInt32"),
        ("tool_call_count", "UInt32"),
        ("tool_error_count", "UInt32"),
        ("cost_usd", "Float64"),
        ("has_recording", "UInt8"),
        ("tags", "Array(LowCardinality(String))"),
        ("recordings", "String"),
        ("cost", "String"),
        ("usage", "String"),
        ("vendor_latency", "String"),
        ("vendor_analysis", "String"),
        ("metadata", "String"),
        ("simulation", "String"),
        ("version", "UInt64"),
        ("ingested_at", _TS),
        # Schema 2: the latency components of the call's agent turns (non-null values only, in turn
        # order), so turn-latency series read one call row instead of joining turns to the current call
        # version. ``agent_latency_filled`` is 1 on rows written with them; rows from schema 1 read 0
        # and series take those calls' values from ``turns`` instead.
        *((name, "Array(Float64)") for name in _AGENT_ARRAYS),
        ("agent_latency_filled", "UInt8"),
    ),
    order_by=("project_id", "source", "external_id"),
    index_granularity=_CALL_READ_GRANULARITY,
    indexes=(
        "INDEX idx_started_at started_at TYPE minmax GRANULARITY 1",
        # Call detail looks a call up by id, which is not in the sorting key.
        "INDEX idx_id id TYPE bloom_filter(0.01) GRANULARITY 1",
    ),
)

TURNS = TableSpec(
    name="turns",
    columns=(
        ("project_id", _LC),
        ("call_id", "String"),
        ("idx", "UInt32"),
        ("version", "UInt64"),
        ("agent_id", "LowCardinality(Nullable(String))"),
        ("source", _LC),
        ("call_started_at", _TS),
        ("role", _LC),
        ("text", "String"),
        ("start_s", "Float64"),
        ("end_s", "Float64"),
        ("words", "Nullable(String)"),
        ("interrupted", "UInt8"),
        ("e2e_s", "Nullable(Float64)"),
        ("eou_s", "Nullable(Float64)"),
        ("stt_s", "Nullable(Float64)"),
        ("llm_ttft_s", "Nullable(Float64)"),
        ("tts_ttfb_s", "Nullable(Float64)"),
        ("documents", "String"),
    ),
    order_by=("project_id", "call_id", "idx"),
    index_granularity=_CALL_READ_GRANULARITY,
)

TOOL_CALLS = TableSpec(
    name="tool_calls",
    columns=(
        ("project_id", _LC),
        ("call_id", "String"),
        ("seq", "UInt32"),
        ("tool_call_id", "String"),
        ("version", "UInt64"),
        ("turn_index", "Nullable(UInt32)"),
        ("name", _LC),
        ("arguments", "String"),
        ("result", "String"),
        ("success", "Nullable(UInt8)"),
        ("start_s", "Nullable(Float64)"),
        ("end_s", "Nullable(Float64)"),
    ),
    # Keyed by position, not by the vendor's tool-call id: the model does not require those ids to be
    # unique within a call, and two tool calls sharing one must not replace each other.
    order_by=("project_id", "call_id", "seq"),
    index_granularity=_CALL_READ_GRANULARITY,
)

SPANS = TableSpec(
    name="spans",
    columns=(
        ("project_id", _LC),
        ("trace_id", "String"),
        ("span_id", "String"),
        ("version", "UInt64"),
        ("call_id", "Nullable(String)"),
        ("parent_span_id", "Nullable(String)"),
        ("name", "String"),
        ("kind", _LC),
        ("start_at", _TS),
        ("end_at", f"Nullable({_TS})"),
        ("status_code", _LC),
        ("status_message", "String"),
        ("attributes", "String"),
        ("resource_attributes", "String"),
        ("scope_name", _LC),
        ("conversation_id", "Nullable(String)"),
        ("events", "String"),
        ("links", "String"),
        ("documents", "String"),
    ),
    # Sorted by the hour a span started, then by trace: trace search reads the newest stretch of time
    # first and widens it only while the page is not full, and a trace's spans stay together within
    # their hour. Reads by trace id (a trace's tree, assembly) find their granules through the bloom
    # filter instead of the key.
    order_by=("project_id", "toStartOfHour(start_at)", "trace_id", "span_id"),
    index_granularity=_SPAN_READ_GRANULARITY,
    indexes=(
        # OTLP assembly reads a conversation's spans, which are sorted by time and trace.
        "INDEX idx_conversation_id conversation_id TYPE bloom_filter(0.01) GRANULARITY 1",
        "INDEX idx_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 1",
    ),
)

SPAN_LOGS = TableSpec(
    name="span_logs",
    columns=(
        ("project_id", _LC),
        ("trace_id", "String"),
        ("span_id", "String"),
        # A digest of the record, so an export delivered twice keeps one copy.
        ("record_id", "String"),
        ("version", "UInt64"),
        ("observed_at", _TS),
        ("event_name", _LC),
        ("severity", _LC),
        ("body", "String"),
        ("attributes", "String"),
        ("resource_attributes", "String"),
        ("scope_name", _LC),
    ),
    # Assembly reads the records of a conversation's traces, so they sort by trace like ``spans``.
    order_by=("project_id", "trace_id", "span_id", "record_id"),
)

SCORES = TableSpec(
    name="scores",
    columns=(
        ("project_id", _LC),
        ("call_id", "String"),
        ("metric", _LC),
        ("version", "UInt64"),
        ("metric_version", _LC),
        ("value_num", "Nullable(Float64)"),
        ("value_bool", "Nullable(UInt8)"),
        ("value_label", "Nullable(String)"),
        ("passed", "Nullable(UInt8)"),
        ("params", "String"),
        ("evidence", "String"),
        ("source", _LC),
        ("evaluated_at", _TS),
        ("error", "Nullable(String)"),
        # Schema 8: when the row was written (the version is ``evaluated_at``, which a replayed or imported
        # result may set in the past), so the overview's rollups find the scores written since they ran.
        ("written_at", _TS),
    ),
    order_by=("project_id", "call_id", "metric"),
    indexes=("INDEX idx_written_at written_at TYPE minmax GRANULARITY 1",),
)

SCHEMA_INFO = TableSpec(
    name="schema_info",
    columns=(("singleton", "UInt8"), ("version", "UInt64")),
    order_by=("singleton",),
)

TABLES: tuple[TableSpec, ...] = (CALLS, TURNS, TOOL_CALLS, SPANS, SPAN_LOGS, SCORES)
"""The event tables, in creation order."""

_HOUR = "DateTime('UTC')"
_TDIGEST = "AggregateFunction(quantilesTDigest(0.5, 0.95), Float64)"

ROLLUP_HOURS = TableSpec(
    name="rollup_hours",
    columns=(("project_id", _LC), ("hour", _HOUR), ("version", "UInt64")),
    order_by=("project_id", "hour"),
)
"""Which hours of a project the rollups hold, and when each was computed (``version``, microseconds)."""

CALL_HOURS = TableSpec(
    name="call_hours",
    columns=(
        ("project_id", _LC),
        ("hour", _HOUR),
        ("agent_id", _LC),
        ("agent_version", _LC),
        ("end_reason", _LC),
        ("version", "UInt64"),
        ("calls", "UInt64"),
        ("cost_usd", "Float64"),
        ("duration_s", "Float64"),
        ("provider_errors", "UInt64"),
        ("e2e_n", "UInt64"),
        ("e2e", "AggregateFunction(quantilesTDigestArray(0.5, 0.95), Array(Float64))"),
    ),
    order_by=("project_id", "hour", "agent_id", "agent_version", "end_reason"),
)
"""The current calls of each hour by agent, version and end reason (agent and version '' when unset)."""

SCORE_HOURS = TableSpec(
    name="score_hours",
    columns=(
        ("project_id", _LC),
        ("hour", _HOUR),
        ("agent_id", _LC),
        ("agent_version", _LC),
        ("metric", _LC),
        ("source", _LC),
        ("version", "UInt64"),
        ("calls", "UInt64"),
        ("judged", "UInt64"),
        ("passed", "UInt64"),
        ("failed", "UInt64"),
        ("value_n", "UInt64"),
        ("value_sum", "Float64"),
        ("value_q", _TDIGEST),
    ),
    order_by=("project_id", "hour", "agent_id", "agent_version", "metric", "source"),
)
"""The current scores of each hour's calls by agent, version, metric and source; ``calls`` counts the calls
with such a score, and the row with metric '' counts the calls with any audio score."""

ROLLUP_CALL_MAP = TableSpec(
    name="rollup_call_map",
    columns=(
        ("project_id", _LC),
        ("source", _LC),
        ("external_id", "String"),
        ("hour", _HOUR),
        ("version", "UInt64"),
    ),
    order_by=("project_id", "source", "external_id"),
)
"""The hour each call was counted in when its hour was last computed: a call sent again with another
start leaves its old hour to recompute, even after the engine merged its old version away."""

ROLLUP_TABLES: tuple[TableSpec, ...] = (ROLLUP_HOURS, CALL_HOURS, SCORE_HOURS, ROLLUP_CALL_MAP)
"""Derived tables: rebuilt from the event tables whenever they are missing or stale."""


def _check_database(database: str) -> None:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name {database!r} must be alphanumeric or '_'")


def ddl_statements(database: str, dialect: Dialect) -> list[str]:
    """Every statement that creates the database and its tables; each is idempotent."""
    _check_database(database)
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`{dialect.on_cluster}"]
    for table in (*TABLES, *ROLLUP_TABLES, SCHEMA_INFO):
        statements.append(dialect.local(table).create(database, dialect))
        if dialect.cluster_name is not None:
            statements.append(table.distributed(database, dialect))
    return statements


def upgrade_statements(database: str, dialect: Dialect) -> list[str]:
    """Statements that add the columns and indexes an older schema lacks, one per table; idempotent.

    Run after ``ddl_statements`` whenever the stored schema version is older than ``SCHEMA_VERSION``
    (and harmless otherwise), so a data directory written by an older convoscope keeps working.
    """
    _check_database(database)
    statements = []
    for table in (*TABLES, *ROLLUP_TABLES, SCHEMA_INFO):
        statements.append(dialect.local(table).add_missing(database, dialect))
        if dialect.cluster_name is not None:  # a Distributed table has the columns, not the indexes
            statements.append(table.add_missing(database, dialect, indexes=False))
    return statements


REBUILD_SUFFIX = "__rebuild"
"""The table a sorting-key change is copied into before it takes the original's place."""


def rebuild_statements(database: str, dialect: Dialect, table: TableSpec) -> list[str]:
    """Statements that give an existing table ``table``'s sorting key: a copy in the new order, then an
    atomic exchange, then the old copy dropped.

    ClickHouse cannot change a sorting key in place. A rebuild cut short leaves the original untouched
    until the exchange (which is atomic), and a leftover copy is dropped first on the next attempt.
    """
    _check_database(database)
    local = dialect.local(table)  # on a cluster the local tables are rebuilt; the Distributed one stays
    copy = replace(local, name=local.name + REBUILD_SUFFIX)
    columns = ", ".join(f"`{name}`" for name in table.column_names)
    target, source = f"`{database}`.`{copy.name}`", f"`{database}`.`{local.name}`"
    return [
        f"DROP TABLE IF EXISTS {target}{dialect.on_cluster} SYNC",
        copy.create(database, dialect),
        f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {source}",
        f"EXCHANGE TABLES {source} AND {target}{dialect.on_cluster}",
        f"DROP TABLE {target}{dialect.on_cluster} SYNC",
    ]


@dataclass(frozen=True, slots=True)
class SeriesField:
    """Where a series field lives: its table, the SQL value expression and the rows it counts.

    ``expr`` may only name columns of ``table``; ``where`` is an extra row condition (agent turns only,
    one metric). For scores, ``metric`` is bound as a server-side parameter, never formatted in. A turn
    field with ``call_array`` is read from that ``calls`` column (the same values, one row per call),
    and from ``table`` only for calls written before the column existed.
    """

    name: str
    table: str
    expr: str
    where: str = "1"
    metric: str | None = None
    call_array: str | None = None


METRIC_PREFIX = "metric:"
PASSED_PREFIX = "passed:"
"""``passed:<name>`` charts a metric's pass/fail as 0/1, so its ``avg`` is the pass rate."""

_AGENT_TURN = "role = 'agent'"


SERIES_FIELDS: Mapping[str, SeriesField] = {
    "calls": SeriesField("calls", "calls", "1"),
    "duration_s": SeriesField("duration_s", "calls", "duration_s"),
    "cost_usd": SeriesField("cost_usd", "calls", "cost_usd"),
    "turn_count": SeriesField("turn_count", "calls", "toFloat64(turn_count)"),
    "tool_error_count": SeriesField("tool_error_count", "calls", "toFloat64(tool_error_count)"),
    # 1 for a call that ended in error (a failed LLM request, a failed pipeline), else 0: its avg is the
    # error rate.
    "error": SeriesField("error", "calls", "toFloat64(end_reason = 'error')"),
    # The provider requests that failed in a call (LLM spans with status error, ``metadata.errors``).
    "provider_errors": SeriesField("provider_errors", "calls", "toFloat64(JSONLength(metadata, 'errors'))"),
    **{
        name: SeriesField(name, "turns", name, _AGENT_TURN, call_array=array)
        for name, array in zip(AGENT_LATENCY_FIELDS, _AGENT_ARRAYS, strict=True)
    },
}
"""Public series names. ``calls`` counts calls whatever the aggregate asked for."""

# A score's numeric reading: its number, else its bool as 0/1, else its pass/fail as 0/1 (a label metric
# with a threshold), so every stored metric can be charted.
_SCORE_VALUE = "coalesce(value_num, toFloat64(value_bool), toFloat64(passed))"


def resolve_series_field(name: str) -> SeriesField:
    """The field behind a public series name; unknown names raise ``PayloadError`` listing valid ones."""
    if name.startswith(METRIC_PREFIX) and len(name) > len(METRIC_PREFIX):
        metric = name[len(METRIC_PREFIX) :]
        return SeriesField(name, "scores", _SCORE_VALUE, "metric = {metric:String}", metric=metric)
    if name.startswith(PASSED_PREFIX) and len(name) > len(PASSED_PREFIX):
        metric = name[len(PASSED_PREFIX) :]
        return SeriesField(name, "scores", "toFloat64(passed)", "metric = {metric:String}", metric=metric)
    field = SERIES_FIELDS.get(name)
    if field is None:
        valid = ", ".join([*SERIES_FIELDS, f"{METRIC_PREFIX}<name>", f"{PASSED_PREFIX}<name>"])
        raise PayloadError(
            f"unknown series field {name!r}; valid fields: {valid}",
            [{"loc": ["field"], "msg": f"must be one of: {valid}"}],
        )
    return field
