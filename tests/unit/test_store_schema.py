"""Store schema upgrades: an old database is migrated forward on open, a newer one refused.

`make_schema_1` writes a real schema-1 database (the bookkeeping columns of jhds_resources
absent, not only empty); the hub container's integration test starts on one too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from reconciler.docker_objects import DockerObjects, new
from reconciler.manifests import parse_manifests
from reconciler.store import Store
from reconciler.tables import ADDED_IN_2, SCHEMA_VERSION, MetaRow
from reconciler.usage.ledger import UsageLedger

OLD_GROUP = (
    "apiVersion: jupyterhub-ds/v1\nkind: GroupMembership\nmetadata: {name: from-schema-1}\n"
    "spec: {group: schema-one, members: []}\n"
)


def make_schema_1(path: Path) -> None:
    """A SQLite database as schema 1 left it, holding one GroupMembership `from-schema-1`."""
    url = f"sqlite:///{path}"
    store = Store(url)
    store.apply(parse_manifests(OLD_GROUP, "old.yaml"), "cli")
    store.close()
    engine = create_engine(url)
    with engine.begin() as c:
        for column in ADDED_IN_2:
            c.execute(text(f"DROP INDEX IF EXISTS ix_jhds_resources_{column}"))
            c.execute(text(f"ALTER TABLE jhds_resources DROP COLUMN {column}"))
        c.execute(text("UPDATE jhds_meta SET value = 1 WHERE key = 'schema_version'"))
    engine.dispose()


def schema_version(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as c:
        value = c.execute(text("SELECT value FROM jhds_meta WHERE key = 'schema_version'")).scalar_one()
    engine.dispose()
    return int(value)


def test_a_real_schema_1_database_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_schema_1(path)
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    assert not set(ADDED_IN_2) & {c["name"] for c in inspect(engine).get_columns("jhds_resources")}
    engine.dispose()
    store = Store(url)
    try:
        assert store.get("GroupMembership", "from-schema-1").spec["group"] == "schema-one"
    finally:
        store.close()
    assert schema_version(url) == SCHEMA_VERSION


def test_a_newer_schema_is_refused_with_a_clear_message_and_left_alone(db_url: str) -> None:
    store = Store(db_url)
    with store.session() as s:
        s.get(MetaRow, "schema_version").value = SCHEMA_VERSION + 1
    store.close()
    with pytest.raises(RuntimeError) as refused:
        Store(db_url)
    message = str(refused.value)
    assert f"store schema {SCHEMA_VERSION + 1}, newer than this code knows ({SCHEMA_VERSION})" in message
    assert "restore the backup" in message
    assert schema_version(db_url) == SCHEMA_VERSION + 1  # nothing rewritten


def test_a_schema_3_database_gains_the_docker_proxys_records(tmp_path: Path) -> None:
    """Schema 4 added `jhds_docker_objects` (the Docker proxy's records): a schema-3 database
    gets the table when it is opened, and keeps what it had."""
    url = f"sqlite:///{tmp_path / 'three.sqlite'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("DROP TABLE jhds_docker_objects"))
        c.execute(text("UPDATE jhds_meta SET value = 3 WHERE key = 'schema_version'"))
    engine.dispose()
    store = Store(url)
    try:
        DockerObjects(store).record("ann", [new("container", "a" * 64, "web")])
        assert DockerObjects(store).owners("container") == {"a" * 64: "ann"}
    finally:
        store.close()
    assert schema_version(url) == SCHEMA_VERSION


def test_a_schema_4_database_gains_the_usage_ledger(tmp_path: Path) -> None:
    """Schema 5 added the usage ledger's tables (`reconciler/usage/tables.py`): a schema-4
    database is brought to 5 when opened, keeps what it had, and the ledger makes its tables
    when it is opened (by the hub or the reconciler, whichever is first)."""
    path = tmp_path / "four.sqlite"
    make_schema_1(path)  # a GroupMembership to keep
    url = f"sqlite:///{path}"
    Store(url).close()  # forward to the newest, then back to 4 without the ledger
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("UPDATE jhds_meta SET value = 4 WHERE key = 'schema_version'"))
        for table in ("sessions", "samples", "hourly", "daily", "storage"):
            c.execute(text(f"DROP TABLE IF EXISTS jhds_usage_{table}"))
    assert not {t for t in inspect(engine).get_table_names() if t.startswith("jhds_usage_")}
    engine.dispose()
    store = Store(url)
    try:
        assert store.get("GroupMembership", "from-schema-1") is not None
        ledger = UsageLedger(store)
        assert ledger.open_session("ann", "", datetime(2026, 1, 1, tzinfo=UTC), ["g"])
        engine = create_engine(url)
        assert {t for t in inspect(engine).get_table_names() if t.startswith("jhds_usage_")} == {
            f"jhds_usage_{t}" for t in ("sessions", "samples", "hourly", "daily", "storage")
        }
        engine.dispose()
    finally:
        store.close()
    assert schema_version(url) == SCHEMA_VERSION == 5
