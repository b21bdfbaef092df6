"""The privileged-access watch's own restart (issue 22, item 3) against a fake hub and
engine: one short step per reconcile, no resource anyone could cancel or name first, and a
reconciler that dies between the stop and the start resumes without stopping twice."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler import restarts
from reconciler.api.privilegedaccess import PrivilegedAccessStatus
from reconciler.controllers import privilegedaccess
from vocabulary import naming

SOCKET = "/var/run/docker.sock"


class World:
    """A hub and an engine: ann's server runs with the socket; she is no longer a member."""

    def __init__(self) -> None:
        self.server: dict[str, Any] | None = {"ready": True, "url": "/user/ann/"}
        self.containers = [self.container("old", socket=True)]
        self.log: list[str] = []
        self.stop_completes = True

    @staticmethod
    def container(cid: str, socket: bool) -> dict[str, Any]:
        labels = {naming.LABEL_USER: "ann", naming.LABEL_SERVER: ""}
        mounts = [{"Destination": SOCKET, "Source": SOCKET}] if socket else []
        return {"Id": cid, "Names": [f"/lab-ann-{cid}"], "Labels": labels, "Mounts": mounts, "State": "running"}

    # the hub
    async def get_user(self, name: str) -> dict[str, Any]:
        return {"name": name, "servers": {"": self.server} if self.server else {}}

    async def get_group(self, name: str) -> dict[str, Any]:
        return {"name": name, "users": []}

    async def stop_server(self, user: str, server: str = "") -> None:
        self.log.append("stop")
        if self.stop_completes:
            self.server, self.containers = None, []
        else:
            self.server = {**(self.server or {}), "pending": "stop"}

    async def start_server(self, user: str, server: str = "") -> None:
        self.log.append("start")
        self.server = {"ready": True, "url": "/user/ann/"}
        self.containers = [self.container("new", socket=False)]

    # the engine
    async def user_containers(self, platform: str, user: str) -> list[dict[str, Any]]:
        return list(self.containers)

    async def server_tokens(self, platform: str) -> dict:
        return {}


def context(world: World) -> Any:
    observed: dict[str, dict] = {}
    events: list[str] = []

    async def read(kind: str, name: str) -> dict:
        return observed.get(name, {})

    async def record(kind: str, name: str, status: Any) -> None:
        observed[name] = status.dump()

    async def event(kind: str, name: str, reason: str, message: str, **kw: Any) -> None:
        events.append(reason)

    async def group(name: str, *, cached: bool) -> dict:
        return await world.get_group(name)

    settings = SimpleNamespace(
        platform_id="p", docker_socket=SOCKET, privileged_drift_policy="restart",
        privileged_restart_on_grant=False, proxy_url="http://127.0.0.1:1/",
    )  # fmt: skip
    # The spawner recorded both labs' ids (the survey trusts recorded ids, not labels).
    labs = {cid: {"role": "lab", "user": "ann", "server": ""} for cid in ("old", "new")}
    store = SimpleNamespace(list=lambda kind: [], observed_all=lambda kind: labs if kind == naming.OWNED_KIND else {})
    return SimpleNamespace(
        hub=world, engine=world, store=store, settings=settings, observed=read, record_observed=record,
        event=event, group=group, woken_by_resync=lambda key: False, events=events, saved=observed,
    )  # fmt: skip


def run(world: World, ctx: Any) -> Any:
    result = asyncio.run(privilegedaccess.reconcile("ann", ctx))
    ctx.saved["ann"] = result.status.dump()  # what the loop writes after a reconcile
    return result


def test_a_revocation_is_carried_out_by_the_key_itself_one_step_at_a_time() -> None:
    world = World()
    world.stop_completes = False  # a slow stop: the reconcile must not wait for it
    ctx = context(world)  # (no `apply`: recording a resource would fail here)
    first = run(world, ctx)
    assert world.log == ["stop"] and first.requeue_after == restarts.POLL
    (restart,) = first.status.restarts
    assert (restart.step, restart.container_id, restart.reason) == ("stopping", "old", "revoke")
    run(world, ctx)  # still stopping: no second stop request
    assert world.log == ["stop"]
    world.server, world.containers = None, []  # the stop is done
    run(world, ctx)
    assert world.log == ["stop", "start"]
    done = run(world, ctx)
    assert done.status.restarts == [] and done.requeue_after is None
    assert ctx.events == ["PrivilegedDrift", "RestartRequested", "ServerRestarted"]
    assert not any(s.has_socket for s in done.status.servers)


def test_a_reconciler_that_dies_between_stop_and_start_resumes() -> None:
    world = World()
    ctx = context(world)
    original = world.start_server

    async def crash(user: str, server: str = "") -> None:
        raise RuntimeError("the reconciler dies here")

    world.start_server = crash  # the stop goes through, then the process dies before starting
    first = run(world, ctx)
    assert world.log == ["stop"] and first.status.restarts[0].step == "stopping"
    with pytest.raises(RuntimeError):
        run(world, ctx)
    saved = PrivilegedAccessStatus.load(ctx.saved["ann"])  # recorded before the start
    assert saved.restarts[0].step == "starting" and saved.restarts[0].starts == 1
    world.start_server = original
    run(world, ctx)  # a new reconciler: the server is down, the start is sent again
    done = run(world, ctx)
    assert world.log == ["stop", "start"] and done.status.restarts == []


def test_a_server_being_restarted_is_not_restarted_twice() -> None:
    world = World()
    world.stop_completes = False
    ctx = context(world)
    run(world, ctx)
    world.containers.append(world.container("other", socket=True))  # drift again, mid-restart
    second = run(world, ctx)
    assert len(second.status.restarts) == 1 and "other" not in second.status.handled
