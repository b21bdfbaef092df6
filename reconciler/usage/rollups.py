"""Samples in, roll-ups updated as they arrive, old rows trimmed.

A sample stands for the `interval` seconds before it: its CPU-seconds are the cumulative
counter's rise since the previous sample of the same container (`cpu_delta`), its memory
GiB-hours the memory in use times the interval. Each sample is added to its hour's and its
day's row in the same transaction (an upsert), so a report over 30 days reads at most a few
rows per user and day, never the raw samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .tables import DailyRow, HourlyRow, SampleRow, SessionRow, StorageRow

GIB = 1024**3


@dataclass(frozen=True)
class Sample:
    time: datetime
    user: str
    server: str
    container: str
    cpu_total: float  # the engine's cumulative CPU counter, seconds
    cpu_seconds: float  # since the previous sample (`cpu_delta`)
    memory_bytes: int
    interval: float  # the seconds this sample stands for
    gpus: int = 0


def cpu_delta(previous_total: float | None, total: float) -> float:
    """CPU-seconds since the previous sample of a container. No previous sample: all the
    counter holds (it counts from the container's start, and a session is a container's
    life). A counter lower than before: the container restarted and counts from zero again,
    so all it holds is new."""
    if previous_total is None or total < previous_total:
        return max(total, 0.0)
    return total - previous_total


def sample_interval(previous: datetime | None, now: datetime, nominal: float, started: datetime | None) -> float:
    """The seconds a sample stands for: since the previous one, at most two nominal intervals
    (a longer gap, the reconciler down, is not guessed at; its CPU is all counted); the first sample of a
    container stands for the time since it started, at most one interval."""
    if previous is not None:
        return max(0.0, min((now - previous).total_seconds(), 2 * nominal))
    if started is not None:
        return max(0.0, min((now - started).total_seconds(), nominal))
    return nominal


def _insert(s: Session) -> Any:
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def _upsert(s: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Add each row's figures to its period's row (made if missing): one statement, executed
    for all rows at once."""
    stmt = _insert(s)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["user", "server", "period"],
        set_={
            **{k: getattr(table.c, k) + stmt.excluded[k] for k in ADDED},
            "groups": stmt.excluded.groups,
        },
    )
    s.execute(stmt, rows)


ADDED = ("cpu_seconds", "memory_gib_hours", "gpu_seconds", "samples")


def record(s: Session, samples: list[Sample]) -> None:
    """Store raw samples and add them to their hour's and day's roll-ups, in one transaction
    of a few statements however many samples; the sampled sessions are marked seen (where a
    session whose stop is missed is closed). A sample of a server with no session yet (the
    resync opens it) goes to the roll-ups only."""
    if not samples:
        return
    users = {x.user for x in samples}
    sessions: dict[tuple[str, str], tuple[int, str]] = {}
    for sid, user, server, names in s.execute(
        select(SessionRow.id, SessionRow.user, SessionRow.server, SessionRow.groups).where(
            SessionRow.stopped.is_(None), SessionRow.user.in_(users)
        )
    ):
        sessions[(user, server)] = (sid, json.dumps(sorted(names or [])))
    raw, hourly, daily = [], [], []
    for x in samples:
        sid, groups = sessions.get((x.user, x.server), (None, "[]"))
        if sid is not None:
            raw.append(
                {
                    "time": int(x.time.timestamp()),
                    "session": sid,
                    "cpu_ms": round(x.cpu_seconds * 1000),
                    "memory_kib": x.memory_bytes // 1024,
                    "interval_ms": round(x.interval * 1000),
                    "gpus": x.gpus,
                }
            )
        hour = x.time.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        figures = {
            "user": x.user,
            "server": x.server,
            "groups": groups,
            "cpu_seconds": x.cpu_seconds,
            "memory_gib_hours": x.memory_bytes / GIB * x.interval / 3600,
            "gpu_seconds": x.gpus * x.interval,
            "samples": 1,
        }
        hourly.append(figures | {"period": hour})
        daily.append(figures | {"period": hour.date()})
    _upsert(s, HourlyRow.__table__, hourly)
    _upsert(s, DailyRow.__table__, daily)
    if raw:
        s.execute(_insert(s)(SampleRow.__table__).on_conflict_do_nothing(), raw)
        seen = max(x.time for x in samples)
        s.execute(update(SessionRow).where(SessionRow.id.in_({r["session"] for r in raw})).values(last_seen=seen))


def trim(s: Session, now: datetime, raw_days: float, hourly_days: float, daily_days: float) -> dict[str, int]:
    """Delete rows past their keeping: raw samples, hourly and daily roll-ups, storage surveys
    (kept as long as the daily roll-ups), closed sessions (as long as the daily roll-ups)."""
    counts = {}
    for name, table, column, cutoff in (
        ("samples", SampleRow, SampleRow.time, int((now - timedelta(days=raw_days)).timestamp())),
        ("hourly", HourlyRow, HourlyRow.period, now - timedelta(days=hourly_days)),
        ("daily", DailyRow, DailyRow.period, (now - timedelta(days=daily_days)).date()),
        ("storage", StorageRow, StorageRow.day, (now - timedelta(days=daily_days)).date()),
    ):
        counts[name] = s.execute(delete(table).where(column < cutoff)).rowcount or 0
    counts["sessions"] = (
        s.execute(delete(SessionRow).where(SessionRow.stopped < now - timedelta(days=daily_days))).rowcount or 0
    )
    return counts
