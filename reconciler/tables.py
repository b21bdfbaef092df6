"""The platform's tables in the hub database (prefixed `jhds_`, beside JupyterHub's own).

`jhds_meta` holds the schema version and the change counter; `jhds_resources` the desired
state; `jhds_status` what the reconciler reports for each resource; `jhds_observed` the
status of built-in watches (keys with no spec, such as `PrivilegedAccess/<user>`);
`jhds_events` the audit trail; `jhds_docker_objects` what users made through the Docker
proxy (docs/docker-access.md); `USERS_INFO` is NativeAuthenticator's table, not ours, as
its `orm.UserInfo` declares it (the columns the platform reads and writes). The delivery
ledger's table is in `deliveries.py`, the usage ledger's in `usage/tables.py`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    inspect,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 5
# Columns added since schema 1, with their SQL type: added in place by `migrate`.
ADDED_IN_2 = {
    "finished": "TIMESTAMP",
    "expires": "TIMESTAMP",
    "subject": "VARCHAR(255)",
    "reconcile_request": "TEXT",
}


# NativeAuthenticator's sign-in records (made by its authenticator, or by `Accounts`).
USERS_INFO = Table(
    "users_info",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False),
    Column("password", LargeBinary, nullable=False),
    Column("is_authorized", Boolean, default=False),
    Column("login_email_sent", Boolean, default=False),
    Column("email", String(128)),
    Column("has_2fa", Boolean, default=False),
    Column("otp_secret", String(16)),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware time, in UTC on every backend: SQLite stores no zone (the values are
    UTC), PostgreSQL answers in the session's time zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "jhds_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class ResourceRow(Base):
    __tablename__ = "jhds_resources"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(Text, nullable=True)  # manifest file, for gitops
    labels: Mapped[dict] = mapped_column(JSON, default=dict)
    spec: Mapped[dict] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int] = mapped_column(Integer, default=1)
    resource_version: Mapped[int] = mapped_column(Integer, index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when a one-shot reaches a terminal phase: resyncs and lookups skip finished rows
    # by index instead of loading them; `expires` is when its TTL deletes it (NULL: never).
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    # The user a per-user request is for (spec.user), so "this user's open resets" is one lookup.
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    # The last "reconcile now" request (JSON: at, withSource), handled once by the loop.
    reconcile_request: Mapped[str | None] = mapped_column(Text, nullable=True)


class StatusRow(Base):
    __tablename__ = "jhds_status"
    __table_args__ = (
        ForeignKeyConstraint(["kind", "name"], ["jhds_resources.kind", "jhds_resources.name"], ondelete="CASCADE"),
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    __tablename__ = "jhds_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(16))  # Normal | Warning
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The user an event came from or is about (NULL: the platform's): history is bounded per
    # subject, so one user's storm cannot push out anyone else's events.
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)


class ObservedRow(Base):
    __tablename__ = "jhds_observed"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class DockerObjectRow(Base):
    """One object a user made through the Docker proxy (kind: container, volume, network,
    image, exec), by the id the engine gave it: ownership is read from here, never from
    labels (anyone who can reach the engine can copy those)."""

    __tablename__ = "jhds_docker_objects"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # a volume's id is its name
    user: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict] = mapped_column(JSON, default=dict)  # limits of a container, parent of an exec


def migrate(connection: Any, version: int) -> None:
    """Bring a schema-`version` database to SCHEMA_VERSION, in place (inside the caller's
    transaction). Schema 1 lacked the bookkeeping columns of jhds_resources; they are added
    (if missing) and filled from what is stored: a one-shot already finished gets its
    finish time (from its status) and its TTL, a per-user request its subject."""
    if version < 2:
        _migrate_1(connection)
    if version < 3:  # schema 2 lacked the events' subject (old events stay the platform's)
        if "subject" not in {c["name"] for c in inspect(connection).get_columns("jhds_events")}:
            connection.execute(text("ALTER TABLE jhds_events ADD COLUMN subject VARCHAR(255)"))
        if "ix_jhds_events_subject" not in {i["name"] for i in inspect(connection).get_indexes("jhds_events")}:
            connection.execute(text("CREATE INDEX ix_jhds_events_subject ON jhds_events (subject)"))
    # Schema 4 added jhds_docker_objects, a new table: `create_all` made it before this ran.
    # Schema 5 added the usage ledger's tables (`reconciler/usage/tables.py`), new tables made
    # (with any columns added to them since) by `usage.tables.ensure_tables` when the hub or
    # the reconciler opens the ledger: nothing of the older tables changes.


def _migrate_1(connection: Any) -> None:
    have = {c["name"] for c in inspect(connection).get_columns("jhds_resources")}
    for column, sql_type in ADDED_IN_2.items():
        if column not in have:
            connection.execute(text(f"ALTER TABLE jhds_resources ADD COLUMN {column} {sql_type}"))
    indexes = {i["name"] for i in inspect(connection).get_indexes("jhds_resources")}
    for column in ("finished", "expires", "subject"):
        if f"ix_jhds_resources_{column}" not in indexes:
            connection.execute(text(f"CREATE INDEX ix_jhds_resources_{column} ON jhds_resources ({column})"))


def backfill(session: Any, one_shot_kinds: frozenset[str], terminal: frozenset[str]) -> None:
    """Schema 1 rows: the subject of per-user requests, and finished one-shots marked so
    (their TTL counts from their last status write)."""
    for row in session.query(ResourceRow).filter(ResourceRow.finished.is_(None)):
        row.subject = row.spec.get("user") if isinstance(row.spec.get("user"), str) else None
        status = session.get(StatusRow, (row.kind, row.name))
        body = status.body if status else {}
        if (
            row.kind in one_shot_kinds
            and body.get("phase") in terminal
            and body.get("observedGeneration") == row.generation
        ):
            row.finished = status.updated
            ttl = row.spec.get("ttlSecondsAfterFinished", 7 * 24 * 3600)
            row.expires = row.finished + timedelta(seconds=ttl) if ttl else None


def ensure_tables(engine: Any, tables: list[Table], added: dict[str, dict[str, str]]) -> None:
    """A module's own tables (outside the store's schema versions): created if missing, and
    the columns `added` since ({table: {column: SQL type}}) added in place. The hub and the
    reconciler may both find them missing at once: the loser finds them made."""
    for attempt in range(1, 6):
        try:
            Base.metadata.create_all(engine, tables=tables, checkfirst=True)
            break
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == 5:
                raise
            time.sleep(0.05 * attempt)
    if not added:
        return
    with engine.begin() as connection:
        for table, columns in added.items():
            have = {c["name"] for c in inspect(connection).get_columns(table)}
            for column, sql_type in columns.items():
                if column not in have:
                    connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
