"""A server's sessions: opened and closed by the hub as it starts and stops servers, squared
with the hub's own record by the reconciler's resync (docs/usage.md#sessions).

A session is keyed by (user, server, the hub's `started`), so a record the hub wrote and the
one the reconciler would make from the hub's REST answer are the same row: whichever comes
first writes it, the other finds it. Every function here is one short transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .tables import SessionRow

HUB = "hub"
RECONCILER = "reconciler"


@dataclass(frozen=True)
class ActiveServer:
    """A server as the hub reports it (REST `GET /hub/api/users?state=active`)."""

    user: str
    server: str
    started: datetime
    groups: tuple[str, ...] = ()
    ready: bool = True  # False: its spawn (or stop) is pending


@dataclass
class Squared:
    opened: list[tuple[str, str]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)


def _best_end(row: SessionRow, not_after: datetime) -> datetime:
    """Where a session whose stop nobody saw ends: the newest time it was known running."""
    end = max(row.last_seen or row.started, row.started)
    return min(end, not_after)


def open_session(s: Session, user: str, server: str, started: datetime, groups: Iterable[str], by: str = HUB) -> bool:
    """Record that `user`'s `server` runs since `started` (the hub's time); False if it is
    recorded already. An older session of the same server still open (its stop was never
    seen: the hub was killed) is closed first, at the newest time it was known running."""
    exists = s.execute(
        select(SessionRow.id).where(SessionRow.user == user, SessionRow.server == server, SessionRow.started == started)
    ).first()
    if exists is not None:
        return False
    for row in s.scalars(
        select(SessionRow).where(SessionRow.user == user, SessionRow.server == server, SessionRow.stopped.is_(None))
    ):
        row.stopped = _best_end(row, started)
        row.closed_by = by
    s.add(
        SessionRow(
            user=user, server=server, started=started, groups=sorted(set(groups)), opened_by=by, last_seen=started
        )
    )
    return True


def close_session(s: Session, user: str, server: str, stopped: datetime | None, by: str = HUB) -> int:
    """Close `user`'s open sessions of `server` at `stopped` (never before their start); None:
    at the newest time each was known running.

    The hub's stop is the exact one: when a resync closed the session first at its last
    sighting (JupyterHub forgets the server before it runs the post-stop hook that records
    the stop, so a resync in between sees it gone), the hub's later time replaces that guess."""
    closed = 0
    for row in s.scalars(
        select(SessionRow).where(SessionRow.user == user, SessionRow.server == server, SessionRow.stopped.is_(None))
    ):
        row.stopped = max(stopped, row.started) if stopped is not None else _best_end(row, datetime.now(UTC))
        row.closed_by = by
        closed += 1
    if closed or stopped is None or by != HUB:
        return closed
    latest = s.scalars(
        select(SessionRow)
        .where(SessionRow.user == user, SessionRow.server == server)
        .order_by(SessionRow.started.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.closed_by == RECONCILER and latest.started <= stopped and latest.stopped < stopped:
        latest.stopped, latest.closed_by = stopped, HUB
        return 1
    return 0


def mark_seen(s: Session, seen: Iterable[tuple[str, str]], when: datetime) -> None:
    """The servers (user, server) were running at `when` (a sample, a resync)."""
    for user, server in seen:
        s.execute(
            update(SessionRow)
            .where(SessionRow.user == user, SessionRow.server == server, SessionRow.stopped.is_(None))
            .values(last_seen=when)
        )


def square(
    s: Session, active: Iterable[ActiveServer], now: datetime, candidates: Collection[int] | None = None
) -> Squared:
    """Make the ledger agree with the hub's record: a ready server without a session gets one
    from the hub's `started` (it started while nobody recorded it, or the hub's write was
    lost); an open session whose server the hub no longer lists (ready or pending) is closed
    at the best known time (its last sample or resync). Only `candidates` (the sessions open
    before the hub was asked) may be closed: one the hub opened since is not in the answer."""
    result = Squared()
    active = list(active)
    by_key = {(a.user, a.server): a for a in active}
    open_rows = list(s.scalars(select(SessionRow).where(SessionRow.stopped.is_(None))))
    for row in open_rows:
        a = by_key.get((row.user, row.server))
        if a is not None and a.started == row.started:
            row.last_seen = max(row.last_seen or row.started, now)
            continue
        if a is not None or (candidates is not None and row.id not in candidates):
            continue  # a newer run of the server (`open_session` below closes this one), or too new
        row.stopped = _best_end(row, now)
        row.closed_by = RECONCILER
        result.closed.append((row.user, row.server))
    for a in active:
        if a.ready and open_session(s, a.user, a.server, a.started, a.groups, by=RECONCILER):
            result.opened.append((a.user, a.server))
            s.flush()
    return result


def open_ids(s: Session) -> set[int]:
    return set(s.scalars(select(SessionRow.id).where(SessionRow.stopped.is_(None))))
