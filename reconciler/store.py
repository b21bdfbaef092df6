"""Desired state, status and events: tables in the hub database.

One piece: every read and write here follows one transaction discipline (below), which is
easier to check when it is all in one class.

The hub (REST API, panel) and the reconciler both write here, so on SQLite the store
turns on WAL and a generous busy timeout. Every write is one short transaction; `apply`
of many documents is one transaction: all of them, or none. Writers take turns on every
backend: a write transaction first locks the change counter's row (PostgreSQL: `SELECT ...
FOR UPDATE`; SQLite: the database's write lock), so what it reads is what it changes and
resource versions are handed out in commit order. Times come back timezone-aware, in UTC.

The tables are in `tables.py`; the change counter in `jhds_meta` lets the reconciler see
a write within its poll interval.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import create_engine, event, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from .resources import API_VERSION, ONE_SHOT_KINDS, Resource, spec_hash
from .tables import SCHEMA_VERSION, Base, EventRow, MetaRow, ObservedRow, ResourceRow, StatusRow, utcnow

OWNERS = ("gitops", "panel", "cli", "api")
Owner = Literal["gitops", "panel", "cli", "api"]
Action = Literal["created", "configured", "unchanged", "pruned"]


@dataclass(frozen=True)
class StoredResource:
    """A resource as stored: the envelope, its bookkeeping and its last status."""

    kind: str
    name: str
    owner: str
    source: str | None
    labels: dict[str, str]
    spec: dict[str, Any]
    generation: int
    resource_version: int
    created: datetime
    updated: datetime
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                **({"labels": self.labels} if self.labels else {}),
                "generation": self.generation,
                "resourceVersion": str(self.resource_version),
                "creationTimestamp": _iso(self.created),
                "annotations": {"jupyterhub-ds/owner": self.owner}
                | ({"jupyterhub-ds/source": self.source} if self.source else {}),
            },
            "spec": self.spec,
            "status": self.status,
        }
        return doc


@dataclass(frozen=True)
class Event:
    id: int
    time: datetime
    kind: str
    name: str
    type: str
    reason: str
    message: str
    actor: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "kind": self.kind,
            "name": self.name,
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "actor": self.actor,
        }


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    name: str
    action: Action

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "action": self.action}


class ConflictError(ValueError):
    """An apply that the store refuses as a whole (e.g. changing a started one-shot)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _iso(t: datetime) -> str:
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat().replace("+00:00", "Z")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the one writer
    cursor.execute("PRAGMA busy_timeout=30000")  # a writer waits for the other instead of failing
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """Synchronous and short: call it from a worker thread in async code."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.create_schema()

    def close(self) -> None:
        self.engine.dispose()

    def create_schema(self) -> None:
        # The hub and the reconciler may find an empty database at the same time and both
        # create the tables and the counter; the one that loses finds them on its next try.
        attempts = 5
        for attempt in range(1, attempts + 1):
            try:
                self._create_schema()
                return
            except (IntegrityError, OperationalError, ProgrammingError):
                if attempt == attempts:
                    raise
                time.sleep(0.05 * attempt)

    def _create_schema(self) -> None:
        Base.metadata.create_all(self.engine)
        with self.session() as s:
            version = s.get(MetaRow, "schema_version")
            if version is None:
                s.add(MetaRow(key="schema_version", value=SCHEMA_VERSION))
                s.add(MetaRow(key="resource_version", value=0))
            elif version.value > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has store schema {version.value}, newer than this code ({SCHEMA_VERSION})"
                )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._session.begin() as s:
            yield s

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction; it waits for the one before it to end. Its first statement
        locks the change counter's row, so reads after it see every earlier write and no
        other writer changes what this one read before it commits."""
        with self.session() as s:
            counter = MetaRow.key == "resource_version"
            if self.engine.dialect.name == "sqlite":
                # A write as the first statement takes the database's write lock, waiting
                # (busy timeout) for the writer before; a read first could not upgrade later.
                s.execute(update(MetaRow).where(counter).values(value=MetaRow.value))
            else:
                s.execute(select(MetaRow.value).where(counter).with_for_update())
            yield s

    # --- writes ---------------------------------------------------------------------
    def _next_version(self, s: Session) -> int:
        s.execute(update(MetaRow).where(MetaRow.key == "resource_version").values(value=MetaRow.value + 1))
        return s.get(MetaRow, "resource_version", populate_existing=True).value

    def apply(
        self,
        resources: Iterable[Resource],
        owner: Owner,
        *,
        sources: dict[tuple[str, str], str] | None = None,
        dry_run: bool = False,
        prune: bool = False,
        prune_scope: str | None = None,
        actor: str | None = None,
    ) -> list[ApplyResult]:
        """Create or update every resource, atomically. With `prune`, delete resources of
        this owner (and, if given, this `prune_scope` source prefix) that are not listed."""
        if owner not in OWNERS:
            raise ValueError(f"unknown owner {owner!r}")
        resources = list(resources)
        sources = sources or {}
        results: list[ApplyResult] = []
        problems: list[str] = []
        with self.session() if dry_run else self._writing() as s:
            version: int | None = None
            for res in resources:
                key = (res.kind, res.metadata.name)
                row = s.get(ResourceRow, key)
                action = _action(s, row, res, owner, sources.get(key))
                if action is None:
                    ref = f"{res.kind.lower()}/{res.metadata.name}"
                    problems.append(f"{ref}: spec is immutable once started; apply it under a new name")
                    continue
                results.append(ApplyResult(res.kind, res.metadata.name, action))
                if not dry_run and action != "unchanged":
                    version = version or self._next_version(s)
                    _write_row(s, row, res, owner, sources.get(key), version)
            if prune:
                results += _prune_unlisted(s, resources, owner, prune_scope, dry_run)
            if problems:
                raise ConflictError(problems)  # leaving the block rolls everything back
            if not dry_run:
                for r in results:
                    if r.action != "unchanged":
                        message = f"{r.action} by {owner}"
                        s.add(_event_row(r.kind, r.name, "Normal", r.action.capitalize(), message, actor))
        return results

    def prune(
        self, owner: Owner, keep: set[tuple[str, str]], protect_sources: set[str], actor: str | None = None
    ) -> list[ApplyResult]:
        """Delete this owner's resources that are not in `keep`, except those recorded from a
        source in `protect_sources` (e.g. a manifest file that failed to load this time)."""
        results = []
        with self._writing() as s:
            for row in s.scalars(select(ResourceRow).where(ResourceRow.owner == owner)):
                if (row.kind, row.name) in keep or row.source in protect_sources:
                    continue
                results.append(ApplyResult(row.kind, row.name, "pruned"))
                s.delete(row)
                s.add(_event_row(row.kind, row.name, "Normal", "Pruned", f"pruned: no longer in {row.source}", actor))
            if results:
                self._next_version(s)
        return results

    def delete(self, kind: str, name: str, actor: str | None = None) -> bool:
        with self._writing() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is None:
                return False
            s.delete(row)  # its status goes with it (ON DELETE CASCADE)
            self._next_version(s)
            s.add(_event_row(kind, name, "Normal", "Deleted", "deleted", actor))
            return True

    def write_status(self, kind: str, name: str, body: dict[str, Any]) -> bool:
        """Replace the status of a resource; False if the resource is gone."""
        with self._writing() as s:
            if s.get(ResourceRow, (kind, name)) is None:
                return False
            row = s.get(StatusRow, (kind, name))
            if row is None:
                s.add(StatusRow(kind=kind, name=name, body=body, updated=utcnow()))
            else:
                row.body, row.updated = body, utcnow()
            return True

    def add_event(
        self, kind: str, name: str, reason: str, message: str, type: str = "Normal", actor: str | None = None
    ) -> None:
        with self.session() as s:
            s.add(_event_row(kind, name, type, reason, message, actor))

    def write_observed(self, kind: str, name: str, body: dict[str, Any]) -> None:
        """The status of a built-in watch's key (no resource row; not a change to wake on)."""
        with self.session() as s:
            row = s.get(ObservedRow, (kind, name))
            if row is None:
                s.add(ObservedRow(kind=kind, name=name, body=body, updated=utcnow()))
            elif row.body != body:
                row.body, row.updated = body, utcnow()

    def observed(self, kind: str, name: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(ObservedRow, (kind, name))
            return dict(row.body) if row else {}

    # --- reads ----------------------------------------------------------------------
    def get(self, kind: str, name: str) -> StoredResource | None:
        with self.session() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is None:
                return None
            status = s.get(StatusRow, (kind, name))
            return _stored(row, status.body if status else {})

    def list(self, kind: str | None = None) -> list[StoredResource]:
        with self.session() as s:
            query = select(ResourceRow).order_by(ResourceRow.kind, ResourceRow.name)
            if kind:
                query = query.where(ResourceRow.kind == kind)
            status_query = select(StatusRow)
            if kind:
                status_query = status_query.where(StatusRow.kind == kind)
            statuses = {(r.kind, r.name): r.body for r in s.scalars(status_query)}
            return [_stored(row, statuses.get((row.kind, row.name), {})) for row in s.scalars(query)]

    def keys(self) -> set[tuple[str, str]]:
        with self.session() as s:
            return {(k, n) for k, n in s.execute(select(ResourceRow.kind, ResourceRow.name))}

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
        return [Event(r.id, r.time, r.kind, r.name, r.type, r.reason, r.message, r.actor) for r in reversed(rows)]


def _within(source: str | None, scope: str) -> bool:
    """`source` is `scope` itself or lies under it (a file in a folder)."""
    return source is not None and (source == scope or source.startswith(scope.rstrip("/") + "/"))


def _started(s: Session, key: tuple[str, str]) -> bool:
    """A one-shot resource has started once the reconciler has observed it."""
    status = s.get(StatusRow, key)
    return bool(status and status.body.get("observedGeneration") is not None)


def _event_row(kind: str, name: str, type: str, reason: str, message: str, actor: str | None) -> EventRow:
    return EventRow(time=utcnow(), kind=kind, name=name, type=type, reason=reason, message=message, actor=actor)


def _stored(row: ResourceRow, status: dict[str, Any]) -> StoredResource:
    return StoredResource(
        kind=row.kind,
        name=row.name,
        owner=row.owner,
        source=row.source,
        labels=dict(row.labels or {}),
        spec=json.loads(json.dumps(row.spec)),
        generation=row.generation,
        resource_version=row.resource_version,
        created=row.created,
        updated=row.updated,
        status=status,
    )


def _action(s: Session, row: ResourceRow | None, res: Resource, owner: str, source: str | None) -> Action | None:
    """What applying `res` over `row` does; None: refused (a started one-shot's new spec)."""
    if row is None:
        return "created"
    if row.spec_hash != spec_hash(res):
        if res.kind in ONE_SHOT_KINDS and _started(s, (res.kind, res.metadata.name)):
            return None
        return "configured"
    if row.labels != dict(res.metadata.labels) or row.owner != owner or row.source != source:
        return "configured"
    return "unchanged"


def _write_row(
    s: Session, row: ResourceRow | None, res: Resource, owner: str, source: str | None, version: int
) -> None:
    spec, digest, labels = res.spec.model_dump(mode="json", by_alias=True), spec_hash(res), res.metadata.labels
    now = utcnow()
    if row is None:
        row = ResourceRow(kind=res.kind, name=res.metadata.name, generation=1, created=now)
        s.add(row)
    elif row.spec_hash != digest:
        row.generation += 1
    row.spec, row.spec_hash, row.labels = spec, digest, dict(labels)
    row.owner, row.source = owner, source
    row.resource_version, row.updated = version, now


def _prune_unlisted(
    s: Session, resources: list[Resource], owner: str, scope: str | None, dry_run: bool
) -> list[ApplyResult]:
    listed = {(r.kind, r.metadata.name) for r in resources}
    pruned = []
    for row in s.scalars(select(ResourceRow).where(ResourceRow.owner == owner)):
        if (row.kind, row.name) in listed or (scope is not None and not _within(row.source, scope)):
            continue
        pruned.append(ApplyResult(row.kind, row.name, "pruned"))
        if not dry_run:
            s.delete(row)
    return pruned
