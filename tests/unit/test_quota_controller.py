"""The Quota watch against a fake hub, engine, ledger and lab delivery: notices once per
threshold (recorded before sending, only where a lab can show them), grants counted,
`enforce: stop` warns then stops, storage past `warnAt` told with the sizes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler.api.quota import GRANTS_KIND, QuotaStatus
from reconciler.controllers import quota as controller
from reconciler.quotas import Use

MIB = 1024**2


class World:
    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy
        self.server: dict[str, Any] | None = {"ready": True, "url": "/user/ann/"}
        self.used_hours = 0.0
        self.home_bytes = 0
        self.observed: dict[tuple[str, str], dict] = {}
        self.events: list[tuple[str, str]] = []
        self.told: list[str] = []
        self.stopped: list[list[str]] = []

    async def get_user(self, name: str) -> dict[str, Any]:
        return {"name": name, "groups": ["team"], "servers": {"": self.server} if self.server else {}}

    async def list_groups(self) -> dict[str, Any]:
        return {"team": {"users": ["ann"]}}

    async def server_tokens(self, platform: str) -> dict:
        return {("ann", ""): "token"}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World({"quota": {"serverHours": 10, "window": "1d"}})

    def usage(store: Any, user: str, quota: Any, now: datetime) -> dict:
        return {"server": Use(w.used_hours * 3600, [(now - timedelta(hours=5), w.used_hours * 3600)])}

    def storage(store: Any, user: str) -> list[dict]:
        return [{"user": user, "volume": "jupyterlab-ann_home", "kind": "home", "bytes": w.home_bytes}]

    async def deliver_all(targets: list, body: dict, **kw: Any) -> list:
        w.told.append(body["message"])
        return [SimpleNamespace(target=t, outcome="delivered") for t in targets]

    async def stop_all(hub: Any, user: str, servers: list[str], timeout: float) -> None:
        w.stopped.append(servers)
        w.server = None

    monkeypatch.setattr(controller.quota_usage, "user_usage", usage)
    monkeypatch.setattr(controller.quota_usage, "user_storage", storage)
    monkeypatch.setattr(controller.lab, "deliver_all", deliver_all)
    monkeypatch.setattr(controller.restarts, "stop_all", stop_all)
    return w


def context(w: World, **settings: Any) -> Any:
    async def read(kind: str, name: str) -> dict:
        return w.observed.get((kind, name), {})

    async def record(kind: str, name: str, status: QuotaStatus) -> None:
        w.observed[(kind, name)] = status.dump()

    async def event(kind: str, name: str, reason: str, message: str, *a: Any, **kw: Any) -> None:
        w.events.append((reason, message))

    stored = SimpleNamespace(name="team", spec={"groups": ["team"], **w.policy})
    store = SimpleNamespace(list=lambda kind: [stored] if kind == "GroupPolicy" else [], observed_all=lambda k: {})
    config = SimpleNamespace(
        platform_id="p", proxy_url="http://127.0.0.1:1", quota_check_seconds=60, quota_stop_grace_seconds=300,
        spawn_timeout=60,
    )  # fmt: skip
    for key, value in settings.items():
        setattr(config, key, value)
    return SimpleNamespace(
        hub=w, engine=w, store=store, settings=config, observed=read, record_observed=record, event=event
    )


def run(w: World, ctx: Any) -> QuotaStatus:
    result = asyncio.run(controller.reconcile("ann", ctx))
    assert isinstance(result.status, QuotaStatus)
    w.observed[(controller.KIND, "ann")] = result.status.dump()
    ctx.requeue = result.requeue_after
    return result.status


def test_notices_once_per_threshold_and_only_where_a_lab_shows_them(world: World) -> None:
    ctx = context(world)
    world.used_hours = 5
    status = run(world, ctx)
    assert (world.told, status.refused, ctx.requeue) == ([], False, 60)
    world.used_hours, world.server = 8.5, None
    status = run(world, ctx)
    assert world.told == [] and status.notified == {}  # no lab: kept for when there is one
    world.server = {"ready": True, "url": "/user/ann/"}
    status = run(world, ctx)
    assert len(world.told) == 1 and "85 % of your server-hours quota" in world.told[0]
    assert set(status.notified["server"]) == {"80"}
    run(world, ctx)
    assert len(world.told) == 1  # told once
    world.used_hours = 9.6
    status = run(world, ctx)
    assert len(world.told) == 2 and "96 %" in world.told[1] and set(status.notified["server"]) == {"80", "95"}
    assert [r for r, _ in world.events] == ["Notified", "Notified"]


def test_a_grant_lifts_the_limit(world: World) -> None:
    ctx = context(world)
    world.used_hours = 10.5
    assert run(world, ctx).refused
    world.observed[(GRANTS_KIND, "ann")] = {
        "grants": [{"at": datetime.now(UTC).isoformat(), "kind": "server", "hours": 5}]
    }
    status = run(world, ctx)
    assert not status.refused and status.limits[0]["limitHours"] == 15


def test_enforce_stop_warns_then_stops_after_the_grace(world: World) -> None:
    world.policy = {"quota": {"serverHours": 10, "window": "1d", "enforce": "stop"}}
    ctx = context(world, quota_stop_grace_seconds=0.5)
    world.used_hours = 10
    status = run(world, ctx)
    assert status.refused and status.stop_due is not None and world.stopped == []
    assert "being stopped" in world.told[-1] and ctx.requeue == 1.0
    status.stop_due = datetime.now(UTC) - timedelta(seconds=1)  # the grace passed
    world.observed[(controller.KIND, "ann")] = status.dump()
    status = run(world, ctx)
    assert world.stopped == [[""]] and status.stop_due is None
    assert [r for r, _ in world.events][-2:] == ["Stopping", "Stopped"]
    run(world, ctx)  # stopped: nothing more to do
    assert world.stopped == [[""]]


def test_spawn_enforcement_never_stops(world: World) -> None:
    ctx = context(world, quota_stop_grace_seconds=0)
    world.used_hours = 12
    status = run(world, ctx)
    assert status.refused and status.stop_due is None and world.stopped == []
    assert "may continue" in world.told[-1]


def test_storage_past_warn_at_is_told_with_the_sizes(world: World) -> None:
    world.policy = {"storage": {"home": {"softLimit": "10M"}}}
    ctx = context(world)
    world.home_bytes = 5 * MIB
    status = run(world, ctx)
    assert world.told == [] and status.storage[0]["percent"] == 50 and status.quota is None
    # The limits it looked with, for the hub to tell whether the look still holds.
    assert status.storage_limits["home"]["softLimit"] == 10 * MIB
    world.home_bytes = 12 * MIB
    status = run(world, ctx)
    assert len(world.told) == 1 and "12.0 MiB, over 120 % of its soft limit of 10.0 MiB" in world.told[0]
    assert status.storage_notified == {"home": [80, 95]} and status.storage[0]["over"]
    run(world, ctx)
    assert len(world.told) == 1
