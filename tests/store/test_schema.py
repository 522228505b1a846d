"""The DDL template layer and the series field registry."""

from __future__ import annotations

import re

import pytest

from convoscope.errors import PayloadError
from convoscope.store.schema import (
    CALLS,
    LOCAL_SUFFIX,
    ROLLUP_TABLES,
    SCHEMA_INFO,
    SCORES,
    SPANS,
    TABLES,
    Dialect,
    ddl_statements,
    rebuild_statements,
    resolve_series_field,
)


def test_embedded_ddl_has_no_cluster_syntax() -> None:
    sql = "\n".join(ddl_statements("convoscope", Dialect.embedded()))

    assert "ON CLUSTER" not in sql
    assert "Replicated" not in sql
    assert "ENGINE = ReplacingMergeTree(version)" in sql
    assert "ORDER BY (project_id, source, external_id)" in sql
    assert "PARTITION BY" not in sql


def test_cluster_ddl_replicates_every_table_behind_a_distributed_one() -> None:
    # No cluster runs here (replication needs Keeper), so the rendering of the whole schema is checked.
    dialect = Dialect.cluster("main")
    statements = ddl_statements("convoscope", dialect)

    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `convoscope` ON CLUSTER main"
    assert all(s.startswith("CREATE ") and " ON CLUSTER main" in s for s in statements)
    assert not any(re.search(r"ENGINE = (Replacing|Aggregating)?MergeTree", s) for s in statements)
    for table in (*TABLES, *ROLLUP_TABLES, SCHEMA_INFO):
        local = f"{table.name}{LOCAL_SUFFIX}"
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{local}'"
        [created] = [
            s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS `convoscope`.`{local}` ")
        ]
        assert f"ENGINE = ReplicatedReplacingMergeTree({path}, '{{replica}}', version)" in created
        assert f"ORDER BY ({table.sorting_key})" in created
        [front] = [
            s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS `convoscope`.`{table.name}` ")
        ]
        shard = "cityHash64(project_id)" if "project_id" in table.column_names else "0"
        assert f"AS `convoscope`.`{local}`" in front
        assert f"ENGINE = Distributed('main', 'convoscope', '{local}', {shard})" in front
    assert len(statements) == 1 + 2 * (len(TABLES) + len(ROLLUP_TABLES) + 1)
    assert dialect.client_settings == {"distributed_product_mode": "local", "insert_distributed_sync": "1"}


def test_a_cluster_rebuild_swaps_the_local_tables() -> None:
    statements = rebuild_statements("convoscope", Dialect.cluster("main"), SPANS)

    assert statements[1].startswith(
        "CREATE TABLE IF NOT EXISTS `convoscope`.`spans_local__rebuild` ON CLUSTER"
    )
    assert (
        "EXCHANGE TABLES `convoscope`.`spans_local` AND `convoscope`.`spans_local__rebuild` ON CLUSTER main"
        in (statements)
    )


@pytest.mark.parametrize("name", ["bad name", "x`y", "a;b", ""])
def test_identifiers_are_validated(name: str) -> None:
    with pytest.raises(ValueError):
        ddl_statements(name, Dialect.embedded())
    with pytest.raises(ValueError):
        Dialect.cluster(name)


def test_insert_columns_match_the_table_spec() -> None:
    assert CALLS.column_names[:3] == ("project_id", "source", "external_id")
    assert len(CALLS.column_names) == len(CALLS.column_types)
    assert "value_num" in SCORES.column_names


def test_series_fields_resolve_to_their_tables() -> None:
    assert resolve_series_field("duration_s").table == "calls"
    assert resolve_series_field("e2e_s").table == "turns"
    metric = resolve_series_field("metric:csat")
    assert (metric.table, metric.metric) == ("scores", "csat")


@pytest.mark.parametrize("name", ["nope", "metric:", "calls; DROP TABLE calls"])
def test_unknown_series_field_is_a_payload_error(name: str) -> None:
    with pytest.raises(PayloadError, match="valid fields"):
        resolve_series_field(name)
