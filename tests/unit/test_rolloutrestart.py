"""RolloutRestart against a fake hub: one batch at a time, the in-use server last, resumed
after a crash without restarting a server twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from reconciler.api.rolloutrestart import RolloutRestartStatus
from reconciler.controllers import rolloutrestart
from reconciler.store import StoredResource

NOW = datetime.now(UTC)


class FakeHub:
    """Servers that stop and start at once; every action logged, most down at once kept."""

    def __init__(self, users: dict[str, datetime]):
        self.activity = users
        self.running = set(users)
        self.log: list[str] = []
        self.most_down = 0

    def _down(self) -> None:
        self.most_down = max(self.most_down, len(set(self.activity) - self.running))

    async def get_user(self, name: str) -> dict[str, Any]:
        return {"name": name, "servers": {"": {"ready": True}} if name in self.running else {}}

    async def stop_server(self, user: str, server: str = "") -> None:
        self.log.append(f"stop {user}")
        self.running.discard(user)
        self._down()
        await asyncio.sleep(0.01)  # a stop takes time: others in the batch go on meanwhile

    async def start_server(self, user: str, server: str = "") -> None:
        self.log.append(f"start {user}")
        self.running.add(user)

    def active(self) -> list[dict[str, Any]]:
        return [
            {"name": u, "groups": [], "servers": {"": {"url": f"/user/{u}/", "last_activity": t.isoformat()}}}
            for u, t in sorted(self.activity.items())
            if u in self.running
        ]


def context(hub: FakeHub, drifted: list[str]) -> Any:
    written: list[dict] = []

    async def active_users(max_age: float = 2.0) -> list[dict[str, Any]]:
        return hub.active()

    async def observed(kind: str, name: str) -> dict[str, Any]:
        return {"servers": [{"user": u, "server": "", "drifted": True} for u in drifted]}

    async def progress(kind: str, name: str, status: Any) -> None:
        written.append(status.dump())

    async def event(*args: Any, **kwargs: Any) -> None:
        return None

    settings = SimpleNamespace(spawn_timeout=5)
    return SimpleNamespace(
        hub=hub, active_users=active_users, observed=observed, progress=progress, event=event,
        settings=settings, written=written,
    )  # fmt: skip


def resource(spec: dict, status: dict | None = None) -> StoredResource:
    return StoredResource(
        kind="RolloutRestart", name="r", owner="cli", source=None, labels={}, spec=spec, generation=1,
        resource_version=1, created=NOW, updated=NOW, status=status or {},
    )  # fmt: skip


SPEC = {"selector": {"drifted": True}, "maxUnavailable": 1, "warnBefore": 0, "skipActiveWithin": "10m"}


def test_one_at_a_time_and_the_active_one_last() -> None:
    hub = FakeHub({"ann": NOW, "cat": NOW - timedelta(hours=1), "dan": NOW - timedelta(hours=1)})
    ctx = context(hub, ["ann", "cat", "dan"])
    spec = {**SPEC, "whenActive": "Wait"}
    result = asyncio.run(rolloutrestart.reconcile(resource(spec), ctx))
    status = RolloutRestartStatus.load(result.status.dump())
    assert hub.log == ["stop cat", "start cat", "stop dan", "start dan"]
    assert status.phase == "Running" and result.requeue_after == rolloutrestart.WAIT_ACTIVE  # waits for ann
    hub.activity["ann"] = NOW - timedelta(hours=1)  # ann stops working
    result = asyncio.run(rolloutrestart.reconcile(resource(spec, result.status.dump()), ctx))
    assert hub.log[-2:] == ["stop ann", "start ann"]
    assert result.status.phase == "Succeeded" and result.status.restarted == 3
    assert hub.most_down == 1


def test_skip_leaves_the_active_one_alone() -> None:
    hub = FakeHub({"ann": NOW, "cat": NOW - timedelta(hours=1)})
    result = asyncio.run(rolloutrestart.reconcile(resource(SPEC), context(hub, ["ann", "cat"])))
    assert hub.log == ["stop cat", "start cat"]
    assert {s.user: s.state for s in result.status.servers} == {"ann": "Skipped", "cat": "Restarted"}


def test_max_unavailable_two() -> None:
    hub = FakeHub({u: NOW - timedelta(hours=1) for u in ("a", "b", "c")})
    result = asyncio.run(
        rolloutrestart.reconcile(resource({**SPEC, "maxUnavailable": 2}), context(hub, ["a", "b", "c"]))
    )
    assert hub.most_down == 2 and result.status.restarted == 3


def test_resumed_after_a_crash_between_stop_and_start() -> None:
    """The status says cat was stopped (step stopping) and the process died: the resumed pass
    starts cat (not stopping it again) and carries on with dan."""
    hub = FakeHub({"cat": NOW - timedelta(hours=1), "dan": NOW - timedelta(hours=1)})
    hub.running.discard("cat")
    ctx = context(hub, ["cat", "dan"])
    crashed = {
        "phase": "Running",
        "startedAt": NOW.isoformat(),
        "servers": [{"user": "cat", "state": "Restarting", "step": "stopping"}, {"user": "dan", "state": "Pending"}],
    }
    result = asyncio.run(rolloutrestart.reconcile(resource(SPEC, crashed), ctx))
    assert hub.log == ["start cat", "stop dan", "start dan"]
    assert result.status.phase == "Succeeded" and result.status.restarted == 2


def test_notice_wait_is_a_requeue_not_a_sleep() -> None:
    now = datetime.now(UTC)  # not the module's NOW: the wait left is measured from the clock
    hub = FakeHub({"cat": now - timedelta(hours=1)})
    warned = {
        "phase": "Running",
        "startedAt": now.isoformat(),
        "warnedAt": now.isoformat(),
        "servers": [{"user": "cat"}],
    }
    result = asyncio.run(
        rolloutrestart.reconcile(resource({**SPEC, "warnBefore": "2m"}, warned), context(hub, ["cat"]))
    )
    assert hub.log == [] and 100 < (result.requeue_after or 0) <= 120
