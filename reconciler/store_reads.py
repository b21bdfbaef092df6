"""The store's reads: one short transaction each, no locks (writes are `Store`'s, with the
transaction discipline described there)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .stored import Event, StoredResource, from_row
from .tables import EventRow, MetaRow, ObservedRow, ResourceRow, StatusRow, utcnow


class StoreReads:
    """Reads of resources, statuses, observed rows and events; `Store` adds the writes."""

    def session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError  # Store's: one transaction

    def observed(self, kind: str, name: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(ObservedRow, (kind, name))
            return dict(row.body) if row else {}

    def observed_all(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every observed row of one kind, by name (one query)."""
        with self.session() as s:
            return {r.name: dict(r.body) for r in s.scalars(select(ObservedRow).where(ObservedRow.kind == kind))}

    def get(self, kind: str, name: str) -> StoredResource | None:
        with self.session() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is None:
                return None
            status = s.get(StatusRow, (kind, name))
            return from_row(row, status.body if status else {})

    def list(self, kind: str | None = None) -> list[StoredResource]:
        with self.session() as s:
            query = select(ResourceRow).order_by(ResourceRow.kind, ResourceRow.name)
            if kind:
                query = query.where(ResourceRow.kind == kind)
            status_query = select(StatusRow)
            if kind:
                status_query = status_query.where(StatusRow.kind == kind)
            statuses = {(r.kind, r.name): r.body for r in s.scalars(status_query)}
            return [from_row(row, statuses.get((row.kind, row.name), {})) for row in s.scalars(query)]

    def fingerprint(self, kind: str) -> tuple[int, int, str]:
        """Changes whenever a resource of `kind` is added, changed, deleted or gets a new
        status (one aggregate query, no rows loaded): for caches of a kind's listing."""
        with self.session() as s:
            count, version = s.execute(
                select(func.count(), func.max(ResourceRow.resource_version)).where(ResourceRow.kind == kind)
            ).one()
            updated = s.execute(select(func.max(StatusRow.updated)).where(StatusRow.kind == kind)).scalar()
            return int(count), int(version or 0), str(updated)

    def keys(self) -> set[tuple[str, str]]:
        with self.session() as s:
            return {(k, n) for k, n in s.execute(select(ResourceRow.kind, ResourceRow.name))}

    def live_keys(self, now: datetime | None = None) -> set[tuple[str, str]]:
        """Keys a resync looks at: all but finished one-shots whose TTL has not come (by index;
        finished ones are neither loaded nor listed)."""
        now = now or utcnow()
        live = (ResourceRow.finished.is_(None)) | (ResourceRow.expires <= now)
        with self.session() as s:
            return {(k, n) for k, n in s.execute(select(ResourceRow.kind, ResourceRow.name).where(live))}

    def open_requests(self, kind: str, user: str) -> list[StoredResource]:
        """The unfinished requests of one kind for one user (one indexed lookup)."""
        with self.session() as s:
            query = select(ResourceRow).where(
                ResourceRow.kind == kind, ResourceRow.subject == user, ResourceRow.finished.is_(None)
            )
            rows = list(s.scalars(query))
            statuses = {r.name: s.get(StatusRow, (kind, r.name)) for r in rows}
            return [from_row(r, statuses[r.name].body if statuses[r.name] else {}) for r in rows]

    def open_request_subjects(self, kinds: tuple[str, ...]) -> dict[str, str]:
        """Users with an unfinished request of these kinds: user -> "kind/name" (one query)."""
        with self.session() as s:
            query = select(ResourceRow.subject, ResourceRow.kind, ResourceRow.name).where(
                ResourceRow.kind.in_(kinds), ResourceRow.finished.is_(None), ResourceRow.subject.is_not(None)
            )
            return {subject: f"{kind}/{name}" for subject, kind, name in s.execute(query)}

    def changed_since(self, version: int) -> tuple[list[tuple[str, str]], int]:
        """Keys written after `version`, and the newest version (for the next call)."""
        with self.session() as s:
            current = s.get(MetaRow, "resource_version").value
            if current == version:
                return [], current
            rows = s.execute(
                select(ResourceRow.kind, ResourceRow.name).where(ResourceRow.resource_version > version)
            ).all()
            return [(k, n) for k, n in rows], current

    def events(self, kind: str | None = None, name: str | None = None, limit: int = 100) -> list[Event]:
        with self.session() as s:
            query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
            if kind:
                query = query.where(EventRow.kind == kind)
            if name:
                query = query.where(EventRow.name == name)
            rows = list(s.scalars(query))
        return [
            Event(r.id, r.time, r.kind, r.name, r.type, r.reason, r.message, r.actor, r.subject) for r in reversed(rows)
        ]
