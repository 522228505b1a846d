"""The DDL template layer and the series field registry."""

from __future__ import annotations

import pytest

from convoscope.errors import PayloadError
from convoscope.store.schema import (
    CALLS,
    SCORES,
    TABLES,
    Dialect,
    ddl_statements,
    resolve_series_field,
)


def test_embedded_ddl_has_no_cluster_syntax() -> None:
    sql = "\n".join(ddl_statements("convoscope", Dialect.embedded()))

    assert "ON CLUSTER" not in sql
    assert "Replicated" not in sql
    assert "ENGINE = ReplacingMergeTree(version)" in sql
    assert "ORDER BY (project_id, source, external_id)" in sql
    assert "PARTITION BY" not in sql


def test_cluster_ddl_replicates_every_table() -> None:
    statements = ddl_statements("convoscope", Dialect.cluster("main"))

    assert all(" ON CLUSTER main" in s for s in statements)
    for table in TABLES:
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table.name}'"
        engine = f"ReplicatedReplacingMergeTree({path}, '{{replica}}', version)"
        assert any(engine in s for s in statements), table.name


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
