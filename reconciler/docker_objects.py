"""The records of what users made through the Docker proxy (`jhds_docker_objects`): one row
per object, by the id the engine gave it. The proxy reads ownership from here, and the
engine-wide survey recognises the proxy's containers by these ids, never by labels.

Synchronous and short, like the store: call it from a worker thread in async code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, select

from .store import Store
from .tables import DockerObjectRow, utcnow

ObjectKind = Literal["container", "volume", "network", "image", "exec"]
KINDS: tuple[ObjectKind, ...] = ("container", "volume", "network", "image", "exec")


@dataclass(frozen=True)
class OwnedObject:
    kind: ObjectKind
    id: str
    name: str
    created: datetime
    body: dict[str, Any] = field(default_factory=dict)  # a container's limits, an exec's container


class DockerObjects:
    def __init__(self, store: Store):
        self.store = store

    def record(self, user: str, objects: Iterable[OwnedObject]) -> None:
        with self.store.session() as s:
            for o in objects:
                row = s.get(DockerObjectRow, (o.kind, o.id))
                if row is None:
                    s.add(DockerObjectRow(kind=o.kind, id=o.id, user=user, name=o.name, created=o.created, body=o.body))
                elif row.user == user:  # an id is never reused by the engine: the same object
                    row.name, row.body = o.name, o.body

    def of_user(self, user: str) -> list[OwnedObject]:
        with self.store.session() as s:
            rows = s.scalars(select(DockerObjectRow).where(DockerObjectRow.user == user))
            return [_owned(r) for r in rows]

    def all(self) -> list[tuple[str, OwnedObject]]:
        """(user, object) of every record: the proxy's ledger, loaded once at its start."""
        with self.store.session() as s:
            return [(r.user, _owned(r)) for r in s.scalars(select(DockerObjectRow))]

    def owners(self, kind: ObjectKind) -> dict[str, str]:
        """{id: user} of every recorded object of one kind (the survey's view)."""
        with self.store.session() as s:
            rows = s.execute(select(DockerObjectRow.id, DockerObjectRow.user).where(DockerObjectRow.kind == kind))
            return {oid: user for oid, user in rows}

    def forget(self, user: str, ids: Iterable[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self.store.session() as s:
            mine = (DockerObjectRow.user == user) & DockerObjectRow.id.in_(ids)
            return s.execute(delete(DockerObjectRow).where(mine)).rowcount


def new(kind: ObjectKind, oid: str, name: str = "", **body: Any) -> OwnedObject:
    return OwnedObject(kind, oid, name, utcnow(), body)


def _owned(row: DockerObjectRow) -> OwnedObject:
    return OwnedObject(row.kind, row.id, row.name, row.created, dict(row.body or {}))  # type: ignore[arg-type]
