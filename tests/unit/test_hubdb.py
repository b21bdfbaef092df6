"""JupyterHub's tables brought to the installed JupyterHub's schema before the hub starts
(`hub_config.hubdb`, run by `make up` and the hub image): SQLite copied aside then upgraded,
PostgreSQL and newer schemas left to the operator with a message."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from jupyterhub import dbutil, orm

from hub_config import hubdb


def database(tmp_path: Path, revision: str | None = "-1") -> tuple[str, Path]:
    """A JupyterHub database made by the installed hub, one migration behind (as a database of
    the previous release is), with a row in it."""
    path = tmp_path / "jupyterhub.sqlite"
    url = f"sqlite:///{path}"
    db = orm.new_session_factory(url)()
    db.add(orm.User(name="alice"))
    db.commit()
    db.close()
    if revision:
        with dbutil._temp_alembic_ini(url) as ini:
            command.downgrade(Config(ini), revision)
    return url, path


def revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_an_older_sqlite_database_is_copied_then_upgraded(tmp_path: Path) -> None:
    url, path = database(tmp_path)
    before = hubdb.schema(url)
    assert before.known and before.current != before.head
    code, message = hubdb.ensure(url, "cfg.py")
    assert code == 0 and "upgraded" in message, message
    assert revision(path) == before.head
    (copy,) = tmp_path.glob(f"jupyterhub.sqlite{hubdb.BACKUP_SUFFIX}*")
    assert revision(copy) == before.current and str(copy) in message
    assert copy.stat().st_mode & 0o077 == 0
    with sqlite3.connect(copy) as conn:  # the copy is the whole database
        assert conn.execute("SELECT name FROM users").fetchall() == [("alice",)]
    assert hubdb.ensure(url, "cfg.py") == (0, f"JupyterHub {hubdb.jupyterhub.__version__} schema {before.head} ok")


def test_a_current_or_new_database_is_left_as_it_is(tmp_path: Path) -> None:
    assert hubdb.ensure(f"sqlite:///{tmp_path / 'none.sqlite'}", "cfg.py") == (0, "new database")
    url, _ = database(tmp_path, revision=None)
    assert hubdb.ensure(url, "cfg.py")[0] == 0
    assert list(tmp_path.glob(f"*{hubdb.BACKUP_SUFFIX}*")) == []


def test_a_database_a_newer_jupyterhub_upgraded_is_refused(tmp_path: Path) -> None:
    url, path = database(tmp_path, revision=None)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed0001'")
    code, message = hubdb.ensure(url, "cfg.py")
    assert code == hubdb.NEEDS_OPERATOR
    assert "does not know: a newer JupyterHub upgraded it" in message and "restore the copy" in message


def test_postgresql_is_not_upgraded_without_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hubdb, "schema", lambda url: hubdb.Schema("be8ecf03ddac", "f460b0348206", True))
    code, message = hubdb.ensure("postgresql+psycopg://hub@db/hub", "/srv/jupyterhub/jupyterhub_config.py")
    assert code == hubdb.NEEDS_OPERATOR
    assert "pg_dump" in message and "jupyterhub upgrade-db -f /srv/jupyterhub/jupyterhub_config.py" in message


def test_the_backup_copy_is_private_from_its_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "jupyterhub.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE t (secret TEXT)")
        conn.execute("INSERT INTO t VALUES ('hash')")
    modes: dict[str, int] = {}
    connect = sqlite3.connect

    def watched(path, *args, **kwargs):  # the copy's mode as it is opened, before any byte
        conn = connect(path, *args, **kwargs)
        modes[str(path)] = stat.S_IMODE(os.stat(path).st_mode)
        return conn

    monkeypatch.setattr(hubdb.sqlite3, "connect", watched)
    old = os.umask(0o022)  # what a careless umask would give a new file
    try:
        copy = hubdb.backup_sqlite(db)
    finally:
        os.umask(old)
    assert modes[str(copy)] == 0o600
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with contextlib.closing(connect(copy)) as conn:
        assert conn.execute("SELECT secret FROM t").fetchall() == [("hash",)]
