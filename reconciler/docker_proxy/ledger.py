"""The proxy's records of who made what, in memory for every request and written through to
the store (`docker_objects`, where the engine-wide survey reads them). The proxy is their
only writer (`DockerProxy.forget` included), so the copy in memory stays the store's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from ..docker_objects import KINDS, DockerObjects, ObjectKind, OwnedObject

FORGET_AFTER = 600.0  # seconds: a record whose object is gone is dropped after this (none is being made)


class Ledger:
    def __init__(self, objects: DockerObjects):
        self.objects = objects
        self.by_kind: dict[str, dict[str, tuple[str, OwnedObject]]] = {k: {} for k in KINDS}

    async def load(self) -> None:
        rows = await asyncio.to_thread(self.objects.all)
        for user, o in rows:
            self.by_kind[o.kind][o.id] = (user, o)

    def owner(self, kind: ObjectKind, oid: str) -> str | None:
        found = self.by_kind[kind].get(oid)
        return found[0] if found else None

    def of_user(self, user: str, kind: ObjectKind | None = None) -> list[OwnedObject]:
        kinds = [kind] if kind else KINDS
        return [o for k in kinds for who, o in self.by_kind[k].values() if who == user]

    async def add(self, user: str, objects: Iterable[OwnedObject]) -> None:
        """Written to the store before the answer goes back (the survey may look at once)."""
        objects = list(objects)
        if not objects:
            return
        await asyncio.to_thread(self.objects.record, user, objects)
        for o in objects:
            self.by_kind[o.kind].setdefault(o.id, (user, o))

    async def drop(self, user: str, ids: Iterable[str]) -> None:
        ids = {i for i in ids if any(self.owner(k, i) == user for k in KINDS)}
        if not ids:
            return
        await asyncio.to_thread(self.objects.forget, user, ids)
        for mine in self.by_kind.values():
            for oid in ids:
                if oid in mine and mine[oid][0] == user:
                    del mine[oid]

    def stale(self, user: str, kind: ObjectKind, present: set[str]) -> list[str]:
        """The user's records of this kind whose object the engine no longer has, old enough."""
        now = time.time()
        return [
            o.id for o in self.of_user(user, kind) if o.id not in present and now - o.created.timestamp() > FORGET_AFTER
        ]
