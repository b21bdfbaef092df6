"""The usage report: one plain-SQL read of the ledger, shared by `hubctl usage`, the REST
API, the Usage page and the quotas (docs/usage.md#reports).

- server time is exact, from the sessions: each session's overlap with [since, until); an
  open one counts up to `until` or now, whichever is first;
- CPU, memory and GPU come from the roll-ups: whole days from the daily table, the partial
  days at the window's edges by the hour from the hourly one (a report never reads raw rows);
- storage is the newest survey at or before `until` (a volume gone from it counts nothing);
- groups are the user's hub groups when the session began (`tables.SessionRow.groups`): a
  session counts in each of its groups (so groups' totals may add up to more than the
  users'); a user's storage counts in the groups of their newest session. A user with no
  group is reported under `NO_GROUP`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import String, and_, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from .tables import DailyRow, HourlyRow, SessionRow, StorageRow
from .times import DAY, HOUR, floor, split, utc

By = Literal["user", "group"]
Step = Literal["hour", "day"]
NO_GROUP = "(none)"
WIDTH: dict[Step, timedelta] = {"hour": HOUR, "day": DAY}


@dataclass(frozen=True)
class UsageRow:
    key: str  # the user's name, or the group's
    groups: list[str]
    server_seconds: float
    cpu_seconds: float
    memory_gib_hours: float
    gpu_seconds: float
    storage_bytes: int

    def to_json(self, by: By) -> dict[str, Any]:
        return {
            by: self.key,
            "groups": list(self.groups),
            "serverSeconds": round(self.server_seconds, 3),
            "cpuSeconds": round(self.cpu_seconds, 3),
            "memoryGiBHours": round(self.memory_gib_hours, 6),
            "gpuSeconds": round(self.gpu_seconds, 3),
            "storageBytes": self.storage_bytes,
        }


@dataclass
class _Sums:
    groups: set[str] = field(default_factory=set)
    server_seconds: float = 0.0
    cpu_seconds: float = 0.0
    memory_gib_hours: float = 0.0
    gpu_seconds: float = 0.0
    storage_bytes: int = 0


def _floor(t: datetime, step: Step) -> datetime:
    return floor(t, WIDTH[step])


def _ceil_day(t: datetime) -> datetime:
    day = _floor(t, "day")
    return day if day == t else day + timedelta(days=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: Any) -> datetime | None:
    """A stored time as read raw (SQLite: ISO text; PostgreSQL: the driver's datetime)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _sessions(
    s: Session, since: datetime, until: datetime, users: Collection[str] | None
) -> Iterable[tuple[str, datetime, datetime | None, list[str]]]:
    """(user, started, stopped, groups) of the sessions overlapping the window. Read raw and
    parsed here: SQLAlchemy's per-row processors were most of a 30-day report's time."""
    q = select(
        SessionRow.user,
        type_coerce(SessionRow.started, String),
        type_coerce(SessionRow.stopped, String),
        type_coerce(SessionRow.groups, String),
    ).where(SessionRow.started < until, or_(SessionRow.stopped.is_(None), SessionRow.stopped > since))
    if users is not None:
        q = q.where(SessionRow.user.in_(list(users)))
    parsed: dict[str, list[str]] = {}
    for user, started, stopped, groups in s.execute(q):
        if not isinstance(groups, str):  # PostgreSQL's driver decodes JSON itself
            yield user, _time(started), _time(stopped), list(groups or [])
            continue
        if groups not in parsed:  # a handful of distinct sets
            parsed[groups] = json.loads(groups)
        yield user, _time(started), _time(stopped), parsed[groups]


def _overlap(started: datetime, stopped: datetime | None, since: datetime, until: datetime, now: datetime) -> float:
    end = min(utc(stopped) if stopped is not None else now, until)
    return max(0.0, (end - max(utc(started), since)).total_seconds())


def _rollups(s: Session, since: datetime, until: datetime, users: Collection[str] | None) -> list[Any]:
    """(user, groups JSON, cpu, memory, gpu) summed per user and group set: daily rows for the
    whole days inside the window, hourly rows for the partial days at its edges."""
    first_day, last_day = _ceil_day(since), _floor(until, "day")
    parts: list[tuple[Any, Any]] = []
    if first_day < last_day:
        parts.append((DailyRow, and_(DailyRow.period >= first_day.date(), DailyRow.period < last_day.date())))
        parts.append((HourlyRow, and_(HourlyRow.period >= _floor(since, "hour"), HourlyRow.period < first_day)))
        parts.append((HourlyRow, and_(HourlyRow.period >= last_day, HourlyRow.period < until)))
    else:
        parts.append((HourlyRow, and_(HourlyRow.period >= _floor(since, "hour"), HourlyRow.period < until)))
    rows: list[Any] = []
    for table, where in parts:
        q = (
            select(
                table.user,
                table.groups,
                func.sum(table.cpu_seconds),
                func.sum(table.memory_gib_hours),
                func.sum(table.gpu_seconds),
            )
            .where(where)
            .group_by(table.user, table.groups)
        )
        if users is not None:
            q = q.where(table.user.in_(list(users)))
        rows.extend(s.execute(q))
    return rows


def _storage(s: Session, until: datetime, users: Collection[str] | None) -> dict[str, int]:
    """Bytes per user in the newest survey day at or before `until`."""
    day = s.execute(select(func.max(StorageRow.day)).where(StorageRow.day <= until.date())).scalar()
    if day is None:
        return {}
    q = select(StorageRow.user, func.sum(StorageRow.bytes)).where(StorageRow.day == day).group_by(StorageRow.user)
    if users is not None:
        q = q.where(StorageRow.user.in_(list(users)))
    return {user: int(total or 0) for user, total in s.execute(q)}


def _latest_groups(s: Session, until: datetime, users: Collection[str]) -> dict[str, list[str]]:
    """Each user's groups at the start of their newest session begun before `until`."""
    if not users:
        return {}
    newest = (
        select(SessionRow.user, func.max(SessionRow.started).label("started"))
        .where(SessionRow.started < until, SessionRow.user.in_(list(users)))
        .group_by(SessionRow.user)
        .subquery()
    )
    q = select(SessionRow.user, SessionRow.groups).join(
        newest, and_(SessionRow.user == newest.c.user, SessionRow.started == newest.c.started)
    )
    return {user: list(groups or []) for user, groups in s.execute(q)}


def usage_report(
    session: Session,
    *,
    by: By,
    since: datetime,
    until: datetime,
    users: Collection[str] | None = None,
) -> list[UsageRow]:
    """Usage in [since, until) per user or per group, the busiest first (see the module)."""
    since, until = utc(since), utc(until)
    now = _now()
    per_user: dict[str, _Sums] = defaultdict(_Sums)
    per_group: dict[str, _Sums] = defaultdict(_Sums)

    def groups_of(names: Iterable[str] | None) -> list[str]:
        return list(names or []) or [NO_GROUP]

    for user, started, stopped, groups in _sessions(session, since, until, users):
        seconds = _overlap(started, stopped, since, until, now)
        per_user[user].server_seconds += seconds
        for g in groups_of(groups):
            per_group[g].server_seconds += seconds
    for user, groups_json, cpu, memory, gpu in _rollups(session, since, until, users):
        targets = [per_user[user]] + [per_group[g] for g in groups_of(json.loads(groups_json or "[]"))]
        for t in targets:
            t.cpu_seconds += cpu or 0.0
            t.memory_gib_hours += memory or 0.0
            t.gpu_seconds += gpu or 0.0
    storage = _storage(session, until, users)
    for user, size in storage.items():
        per_user[user].storage_bytes += size
    latest = _latest_groups(session, until, list(per_user))
    for user, sums in per_user.items():
        sums.groups = set(latest.get(user, []))
    for user, size in storage.items():
        for g in groups_of(latest.get(user)):
            per_group[g].storage_bytes += size
    chosen = per_user if by == "user" else per_group
    rows = [
        UsageRow(
            key=key,
            groups=sorted(sums.groups) if by == "user" else [key],
            server_seconds=sums.server_seconds,
            cpu_seconds=sums.cpu_seconds,
            memory_gib_hours=sums.memory_gib_hours,
            gpu_seconds=sums.gpu_seconds,
            storage_bytes=sums.storage_bytes,
        )
        for key, sums in chosen.items()
    ]
    return sorted(rows, key=lambda r: (-r.server_seconds, r.key))


def report_json(rows: list[UsageRow], *, by: By, since: datetime, until: datetime) -> dict[str, Any]:
    """The report's JSON document (`hubctl usage -o json`, `GET /hub/api/usage`)."""
    return {"since": iso(since), "until": iso(until), "by": by, "rows": [r.to_json(by) for r in rows]}


def iso(t: datetime) -> str:
    return utc(t).isoformat().replace("+00:00", "Z")


def server_seconds_over_time(
    session: Session, *, by: By, since: datetime, until: datetime, step: Step
) -> list[dict[str, Any]]:
    """Server time per bucket of `step` for charts: [{"t": iso, "<key>": seconds, ...}], one
    entry per bucket from the one holding `since` to the one before `until` (keys with no
    time in a bucket are left out)."""
    since, until = utc(since), utc(until)
    now = _now()
    width = WIDTH[step]
    first = floor(since, width)
    count = max(0, -(-int((until - first).total_seconds()) // int(width.total_seconds())))
    buckets: list[dict[str, float]] = [defaultdict(float) for _ in range(count)]
    for user, started, stopped, groups in _sessions(session, since, until, None):
        start = max(utc(started), since)
        end = min(utc(stopped) if stopped is not None else now, until)
        keys = [user] if by == "user" else (list(groups or []) or [NO_GROUP])
        for bucket, seconds in split(start, end, width):
            for k in keys:
                buckets[(bucket - first) // width][k] += seconds
    return [{"t": iso(first + i * width), **{k: round(v, 3) for k, v in b.items()}} for i, b in enumerate(buckets)]


def storage_by_user(session: Session, users: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Each user volume's size in the newest survey: [{"user","volume","kind","bytes","surveyed"}]
    (only `users`' when given: a quota check reads one user's rows, not the survey)."""
    day = session.execute(select(func.max(StorageRow.day))).scalar()
    if day is None:
        return []
    query = select(StorageRow).where(StorageRow.day == day)
    if users is not None:
        query = query.where(StorageRow.user.in_(list(users)))
    rows = session.scalars(query.order_by(StorageRow.user, StorageRow.volume))
    return [
        {"user": r.user, "volume": r.volume, "kind": r.kind, "bytes": r.bytes, "surveyed": iso(r.surveyed)}
        for r in rows
    ]
