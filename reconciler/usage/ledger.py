"""The ledger's handle: one per process (the hub's, the reconciler's), over the store's
database; each method is one short transaction (call it from a worker thread in async code)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from ..store import Store
from . import rollups, sessions
from .report import By, UsageRow, usage_report
from .sessions import ActiveServer, Squared
from .tables import SessionRow, StorageRow, ensure_tables


class UsageLedger:
    def __init__(self, store: Store):
        self.store = store
        ensure_tables(store.engine)

    def open_session(
        self, user: str, server: str, started: datetime, groups: Iterable[str], by: str = sessions.HUB
    ) -> bool:
        with self.store.session() as s:
            return sessions.open_session(s, user, server, started, groups, by)

    def close_session(self, user: str, server: str, stopped: datetime | None, by: str = sessions.HUB) -> int:
        with self.store.session() as s:
            return sessions.close_session(s, user, server, stopped, by)

    def square(
        self, active: Iterable[ActiveServer], now: datetime | None = None, candidates: Collection[int] | None = None
    ) -> Squared:
        with self.store.session() as s:
            return sessions.square(s, active, now or datetime.now(UTC), candidates)

    def open_ids(self) -> set[int]:
        with self.store.session() as s:
            return sessions.open_ids(s)

    def open_sessions(self) -> list[SessionRow]:
        with self.store.session() as s:
            return list(s.scalars(select(SessionRow).where(SessionRow.stopped.is_(None))))

    def sessions_of(self, user: str) -> list[SessionRow]:
        with self.store.session() as s:
            return list(s.scalars(select(SessionRow).where(SessionRow.user == user).order_by(SessionRow.started)))

    def record_samples(self, samples: list[rollups.Sample]) -> None:
        with self.store.session() as s:
            rollups.record(s, samples)

    def record_storage(self, sizes: Iterable[tuple[str, str, str, int]], surveyed: datetime) -> int:
        """One survey: (volume, user, kind, bytes) each; today's row of a volume is replaced."""
        day: date = surveyed.astimezone(UTC).date()
        count = 0
        with self.store.session() as s:
            for volume, user, kind, size in sizes:
                row = s.get(StorageRow, (volume, day))
                if row is None:
                    s.add(StorageRow(volume=volume, day=day, user=user, kind=kind, bytes=size, surveyed=surveyed))
                else:
                    row.user, row.kind, row.bytes, row.surveyed = user, kind, size, surveyed
                count += 1
        return count

    def trim(
        self, raw_days: float, hourly_days: float, daily_days: float, now: datetime | None = None
    ) -> dict[str, Any]:
        with self.store.session() as s:
            return rollups.trim(s, now or datetime.now(UTC), raw_days, hourly_days, daily_days)

    def report(
        self, *, by: By, since: datetime, until: datetime, users: Collection[str] | None = None
    ) -> list[UsageRow]:
        with self.store.session() as s:
            return usage_report(s, by=by, since=since, until=until, users=users)
