"""JupyterHub's own tables at the installed JupyterHub's schema, before the hub starts (`make
up`, the hub image's entry point): `python -m hub_config.hubdb`.

- the same schema, or a new database: nothing to do;
- older (e.g. a JupyterHub 5.5 database under 6.1, whose upgrade notes ask for `upgrade-db`):
  SQLite is copied aside first, consistently (SQLite's backup API: the platform's own tables
  and NativeAuthenticator's live in the same file), then upgraded; PostgreSQL is left alone
  with a message saying how to back it up and upgrade it (a dump is the operator's call);
- newer (a database a newer JupyterHub upgraded, opened by an older one, e.g. 5.5 after
  6.1): refused with a message naming the copy to restore.

Exit codes: 0 ready, 4 the schema needs the operator (the message says what to do).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jupyterhub
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from jupyterhub import dbutil
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from vocabulary.settings import SettingsError, get_settings

NEEDS_OPERATOR = 4
BACKUP_SUFFIX = ".before-jupyterhub-"  # jupyterhub.sqlite.before-jupyterhub-6.1.1-20260807-120000


@dataclass(frozen=True)
class Schema:
    current: str | None  # None: no JupyterHub tables yet (a new database)
    head: str  # the installed JupyterHub's
    known: bool  # `current` is one of the installed JupyterHub's revisions


@contextlib.contextmanager
def alembic_ini(db_url: str) -> Iterator[str]:
    """JupyterHub's alembic.ini for `db_url`, in a temporary folder (its public
    `write_alembic_ini`; `dbutil.upgrade` would run the `alembic` command in a subprocess)."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "alembic.ini")
        dbutil.write_alembic_ini(path, db_url)
        yield path


def schema(db_url: str) -> Schema:
    engine = create_engine(db_url)
    try:
        with alembic_ini(db_url) as ini:  # JupyterHub's migrations, as its upgrade-db reads them
            scripts = ScriptDirectory.from_config(Config(ini))
        head = scripts.get_current_head()
        assert head is not None
        if "alembic_version" not in inspect(engine).get_table_names():
            return Schema(None, head, True)
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    try:
        known = current is not None and scripts.get_revision(current) is not None
    except CommandError:
        known = False
    return Schema(current, head, known)


def sqlite_path(db_url: str) -> Path | None:
    url = make_url(db_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def backup_sqlite(path: Path) -> Path:
    """A consistent copy beside the database, named for the JupyterHub about to upgrade it."""
    target = path.with_name(f"{path.name}{BACKUP_SUFFIX}{jupyterhub.__version__}-{time.strftime('%Y%m%d-%H%M%S')}")
    # Created private before a byte is copied (password hashes, tokens): a chmod afterwards
    # would leave a window, and a partial copy, readable. O_EXCL refuses a planted file or link.
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.closing(sqlite3.connect(path)) as source, contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return target


def ensure(db_url: str, config_hint: str) -> tuple[int, str]:
    """Bring the database to the installed JupyterHub's schema if that is safe; (exit code, message)."""
    path = sqlite_path(db_url)
    if path is not None and not path.exists():
        return 0, "new database"
    s = schema(db_url)
    version = jupyterhub.__version__
    if s.current is None or s.current == s.head:
        return 0, f"JupyterHub {version} schema {s.head} ok"
    if not s.known:
        where = f" (copies made before upgrades: {path.name}{BACKUP_SUFFIX}*)" if path else ""
        return NEEDS_OPERATOR, (
            f"the database has JupyterHub schema {s.current}, which JupyterHub {version} does not know: a newer "
            f"JupyterHub upgraded it. Run that one (HUB_JUPYTERHUB, docs/jupyterhub6.md), or restore the copy "
            f"taken before its upgrade{where}"
        )
    if path is None:
        return NEEDS_OPERATOR, (
            f"the database has JupyterHub schema {s.current}; JupyterHub {version} needs {s.head}. It is not "
            "SQLite, so it is not upgraded without you: back it up (PostgreSQL: pg_dump), then run "
            f"`jupyterhub upgrade-db -f {config_hint}` with the hub's settings and start again"
        )
    copy = backup_sqlite(path)
    with alembic_ini(db_url) as ini:  # what `jupyterhub upgrade-db` runs, in this process
        command.upgrade(Config(ini), "head")
    return 0, f"upgraded JupyterHub's tables {s.current} -> {s.head} for JupyterHub {version}; the copy before: {copy}"


def main(argv: list[str]) -> int:
    config = argv[0] if argv else "hub_config/jupyterhub_config.py"
    try:
        settings = get_settings()
    except SettingsError as e:
        print(f"hubdb: {e}", file=sys.stderr)
        return 2
    code, message = ensure(settings.database_url, config)
    print(f"hubdb: {message}" if code == 0 else f"hubdb: not starting: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
