"""Desired state, status and events: tables in the hub database.

Every write here follows one transaction discipline (below), easier to check when all the
writes are in one class; the reads (no locks) are in `store_reads.py`, what both hand out
(`StoredResource`, `Event`) in `stored.py`.

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
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from vocabulary.api import API_VERSION

from . import applying
from .api import REGISTRY, Resource, one_shot_kinds, parse_resource
from .api.common import TERMINAL_PHASES
from .applying import GITOPS_OVERRIDE, ApplyResult, Authorize, ConflictError, ForbiddenError, event_row
from .store_reads import StoreReads
from .stored import StoredResource, iso
from .tables import (
    SCHEMA_VERSION,
    Base,
    EventRow,
    MetaRow,
    ObservedRow,
    ResourceRow,
    StatusRow,
    backfill,
    migrate,
    utcnow,
)

OWNERS = ("gitops", "panel", "cli", "api", "settings")
Owner = Literal["gitops", "panel", "cli", "api", "settings"]


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


class Store(StoreReads):
    """Synchronous and short: call it from a worker thread in async code."""

    def __init__(self, url: str, events_per_subject: int = 1000):
        self.engine = make_engine(url)
        self.events_per_subject = events_per_subject  # the newest kept per user, at every write
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
                    f"the database has store schema {version.value}, newer than this code knows "
                    f"({SCHEMA_VERSION}): a newer version of the platform used it last. Run that version "
                    "(or a newer one), or restore the backup taken before the upgrade"
                )
            elif version.value < SCHEMA_VERSION:
                migrate(s.connection(), version.value)
                backfill(s, one_shot_kinds(), TERMINAL_PHASES)
                version.value = SCHEMA_VERSION

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
        authorize: Authorize | None = None,
    ) -> list[ApplyResult]:
        """Create or update every resource, atomically. With `prune`, delete resources of
        this owner (and, if given, this `prune_scope` source prefix) that are not listed.
        `authorize` judges every stored resource this would replace or prune (ForbiddenError)."""
        if owner not in OWNERS:
            raise ValueError(f"unknown owner {owner!r}")
        resources = list(resources)
        sources = sources or {}
        results: list[ApplyResult] = []
        problems: list[str] = []
        forbidden: list[str] = []
        with self.session() if dry_run else self._writing() as s:
            version: int | None = None
            for res in resources:
                key = (res.kind, res.metadata.name)
                row = s.get(ResourceRow, key)
                if problem := applying.refusal(authorize, row, "replace"):
                    forbidden.append(problem)
                    continue
                action, problem = applying.action(s, row, res, owner, sources.get(key), resources)
                if problem:
                    problems.append(problem)
                    continue
                results.append(ApplyResult(res.kind, res.metadata.name, action))
                if not dry_run and action != "unchanged":
                    version = version or self._next_version(s)
                    applying.drift_event(s, row, res, owner, sources.get(key))
                    applying.write_row(s, row, res, owner, sources.get(key), version)
            if prune:
                pruned, refused = applying.prune_unlisted(s, resources, owner, prune_scope, dry_run, authorize)
                results += pruned
                forbidden += refused
            if forbidden:
                raise ForbiddenError(forbidden)  # leaving the block rolls everything back
            if problems:
                raise ConflictError(problems)  # leaving the block rolls everything back
            if not dry_run:
                users = {(r.kind, r.metadata.name): getattr(r.spec, "user", None) for r in resources}
                rows = [
                    event_row(r.kind, r.name, "Normal", r.action.capitalize(), f"{r.action} by {owner}", actor, who)
                    for r in results
                    if r.action != "unchanged"
                    for who in [users.get((r.kind, r.name))]
                ]
                self._add_events(s, rows)
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
                message = f"pruned: no longer in {row.source}"
                self._add_events(s, [event_row(row.kind, row.name, "Normal", "Pruned", message, actor, row.subject)])
            if results:
                self._next_version(s)
        return results

    def seed(self, kind: str, name: str, spec: dict[str, Any] | None) -> str:
        """A built-in resource the platform declares (owner `settings`, label
        `jupyterhub-ds/source: settings`), applied at each start of the reconciler: an edit
        made elsewhere is put back then. `spec=None` deletes it, if the settings made it.
        What was done: created, configured, unchanged, deleted or none."""
        if spec is None:
            existing = self.get(kind, name)
            if existing is not None and existing.owner == "settings":
                self.delete(kind, name, actor="settings")
                return "deleted"
            return "none"
        labels = {"jupyterhub-ds/source": "settings"}
        doc = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "labels": labels}, "spec": spec}
        (result,) = self.apply([parse_resource(doc)], "settings", actor="settings")
        return result.action

    def delete(self, kind: str, name: str, actor: str | None = None, with_events: bool = False) -> bool:
        """Delete a resource (its status and delivery records go with it); with `with_events`
        its events too (a finished one-shot's TTL), else a `Deleted` event is added."""
        with self._writing() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is None:
                return False
            s.delete(row)  # its status goes with it (ON DELETE CASCADE)
            self._next_version(s)
            if with_events:
                s.execute(sql_delete(EventRow).where(EventRow.kind == kind, EventRow.name == name))
            else:
                self._add_events(s, [event_row(kind, name, "Normal", "Deleted", "deleted", actor, row.subject)])
            return True

    def _add_events(self, s: Session, rows: list[EventRow]) -> None:
        """Add events; each user among their subjects keeps only their newest
        `events_per_subject` (at once, so a storm never counts against anyone else)."""
        s.add_all(rows)
        for subject in sorted({r.subject for r in rows if r.subject is not None}):
            self._trim_subject(s, subject)

    def _trim_subject(self, s: Session, subject: str) -> int:
        mine = EventRow.subject == subject
        first_over = s.scalars(
            select(EventRow.id).where(mine).order_by(EventRow.id.desc()).offset(self.events_per_subject).limit(1)
        ).first()
        if first_over is None:
            return 0
        return s.execute(sql_delete(EventRow).where(mine, EventRow.id <= first_over)).rowcount

    def trim_events(self, max_age_days: float, max_rows: int) -> int:
        """Delete events older than `max_age_days`, each user's beyond their newest
        `events_per_subject`, then the oldest beyond `max_rows`."""
        cutoff = utcnow() - timedelta(days=max_age_days)
        with self.session() as s:
            removed = s.execute(sql_delete(EventRow).where(EventRow.time < cutoff)).rowcount
            over = (
                select(EventRow.subject)
                .where(EventRow.subject.is_not(None))
                .group_by(EventRow.subject)
                .having(func.count() > self.events_per_subject)
            )
            for subject in list(s.scalars(over)):
                removed += self._trim_subject(s, subject)
            newest_kept = s.scalars(select(EventRow.id).order_by(EventRow.id.desc()).offset(max_rows).limit(1)).first()
            if newest_kept is not None:
                removed += s.execute(sql_delete(EventRow).where(EventRow.id <= newest_kept)).rowcount
        return removed

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
            row = s.get(ResourceRow, (kind, name))
            self._add_events(s, [event_row(kind, name, type, reason, message, actor, row.subject if row else None)])

    def write_observed(self, kind: str, name: str, body: dict[str, Any]) -> None:
        """The status of a built-in watch's key (no resource row; not a change to wake on)."""
        with self.session() as s:
            row = s.get(ObservedRow, (kind, name))
            if row is None:
                s.add(ObservedRow(kind=kind, name=name, body=body, updated=utcnow()))
            elif row.body != body:
                row.body, row.updated = body, utcnow()

    def forget_observed(self, kind: str, names: Iterable[str]) -> int:
        """Delete these rows of one kind (e.g. the records of objects that are gone)."""
        names = list(names)
        if not names:
            return 0
        with self.session() as s:
            query = sql_delete(ObservedRow).where(ObservedRow.kind == kind, ObservedRow.name.in_(names))
            return s.execute(query).rowcount

    def set_suspend(self, kind: str, name: str, suspend: bool, actor: str | None = None) -> StoredResource | None:
        """Set `spec.suspend` (kinds that have it); None if there is no such resource."""
        model = REGISTRY[kind].model
        if "suspend" not in model.model_fields["spec"].annotation.model_fields:
            raise ValueError(f"{kind} has no spec.suspend")
        row = self.get(kind, name)
        if row is None:
            return None
        if bool(row.spec.get("suspend")) != suspend:
            # A GitOps-owned resource keeps a suspension made here: it carries the override
            # label while suspended (else the next sync would put the file's spec back).
            labels, owner = dict(row.labels), row.owner
            if owner == "gitops" or GITOPS_OVERRIDE in labels:
                owner = "api"
                if suspend:
                    labels[GITOPS_OVERRIDE] = "true"
                else:
                    labels.pop(GITOPS_OVERRIDE, None)
            doc = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "labels": labels}}
            resource = parse_resource({**doc, "spec": {**row.spec, "suspend": suspend}})
            self.apply([resource], owner, sources={(kind, name): row.source} if row.source else None, actor=actor)
        return self.get(kind, name)

    def request_reconcile(
        self, kind: str, name: str, with_source: bool = False, actor: str | None = None
    ) -> str | None:
        """Ask for a reconcile now; the request's time (the status says when it handled it), or
        None if there is no such resource."""
        at = iso(utcnow())
        with self._writing() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is None:
                return None
            row.reconcile_request = json.dumps({"at": at, "withSource": with_source})
            row.resource_version = self._next_version(s)
            where = " (after re-reading the manifests folder)" if with_source else ""
            message = f"reconcile now{where}"
            self._add_events(s, [event_row(kind, name, "Normal", "ReconcileRequested", message, actor, row.subject)])
        return at

    def mark_finished(self, kind: str, name: str, finished: datetime, expires: datetime | None) -> None:
        """A one-shot reached a terminal phase: lookups and resyncs skip it from now on."""
        with self._writing() as s:
            row = s.get(ResourceRow, (kind, name))
            if row is not None:
                row.finished, row.expires = finished, expires
