"""The project id read with sqlite3 agrees with the metadata store, and says None whenever it is unsure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from convoscope.config import Settings
from convoscope.runtime.stores import open_stores
from convoscope.store.metadata import MetadataStore
from convoscope.store.project_peek import peek_project


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "metadata.db"
    meta = MetadataStore(f"sqlite:///{path}")
    try:
        meta.ensure_project("support")
        meta.ensure_project("sales")
    finally:
        meta.close()
    return path


def test_it_reads_the_same_project_the_metadata_store_holds(database: Path) -> None:
    meta = MetadataStore(f"sqlite:///{database}")
    try:
        for name in ("support", "sales"):
            assert peek_project(database, name) == meta.get_project(name)
        assert peek_project(database, "  sales ") == meta.get_project("sales")
    finally:
        meta.close()


def test_it_is_none_when_it_cannot_be_sure(database: Path, tmp_path: Path) -> None:
    assert peek_project(database, "nobody") is None
    assert peek_project(database, "   ") is None
    assert peek_project(tmp_path / "missing.db", "support") is None
    assert not (tmp_path / "missing.db").exists()  # looking never creates a database

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert peek_project(garbage, "support") is None

    # A database the store would first migrate is left to the store.
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0010'")
    assert peek_project(database, "support") is None


def test_stores_open_the_metadata_store_only_when_the_peek_cannot_answer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, init_api_key="cs_" + "k" * 40)
    open_stores(settings).close()  # a first start: the default project and the key are seeded

    stores = open_stores(settings, lazy_meta=True)
    try:
        default = stores.project("default")
        assert not stores.meta_opened  # read from the file, the store still closed
        fresh = stores.project("fresh")  # unknown: the store opens and creates it
        assert stores.meta_opened
        assert stores.meta.get_project("fresh") == fresh
        assert stores.default_project == default
    finally:
        stores.close()


def test_a_lazy_first_start_still_seeds_the_default_project_and_the_key(tmp_path: Path) -> None:
    key = "cs_" + "s" * 40
    settings = Settings(data_dir=tmp_path / "data", init_api_key=key)
    stores = open_stores(settings, lazy_meta=True)
    try:
        assert not (tmp_path / "data" / "metadata.db").exists()
        project = stores.project("default")  # no database yet: the store opens, migrates, seeds
        assert stores.meta.resolve_api_key(key) is not None
        assert stores.default_project == project
    finally:
        stores.close()
