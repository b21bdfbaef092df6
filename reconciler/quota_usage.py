"""A user's use in their quota's windows and their volumes' latest sizes, read from the
usage ledger (`reconciler/usage/`) for the quota decision (`quotas.py`). One function for
the Quota watch, the hub's spawn check and the home page, so all three see the same
figures. Sync (plain SQL): call it in a worker thread.

Totals are the ledger's report (`usage_report`: server time exact from the session records,
an open session counted up to now; CPU and GPU from the roll-ups). For when a full quota
frees up, the same use in hourly buckets: server time cut from the user's sessions, CPU and
GPU from the hourly roll-up (`HourlyRow`, kept 90 days: older use is not bucketed, which
only makes the time said later, never earlier).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .quotas import KINDS, EffectiveQuota, QuotaKind, Use
from .store import Store
from .usage.report import storage_by_user, usage_report
from .usage.tables import HourlyRow, SessionRow, ensure_tables
from .usage.times import split, utc

HOUR = 3600
_ready: set[int] = set()  # engines whose ledger tables are known to exist


def _tables(store: Store) -> None:
    """The ledger's tables, made if missing (a quota read may come before the first record)."""
    if id(store.engine) not in _ready:
        ensure_tables(store.engine)
        _ready.add(id(store.engine))


def user_usage(store: Store, user: str, quota: EffectiveQuota, now: datetime) -> dict[QuotaKind, Use]:
    """Per limit of `quota`, the user's use in its window, with hourly buckets."""
    out: dict[QuotaKind, Use] = {}
    _tables(store)
    with store.session() as session:
        for window in sorted({lim.window for lim in quota.limits.values()}):
            since = now - timedelta(seconds=window)
            row = next((r for r in usage_report(session, by="user", since=since, until=now, users=[user])), None)
            totals = {
                "server": row.server_seconds if row else 0.0,
                "cpu": row.cpu_seconds if row else 0.0,
                "gpu": row.gpu_seconds if row else 0.0,
            }
            kinds = [k for k in KINDS if k in quota.limits and quota.limits[k].window == window]
            buckets = hourly(session, user, since, now, kinds) if any(totals[k] for k in kinds) else {}
            for kind in kinds:
                out[kind] = Use(totals[kind], sorted(buckets.get(kind, {}).items()), HOUR)
    return out


def hourly(
    session: Session, user: str, since: datetime, now: datetime, kinds: list[QuotaKind]
) -> dict[str, dict[datetime, float]]:
    """The user's use per hour in [since, now): {kind: {hour: seconds}}."""
    out: dict[str, dict[datetime, float]] = defaultdict(lambda: defaultdict(float))
    if "server" in kinds:
        rows = session.execute(
            select(SessionRow.started, SessionRow.stopped).where(
                SessionRow.user == user,
                SessionRow.started < now,
                or_(SessionRow.stopped.is_(None), SessionRow.stopped > since),
            )
        )
        for started, stopped in rows:
            end = min(utc(stopped) if stopped else now, now)
            for hour, seconds in split(max(utc(started), since), end, timedelta(seconds=HOUR)):
                out["server"][hour] += seconds
    if "cpu" in kinds or "gpu" in kinds:
        rows = session.execute(
            select(HourlyRow.period, func.sum(HourlyRow.cpu_seconds), func.sum(HourlyRow.gpu_seconds))
            .where(
                HourlyRow.user == user,
                HourlyRow.period >= since.replace(minute=0, second=0, microsecond=0),
                HourlyRow.period < now,
            )
            .group_by(HourlyRow.period)
        )
        for period, cpu, gpu in rows:
            out["cpu"][utc(period)] += cpu or 0.0
            out["gpu"][utc(period)] += gpu or 0.0
    return out


def user_storage(store: Store, user: str) -> list[dict[str, Any]]:
    """The user's volumes as the newest storage survey saw them."""
    _tables(store)
    with store.session() as session:
        return storage_by_user(session, [user])
