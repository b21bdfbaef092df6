"""Lanes: every kind has a lane, deadlines per kind, a slow lane never holds the fast one,
a reconcile past its deadline is cancelled, a worker that does not give way is stuck."""

from __future__ import annotations

import asyncio

import pytest

from reconciler import lanes
from reconciler.api import REGISTRY
from reconciler.api.common import Status
from reconciler.api.groupmembership import GroupMembershipStatus
from reconciler.clients.hub import HubClient
from reconciler.context import Context
from reconciler.controllers import CONTROLLERS, WATCHES
from reconciler.lanes import Busy, LanePlan, LaneQueues, ReconcileTimeout, Workers, within
from reconciler.loop import Reconciler
from reconciler.manifests import parse_manifests
from reconciler.result import Result
from reconciler.store import Store
from vocabulary.settings import load_settings


def test_every_kind_is_placed_in_a_lane() -> None:
    """A kind's lane is in its api module; the watches (no api module) go fast."""
    assert set(CONTROLLERS) <= set(REGISTRY) and not {w.kind for w in WATCHES} & set(REGISTRY)
    slow = {kind for kind in REGISTRY if lanes.lane_of(kind) == "slow"}
    assert slow == {
        "VolumeBackup",
        "VolumeRestore",
        "BackupSchedule",
        "RolloutRestart",
        "ServerStop",
        "UserRename",
        "Roster",
        "UserRemoval",
    }
    assert all(lanes.lane_of(w.kind) == "fast" for w in WATCHES)


def test_deadlines_leave_room_for_a_restart_and_a_broadcast() -> None:
    p = lanes.plan(4, 2, 30, 3600, spawn_timeout=120, broadcast_deadline=60)
    assert p.workers == {"fast": 4, "slow": 2}
    assert p.deadline("PrivilegedAccess") == 300  # stop + spawn, inside the revocation's key
    assert p.deadline("Broadcast") == 120
    assert p.deadline("GroupMembership") == 30
    assert p.deadline("VolumeBackup") == 3600


def test_a_key_lives_in_its_lanes_queue_only() -> None:
    q = LaneQueues(lambda: 0.0)
    q.add(("VolumeBackup", "b"))
    q.add(("Broadcast", "x"))
    assert len(q.by_lane["slow"]) == 1 and len(q.by_lane["fast"]) == 1
    key = q.by_lane["slow"].pop()
    q.add(key)  # while it runs: once more afterwards, never twice at once
    assert q.by_lane["slow"].pop() is None
    q.done(key)
    assert q.by_lane["slow"].pop() == key
    assert key in q and ("Broadcast", "x") in q and len(q) == 1


def test_busy_past_deadline_is_overdue_then_stuck() -> None:
    b = Busy(("Broadcast", "x"), started=100.0, deadline=10.0)
    assert not b.overdue(109) and b.overdue(111) and not b.stuck(111)
    assert b.stuck(111 + lanes.CANCEL_GRACE)
    now = [100.0]
    w = Workers(LanePlan({"fast": 1, "slow": 1}, {"fast": 10.0, "slow": 10.0}), clock=lambda: now[0])
    w.start("slow", 0, ("VolumeBackup", "b"))
    now[0] = 200.0
    fast, slow = w.report(LaneQueues(lambda: 0.0))
    assert not fast.stuck and slow.stuck
    assert slow.as_dict()["overdue"][0]["key"] == "VolumeBackup/b"
    w.end("slow", 0)
    assert not w.report(LaneQueues(lambda: 0.0))[1].busy


def test_within_cancels_at_the_deadline_and_says_so() -> None:
    said = []

    async def slow() -> int:
        await asyncio.sleep(10)
        return 1

    async def overdue() -> None:
        said.append("overdue")

    with pytest.raises(ReconcileTimeout):
        asyncio.run(within(0.05, slow, overdue))
    assert said == ["overdue"]


def test_within_waits_for_a_call_that_does_not_give_way() -> None:
    """The key stays taken until the call ends (never twice at once); its result is kept."""

    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await within(0.05, lambda: lanes.hang_for_tests(0.3, _one), _nothing)
        return result, loop.time() - t0

    result, took = asyncio.run(main())
    assert result == 1 and took >= 0.3


async def _one() -> int:
    return 1


async def _nothing() -> None:
    return None


GM = "apiVersion: jupyterhub-ds/v1\nkind: GroupMembership\nmetadata: {name: g}\nspec: {group: g, members: [a]}\n"
VB = "apiVersion: jupyterhub-ds/v1\nkind: VolumeBackup\nmetadata: {{name: b{i}}}\nspec: {{user: a}}\n"


def test_slow_lane_full_fast_key_still_runs(tmp_path) -> None:
    """One slow worker, busy with long backups: a group change is done at once all the same;
    a backup past the slow lane's deadline is cancelled and recorded."""
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    for i in range(3):
        store.apply(parse_manifests(VB.format(i=i), "b.yaml"), "cli")
    store.apply(parse_manifests(GM, "g.yaml"), "cli")
    done: list[str] = []

    async def backup(obj, ctx) -> Result:
        await asyncio.sleep(5)
        return Result(Status(phase="Succeeded"))

    async def group(obj, ctx) -> Result:
        done.append(obj.name)
        return Result(GroupMembershipStatus(phase="Ready"))

    ctx = Context(store=store, hub=HubClient("http://127.0.0.1:9/hub/api", "unused"), settings=load_settings({}))
    plan = LanePlan({"fast": 1, "slow": 1}, {"fast": 60.0, "slow": 0.3})
    r = Reconciler(ctx, {"VolumeBackup": backup, "GroupMembership": group}, lane_plan=plan, resync_seconds=3600)

    async def main() -> list[dict]:
        run = asyncio.create_task(r.run())
        for _ in range(100):
            await asyncio.sleep(0.02)
            if done:
                break
        reports = [x.as_dict() for x in r.lane_reports()]
        await asyncio.sleep(0.5)  # past the slow deadline
        r.stop()
        await run
        await ctx.hub.close()
        return reports

    fast, slow = asyncio.run(main())
    assert done and set(done) == {"g"}
    assert slow["busy"] == 1 and slow["waiting"] >= 1 and fast["workers"] == 1
    reasons = [e.reason for e in store.events("VolumeBackup")]
    assert "ReconcileTimedOut" in reasons
    store.close()
