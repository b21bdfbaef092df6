"""The removal steps shared by Roster and UserRemoval (`reconciler/user_removal.py`) against
fakes of the hub and the engine: the order, one event per step, progress recorded before
each side effect, a resume from a recorded step, a backup waited for and verified, a
failed backup keeping the volumes, and no volume removed while a container runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler import user_removal
from reconciler.accounts import REMOVED, REMOVING, Accounts
from reconciler.errors import TemporaryError
from reconciler.store import Store
from vocabulary import naming


class FakeHub:
    def __init__(self, users: dict[str, list[str]]) -> None:
        self.servers = users  # user -> running servers
        self.log: list[str] = []

    async def get_user(self, name: str) -> dict[str, Any] | None:
        if name not in self.servers:
            return None
        return {"name": name, "servers": {s: {"ready": True} for s in self.servers[name]}}

    async def stop_server(self, user: str, server: str = "") -> None:
        self.log.append(f"stop {user}")
        self.servers[user] = [s for s in self.servers[user] if s != server]

    async def delete_user(self, name: str) -> bool:
        self.log.append(f"delete {name}")
        return self.servers.pop(name, None) is not None


class FakeEngine:
    def __init__(self, volumes: set[str], running: bool = False) -> None:
        self.volumes, self.running, self.removed = volumes, running, []

    async def existing_volumes(self, names: list[str]) -> dict[str, dict]:
        return {n: {} for n in names if n in self.volumes}

    async def user_containers(self, platform: str, user: str) -> list[dict[str, Any]]:
        return [{"State": "running"}] if self.running else []

    async def remove_volume(self, name: str) -> None:
        self.removed.append(name)
        self.volumes.discard(name)


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    yield s
    s.close()


def context(store: Store, hub: FakeHub, engine: FakeEngine) -> Any:
    settings = SimpleNamespace(
        volume_name_template="p-{username}_{volume}",
        user_volumes={"home": "/home/lab", "cache": "/cache"},
        spawn_timeout=5,
        platform_id="p",
    )
    ctx = SimpleNamespace(store=store, hub=hub, engine=engine, settings=settings, events=[], applied=[])

    async def event(kind: str, name: str, reason: str, message: str, **kwargs: Any) -> None:
        ctx.events.append(reason)

    async def apply(resource: Any, actor: str) -> str:
        ctx.applied.append(resource)
        return "created"

    ctx.event, ctx.apply = event, apply
    return ctx


def volumes_of(user: str) -> set[str]:
    return set(naming.user_volume_names("p-{username}_{volume}", user, ["home", "cache"]).values())


def run(ctx: Any, removal: str, step: str | None = None, backup: str | None = None) -> tuple[list, list[str]]:
    recorded: list[tuple[str, str | None]] = []

    async def record(s: str, b: str | None) -> None:
        recorded.append((s, b))

    did: list[str] = []
    r = user_removal.Removal("Roster", "course", "ann", removal)
    asyncio.run(user_removal.advance(ctx, Accounts(ctx.store), r, step, backup, record, did))
    return recorded, did


def test_keep_signs_out_stops_and_names_the_volumes_kept(store: Store) -> None:
    hub, engine = FakeHub({"ann": [""]}), FakeEngine(volumes_of("ann"))
    ctx = context(store, hub, engine)
    recorded, did = run(ctx, "keep")
    assert [s for s, _ in recorded] == ["refusing", "stopping", "deleting", "removingVolumes", "done"]
    assert hub.log == ["stop ann", "delete ann"] and engine.removed == []
    assert ctx.events == ["LoginRefused", "ServerStopped", "SignedOut", "VolumesKept"]
    assert "volumes kept: p-ann_cache, p-ann_home" in did[-1]
    assert Accounts(store).state("ann") == REMOVED


def test_backup_is_waited_for_verified_then_the_volumes_removed(store: Store) -> None:
    hub, engine = FakeHub({"ann": []}), FakeEngine(volumes_of("ann"))
    ctx = context(store, hub, engine)
    with pytest.raises(user_removal.BackingUp):
        run(ctx, "backup")
    [backup] = ctx.applied
    assert backup.kind == "VolumeBackup" and backup.spec.user == "ann" and backup.spec.volumes == ["cache", "home"]
    assert Accounts(store).state("ann") == REMOVING and hub.log == []  # refused, not yet deleted
    store.apply([backup], "api")
    archives = [
        {"user": "ann", "volume": v, "path": f"x/{v}", "bytes": 1, "sha256": "ab" * 32} for v in ("cache", "home")
    ]
    store.write_status("VolumeBackup", backup.metadata.name, {"phase": "Succeeded", "archives": archives})
    recorded, did = run(ctx, "backup", "backingUp", backup.metadata.name)
    assert [s for s, _ in recorded] == ["backingUp", "deleting", "removingVolumes", "done"]
    assert sorted(engine.removed) == sorted(volumes_of("ann")) and "backed up in" in did[0]


def test_a_failed_backup_keeps_the_volumes(store: Store) -> None:
    hub, engine = FakeHub({"ann": []}), FakeEngine(volumes_of("ann"))
    ctx = context(store, hub, engine)
    with pytest.raises(user_removal.BackingUp):
        run(ctx, "backup")
    [backup] = ctx.applied
    store.apply([backup], "api")
    store.write_status("VolumeBackup", backup.metadata.name, {"phase": "Failed", "archives": []})
    recorded, did = run(ctx, "backup", "backingUp", backup.metadata.name)
    assert ("deleting", None) in recorded and engine.removed == []  # no verified backup: nothing removed
    assert "BackupFailed" in ctx.events and did[-1].startswith("volumes kept")


def test_no_volume_is_removed_while_a_container_runs(store: Store) -> None:
    hub, engine = FakeHub({"ann": []}), FakeEngine(volumes_of("ann"), running=True)
    ctx = context(store, hub, engine)
    with pytest.raises(TemporaryError, match="a container of ann runs"):
        run(ctx, "delete")
    assert engine.removed == [] and Accounts(store).state("ann") == REMOVING
    engine.running = False
    recorded, _ = run(ctx, "delete", "removingVolumes")  # resumed from the recorded step
    assert [s for s, _ in recorded] == ["removingVolumes", "done"] and sorted(engine.removed) == sorted(
        volumes_of("ann")
    )
