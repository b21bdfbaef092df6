"""Database URLs for tests that must hold on every backend the store supports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text

POSTGRES_URL_VAR = "JHDS_TEST_POSTGRES_URL"
SKIP_POSTGRES_VAR = "JHDS_SKIP_POSTGRES"
# A session time zone that is not UTC, as on many production servers: the store must still
# hand out UTC times.
POSTGRES_SESSION_TIMEZONE = "Asia/Kolkata"


def postgres_base_url() -> str:
    """The test server's URL; a missing one fails the test (CI must not skip silently)."""
    url = os.environ.get(POSTGRES_URL_VAR, "")
    if url:
        return url
    if os.environ.get(SKIP_POSTGRES_VAR) == "1":
        pytest.skip(f"PostgreSQL cases skipped: {SKIP_POSTGRES_VAR}=1")
    pytest.fail(
        f"{POSTGRES_URL_VAR} is not set: run `export {POSTGRES_URL_VAR}=$(scripts/postgres.sh)` "
        f"(it starts a local test server), or set {SKIP_POSTGRES_VAR}=1 to skip the PostgreSQL cases",
        pytrace=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a schema of its own on the PostgreSQL test
    server (made the connections' search_path, dropped afterwards), so tests never see each
    other's tables, even from two runs against one server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hub.sqlite"
        return
    base = make_url(postgres_base_url())
    schema = f"jhds_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        options = f"-c search_path={schema} -c timezone={POSTGRES_SESSION_TIMEZONE}"
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
