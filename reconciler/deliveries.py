"""The delivery ledger of broadcasts: one row per (broadcast, run, target server).

Each target's outcome is its own row, written as it happens, so a broadcast to 1,000
servers never rewrites one growing status document; the resource's status keeps counts.
A run restarted after a crash sends again only to rows that are not yet final.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .clients.lab import Result
from .store import Store
from .tables import Base, UTCDateTime

PENDING = "pending"


class DeliveryRow(Base):
    __tablename__ = "jhds_deliveries"
    __table_args__ = (
        UniqueConstraint("name", "run", "user", "server"),
        ForeignKeyConstraint(["kind", "name"], ["jhds_resources.kind", "jhds_resources.name"], ondelete="CASCADE"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), default="Broadcast")
    name: Mapped[str] = mapped_column(String(63), index=True)
    run: Mapped[str] = mapped_column(String(40))
    user: Mapped[str] = mapped_column(String(255))
    server: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), default=PENDING)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Deliveries:
    def __init__(self, store: Store):
        self.store = store
        DeliveryRow.__table__.create(store.engine, checkfirst=True)

    def start_run(self, name: str, run: str, targets: list[tuple[str, str, str]]) -> None:
        """Record the run's targets (user, server, url) as pending; existing rows are kept."""
        now = datetime.now(UTC)
        with self.store.session() as s:
            have = {
                (u, sv)
                for u, sv in s.execute(
                    select(DeliveryRow.user, DeliveryRow.server).where(DeliveryRow.name == name, DeliveryRow.run == run)
                )
            }
            s.add_all(
                DeliveryRow(name=name, run=run, user=u, server=sv, url=url, updated=now)
                for u, sv, url in targets
                if (u, sv) not in have
            )

    def record(self, name: str, run: str, results: list[Result]) -> None:
        """Write outcomes (one statement per result, one transaction for the batch)."""
        if not results:
            return
        now = datetime.now(UTC)
        with self.store.session() as s:
            for r in results:
                s.execute(
                    update(DeliveryRow)
                    .where(
                        DeliveryRow.name == name,
                        DeliveryRow.run == run,
                        DeliveryRow.user == r.target.user,
                        DeliveryRow.server == r.target.server,
                    )
                    .values(
                        outcome=r.outcome,
                        http_status=r.http_status,
                        error=r.error,
                        attempts=DeliveryRow.attempts + r.attempts,
                        ms=r.ms,
                        updated=now,
                    )
                )

    def forget_runs(self, name: str, runs: list[str]) -> None:
        """Delete the records of runs no longer kept in the broadcast's history."""
        with self.store.session() as s:
            s.execute(delete(DeliveryRow).where(DeliveryRow.name == name, DeliveryRow.run.in_(runs)))

    def trim(self, max_age_days: float, max_rows: int) -> int:
        """Delete records older than `max_age_days`, then the oldest beyond `max_rows`."""
        cutoff = datetime.now(UTC) - timedelta(days=max_age_days)
        with self.store.session() as s:
            removed = s.execute(delete(DeliveryRow).where(DeliveryRow.updated < cutoff)).rowcount
            last = s.scalars(select(DeliveryRow.id).order_by(DeliveryRow.id.desc()).offset(max_rows).limit(1)).first()
            if last is not None:
                removed += s.execute(delete(DeliveryRow).where(DeliveryRow.id <= last)).rowcount
        return removed

    def rows(self, name: str, run: str | None = None) -> list[dict[str, Any]]:
        with self.store.session() as s:
            query = select(DeliveryRow).where(DeliveryRow.name == name).order_by(DeliveryRow.id)
            if run is not None:
                query = query.where(DeliveryRow.run == run)
            return [
                {
                    "run": r.run,
                    "user": r.user,
                    "server": r.server,
                    "url": r.url,
                    "outcome": r.outcome,
                    "httpStatus": r.http_status,
                    "error": r.error,
                    "attempts": r.attempts,
                    "ms": r.ms,
                    "time": r.updated.isoformat(),
                }
                for r in s.scalars(query)
            ]

    def counts(self, name: str, run: str) -> dict[str, int]:
        with self.store.session() as s:
            outcomes = s.scalars(select(DeliveryRow.outcome).where(DeliveryRow.name == name, DeliveryRow.run == run))
            c = Counter(outcomes)
        return {k: c.get(k, 0) for k in ("delivered", "failed", "timeout", "skipped", PENDING)} | {
            "total": sum(c.values())
        }
