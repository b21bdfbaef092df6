"""What a controller gets besides its resource: clients, settings, a cached view of the hub.

Built complete before the loop: the work queue it wakes keys in (and the calendar feeding
the same queue) and the desired-state sources' "sync now" are given to it, never attached
after. Reads of the hub say at the call whether a resync pass's snapshot will do
(`cached=`), and a controller asks `woken_by_resync(key)` to know whether it may.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vocabulary.settings import Settings

from .api import Resource
from .api.common import Status
from .clients.docker import Engine
from .clients.hub import HubClient
from .deliveries import Deliveries
from .lanes import LaneQueues
from .proxy_port import DockerProxyPort
from .schedules import Schedules
from .store import Store
from .usage.ledger import UsageLedger

log = logging.getLogger("reconciler")
Key = tuple[str, str]


@dataclass
class HubSnapshot:
    """Groups and usernames listed once per resync pass, so a pass over many resources
    costs the hub a constant number of requests (diffs happen in memory)."""

    groups: dict[str, dict[str, Any]]
    taken: float
    usernames: set[str] | None = None  # listed on first need: a pass with nothing to add skips it


async def no_source() -> None:
    """No desired-state source to re-read (no manifests folder)."""


@dataclass
class Context:
    store: Store
    hub: HubClient
    settings: Settings
    engine: Engine = field(default_factory=Engine)
    # The Docker proxy of `limited` access (service.py starts it); None: not running here.
    docker_proxy: DockerProxyPort | None = None
    snapshot_ttl: float = 10.0
    _snapshot: HubSnapshot | None = field(default=None, repr=False)
    _deliveries: Deliveries | None = field(default=None, repr=False)
    _usage: UsageLedger | None = field(default=None, repr=False)
    # The work queue (one per lane) the loop drains: made first, so a controller can wake a
    # key now (e.g. a membership change wakes that user's privileged-access check).
    queue: LaneQueues = field(default_factory=LaneQueues, repr=False)
    # Re-read the desired-state sources now (GitOps), for "reconcile --with-source".
    sync_source: Callable[[], Awaitable[Any]] = field(default=no_source, repr=False)
    # Keys a resync pass woke and no change since (the loop keeps the set): their reconcile
    # may read the pass's snapshot. One woken by a change reads live: no recent edit is missed.
    from_resync: set[Key] = field(default_factory=set, repr=False)
    # Calendar time (APScheduler), firing into the same queue; started by the loop.
    schedules: Schedules = field(init=False, repr=False)
    _snapshot_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _active: tuple[float, list[dict[str, Any]]] | None = field(default=None, repr=False)
    _active_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        self.schedules = Schedules(self.enqueue)

    def enqueue(self, key: Key) -> None:
        """Reconcile `key` soon (its lane's next free worker)."""
        self.queue.add(key)

    def woken_by_resync(self, key: Key) -> bool:
        """This key's reconcile was woken by a resync pass (not by a change): reads with
        `cached=True` may use the pass's snapshot."""
        return key in self.from_resync

    @property
    def deliveries(self) -> Deliveries:
        if self._deliveries is None:
            self._deliveries = Deliveries(self.store)
        return self._deliveries

    @property
    def usage(self) -> UsageLedger:
        if self._usage is None:
            self._usage = UsageLedger(self.store)
        return self._usage

    # --- the hub, through a short-lived snapshot ---
    async def refresh_snapshot(self) -> HubSnapshot:
        async with self._snapshot_lock:
            self._snapshot = HubSnapshot(await self.hub.list_groups(), time.monotonic())
            return self._snapshot

    def fresh_snapshot(self) -> HubSnapshot | None:
        s = self._snapshot
        if s is None or time.monotonic() - s.taken >= self.snapshot_ttl:
            return None
        return s

    async def group(self, name: str, *, cached: bool) -> dict[str, Any] | None:
        """A hub group: from a fresh snapshot when `cached`, else live."""
        snap = self.fresh_snapshot() if cached else None
        if snap is not None:
            return snap.groups.get(name)
        return await self.hub.get_group(name)

    def remember_group(self, name: str, users: list[str]) -> None:
        """Keep the snapshot true after we changed a group ourselves."""
        if self._snapshot is not None:
            self._snapshot.groups[name] = {"name": name, "users": sorted(users)}

    async def active_users(self, max_age: float = 2.0) -> list[dict[str, Any]]:
        """The hub's users that have an active server, with their servers' activity and their
        groups: one listing, shared by every policy reconciled within `max_age` seconds."""
        async with self._active_lock:
            if self._active is None or time.monotonic() - self._active[0] >= max_age:
                self._active = (time.monotonic(), await self.hub.paginated("users?state=active"))
            return self._active[1]

    async def existing_users(self, names: set[str], *, cached: bool) -> set[str]:
        """Which of `names` are hub users: when `cached`, from a fresh snapshot, asking only
        about the rest; else each is asked live."""
        snap = self.fresh_snapshot() if cached else None
        if snap is not None and snap.usernames is None:
            async with self._snapshot_lock:
                if snap.usernames is None:
                    snap.usernames = await self.hub.list_usernames()
        known = names & snap.usernames if snap and snap.usernames is not None else set()
        for name in sorted(names - known):
            if await self.hub.user_exists(name):
                known.add(name)
        return known

    async def progress(self, kind: str, name: str, status: Status) -> None:
        """Record how far a long reconcile got, so a restart resumes from there."""
        await asyncio.to_thread(self.store.write_status, kind, name, status.dump())

    async def observed(self, kind: str, name: str) -> dict[str, Any]:
        """The last status of a built-in watch's key."""
        return await asyncio.to_thread(self.store.observed, kind, name)

    async def record_observed(self, kind: str, name: str, status: Status) -> None:
        await asyncio.to_thread(self.store.write_observed, kind, name, status.dump())

    async def apply(self, resource: Resource, actor: str) -> str:
        """Record a resource a controller asks for (owner `api`); what the store did with it."""
        (result,) = await asyncio.to_thread(self.store.apply, [resource], "api", actor=actor)
        return result.action

    # --- the audit trail: one log line and one event row per action ---
    async def event(
        self, kind: str, name: str, reason: str, message: str, type: str = "Normal", actor: str | None = None
    ) -> None:
        (log.warning if type == "Warning" else log.info)("%s/%s %s: %s", kind.lower(), name, reason, message)
        await asyncio.to_thread(self.store.add_event, kind, name, reason, message, type, actor)
