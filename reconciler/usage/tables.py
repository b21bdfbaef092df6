"""The usage ledger's tables, in the hub database beside the other `jhds_` tables.

- `jhds_usage_sessions`: one row per server run (user, server, start, stop), written by the
  hub as it starts and stops servers and squared with the hub's record by the reconciler;
  `groups` are the user's hub groups when the session began (reports by group use them);
- `jhds_usage_samples`: raw samples (one per running server per sample interval), kept
  `USAGE_RAW_DAYS`;
- `jhds_usage_hourly` / `jhds_usage_daily`: the roll-ups, updated as samples arrive (a
  report reads these, never the raw rows);
- `jhds_usage_storage`: each user volume's size, one row per volume per day (the newest
  survey of that day).

Created by `ensure_tables` (the hub and the reconciler both call it when they open the
ledger); the store's schema version 5 is the version that has them (`reconciler/tables.py`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .. import tables
from ..tables import Base, UTCDateTime

# Columns added to the ledger's tables after they were first made, with their SQL type:
# added in place by `ensure_tables` (none yet; the place future ones go).
ADDED_COLUMNS: dict[str, dict[str, str]] = {}


class SessionRow(Base):
    __tablename__ = "jhds_usage_sessions"
    __table_args__ = (
        UniqueConstraint("user", "server", "started"),
        Index("ix_jhds_usage_sessions_open", "stopped", "user"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    server: Mapped[str] = mapped_column(String(255), default="")
    started: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the hub's `started`
    stopped: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)  # at the session's start
    # The newest time the server was known running (a sample, the resync): where a session
    # whose stop nobody saw is closed.
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_by: Mapped[str] = mapped_column(String(16), default="hub")  # hub | reconciler
    closed_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # hub | reconciler


class SampleRow(Base):
    """One raw sample, kept compact (epoch seconds, whole milliseconds and KiB, the session's
    id for who and which server; SQLite: no rowid, clustered by time): a week at 60 s of
    1,000 servers running 8 h a day is 3.4 M rows (benchmarks/usage.py)."""

    __tablename__ = "jhds_usage_samples"
    __table_args__ = {"sqlite_with_rowid": False}
    time: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # epoch seconds
    session: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # jhds_usage_sessions.id
    cpu_ms: Mapped[int] = mapped_column(BigInteger)  # CPU-milliseconds since the previous sample
    memory_kib: Mapped[int] = mapped_column(BigInteger)
    interval_ms: Mapped[int] = mapped_column(Integer)  # what this sample stands for
    gpus: Mapped[int] = mapped_column(Integer, default=0)


class _Rollup:
    """What the hourly and the daily roll-ups hold, per user, server and period."""

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    # The groups of the session sampled (JSON text, sorted): a report by group sums per set.
    groups: Mapped[str] = mapped_column(String(1024), default="[]")
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_gib_hours: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    samples: Mapped[int] = mapped_column(Integer, default=0)


class HourlyRow(_Rollup, Base):
    __tablename__ = "jhds_usage_hourly"
    period: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)  # the hour's start
    __table_args__ = (Index("ix_jhds_usage_hourly_period", "period"),)


class DailyRow(_Rollup, Base):
    __tablename__ = "jhds_usage_daily"
    period: Mapped[date] = mapped_column(Date, primary_key=True)  # the UTC day
    __table_args__ = (Index("ix_jhds_usage_daily_period", "period"),)


class StorageRow(Base):
    __tablename__ = "jhds_usage_storage"
    volume: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(64))  # the volume's key (home, work, ...)
    bytes: Mapped[int] = mapped_column(BigInteger)
    surveyed: Mapped[datetime] = mapped_column(UTCDateTime)


TABLES = [t.__table__ for t in (SessionRow, SampleRow, HourlyRow, DailyRow, StorageRow)]


def ensure_tables(engine: Any) -> None:
    """Create the ledger's tables if missing and add columns added since, in place."""
    tables.ensure_tables(engine, TABLES, ADDED_COLUMNS)
