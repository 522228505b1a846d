"""Simulation definitions in the metadata database: keyed by project, kind and id; batches whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convoscope.store.metadata import MetadataStore


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    with MetadataStore(metadata_url) as opened:
        yield opened


def test_definitions_are_created_replaced_listed_and_deleted(store: MetadataStore) -> None:
    project = store.ensure_project("p").id
    other = store.ensure_project("q").id
    (first,) = store.put_definitions(project, [("scenario", "b", {"goal": "one"})])
    assert first.created and first.body == {"goal": "one"}
    (again,) = store.put_definitions(project, [("scenario", "b", {"goal": "two"})])
    assert not again.created and again.created_at == first.created_at and again.updated_at >= first.updated_at
    store.put_definitions(project, [("scenario", "a", {}), ("suite", "b", {"scenarios": ["a", "b"]})])
    store.put_definitions(other, [("scenario", "c", {})])

    assert [d.id for d in store.list_definitions(project, "scenario")] == ["a", "b"]
    assert [d.id for d in store.list_definitions(project, "scenario", ids=["b", "zz"])] == ["b"]
    assert store.list_definitions(project, "scenario", ids=[]) == []
    assert store.definition_ids(project, "suite") == {"b"}
    found = store.get_definition(project, "scenario", "b")
    assert found is not None and found.body == {"goal": "two"}
    assert store.get_definition(other, "scenario", "b") is None  # another project's namespace

    assert store.delete_definition(project, "scenario", "b")
    assert not store.delete_definition(project, "scenario", "b")
    assert store.definition_ids(project, "scenario") == {"a"}
    assert store.definition_ids(other, "scenario") == {"c"}


def test_an_unknown_kind_is_refused_before_anything_is_written(store: MetadataStore) -> None:
    project = store.ensure_project("p").id
    with pytest.raises(ValueError, match="unknown definition kind"):
        store.put_definitions(project, [("scenario", "a", {}), ("suites", "s", {})])
    assert store.definition_ids(project, "scenario") == set()
