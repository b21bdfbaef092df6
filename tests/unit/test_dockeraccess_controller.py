"""The DockerAccess watch's decisions against a fake proxy, hub and engine (issue 25): the
socket follows the level and the quota, a user who loses `limited` is closed and told,
containers stop with the server and go after the grace period, and the audit sink bounds
what it records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from reconciler.api.dockeraccess import DockerAccessStatus
from reconciler.controllers import dockeraccess
from reconciler.docker_requests import Quota
from reconciler.proxy_port import AuditSink, DockerProxyPort
from reconciler.store import Store

GIB = 1024**3


@dataclass
class Owned:
    kind: str
    id: str
    name: str


@dataclass
class FakeProxy:
    """The proxy's interface (`proxy_port.DockerProxyPort`), in memory."""

    sockets: dict[str, Quota] = field(default_factory=dict)
    records: dict[str, list[Owned]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def open(self, user: str, quota: Quota) -> Path:
        self.calls.append(f"open {user}")
        self.sockets[user] = quota
        return Path("/tmp") / user / "docker.sock"

    async def close(self, user: str) -> None:
        self.calls.append(f"close {user}")
        self.sockets.pop(user, None)

    def open_users(self) -> dict[str, Quota]:
        return dict(self.sockets)

    async def owned(self, user: str) -> list[Owned]:
        return list(self.records.get(user, []))

    async def forget(self, user: str, ids: Any) -> None:
        gone = set(ids)
        self.records[user] = [o for o in self.records.get(user, []) if o.id not in gone]


class World:
    """ann: in `team` (whose policy gives limited), her server running, one container of hers."""

    def __init__(self) -> None:
        self.groups = ["team"]
        self.server: dict[str, Any] | None = {"ready": True, "url": "/user/ann/"}
        self.containers: dict[str, dict[str, Any]] = {
            "c1": {"Name": "/db", "State": {"Status": "running"}, "HostConfig": {"Memory": GIB, "NanoCpus": 5 * 10**8}}
        }
        self.log: list[str] = []
        self.activity: list[list[str]] = []

    # the hub
    async def get_user(self, name: str) -> dict[str, Any] | None:
        return {"name": name, "groups": self.groups, "servers": {"": self.server} if self.server else {}}

    async def list_groups(self) -> dict[str, dict[str, Any]]:
        return {"team": {"users": ["ann"]}}

    async def post_activity(self, user: str, servers: list[str], when: str) -> None:
        self.activity.append(servers)

    # the engine
    async def inspect_containers(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i: self.containers[i] for i in ids if i in self.containers}

    async def stop_container(self, cid: str) -> None:
        self.log.append(f"stop {cid}")
        self.containers[cid]["State"] = {"Status": "exited"}

    async def remove_container(self, cid: str) -> None:
        self.log.append(f"remove {cid}")
        self.containers.pop(cid, None)

    async def server_tokens(self, platform: str) -> dict:
        return {}  # no token: the notice is skipped (delivery is tested with the broadcasts)


def context(world: World, proxy: DockerProxyPort | None, policy: dict[str, Any], **settings: Any) -> Any:
    observed: dict[str, dict] = {}
    events: list[str] = []

    async def read(kind: str, name: str) -> dict:
        return observed.get(name, {})

    async def event(kind: str, name: str, reason: str, message: str, **kw: Any) -> None:
        events.append(reason)

    async def record(kind: str, name: str, status: DockerAccessStatus) -> None:
        observed[name] = status.dump()  # progress written before the notice and the stops

    stored = SimpleNamespace(name="team-docker", spec={"groups": ["team"], **policy})
    store = SimpleNamespace(
        list=lambda kind: [stored] if kind == "GroupPolicy" else [], observed_all=lambda k: observed
    )
    config = SimpleNamespace(
        swarm=False, platform_id="p", proxy_url="http://127.0.0.1:1", docker_limited_grace_seconds=600,
        docker_limited_counts_as_activity=False,
    )  # fmt: skip
    for key, value in settings.items():
        setattr(config, key, value)
    return SimpleNamespace(
        hub=world, engine=world, store=store, settings=config, observed=read, event=event, docker_proxy=proxy,
        record_observed=record,
        events=events, saved=observed, stored=stored,
    )  # fmt: skip


def run(ctx: Any, user: str = "ann") -> DockerAccessStatus:
    result = asyncio.run(dockeraccess.reconcile(user, ctx))
    status = result.status
    assert isinstance(status, DockerAccessStatus)
    ctx.saved[user] = status.dump()
    ctx.requeue = result.requeue_after
    return status


def test_limited_opens_the_socket_with_the_quota_and_reports_use() -> None:
    world, proxy = World(), FakeProxy(records={"ann": [Owned("container", "c1", "db"), Owned("volume", "v", "v")]})
    ctx = context(world, proxy, {"dockerAccess": "limited", "dockerQuota": {"containers": 3}})
    status = run(ctx)
    assert proxy.sockets["ann"].max_containers == 3 and proxy.sockets["ann"].memory == 2 * GIB
    assert status.level == "limited" and status.socket_open and status.server_running
    assert (status.container_count, status.running, status.memory, status.cpus) == (1, 1, GIB, 0.5)
    assert status.quota and status.quota["containers"] == 3
    assert ctx.events == ["SocketOpened"] and world.log == []
    run(ctx)  # nothing changed: open again (idempotent), no new event
    assert ctx.events == ["SocketOpened"]
    ctx.stored.spec["dockerQuota"] = {"containers": 4}
    run(ctx)
    assert ctx.events == ["SocketOpened", "QuotaChanged"] and proxy.sockets["ann"].max_containers == 4


def test_losing_limited_closes_stops_tells_and_removes_after_the_grace() -> None:
    world, proxy = World(), FakeProxy(records={"ann": [Owned("container", "c1", "db")]})
    ctx = context(world, proxy, {"dockerAccess": "limited"})
    run(ctx)
    world.groups = []  # removed from the team
    status = run(ctx)
    assert "ann" not in proxy.sockets and proxy.calls[-1] == "close ann"
    assert world.log == ["stop c1"] and status.level == "none" and not status.socket_open
    assert status.told_ended and status.stopped_since is not None and status.running == 0
    assert ctx.events[-2:] == ["SocketClosed", "ContainersStopped"]
    assert 590 < ctx.requeue <= 600  # comes back for the removal
    run(ctx)
    assert world.log == ["stop c1"]  # stopped once; still within the grace
    ctx.saved["ann"]["stoppedSince"] = (datetime.now(UTC) - timedelta(seconds=601)).isoformat()
    status = run(ctx)
    assert world.log == ["stop c1", "remove c1"] and proxy.records["ann"] == []
    assert status.container_count == 0 and status.stopped_since is None and ctx.events[-1] == "ContainersRemoved"


def test_the_server_stopping_stops_the_containers_and_a_new_start_keeps_them() -> None:
    world, proxy = World(), FakeProxy(records={"ann": [Owned("container", "c1", "db")]})
    ctx = context(world, proxy, {"dockerAccess": "limited"}, docker_limited_grace_seconds=0)
    world.server = None
    status = run(ctx)
    assert "ann" in proxy.sockets  # the access stays; only the containers go
    assert world.log == ["stop c1", "remove c1"] and status.container_count == 0  # no grace: at once
    assert not status.told_ended


def test_within_the_grace_a_started_server_clears_the_removal() -> None:
    world, proxy = World(), FakeProxy(records={"ann": [Owned("container", "c1", "db")]})
    ctx = context(world, proxy, {"dockerAccess": "limited"})
    world.server = None
    assert run(ctx).stopped_since is not None
    world.server = {"ready": True, "url": "/user/ann/"}
    status = run(ctx)
    assert status.stopped_since is None and ctx.requeue is None and world.log == ["stop c1"]


def test_containers_gone_by_hand_are_forgotten_and_other_kinds_are_not_touched() -> None:
    world = World()
    proxy = FakeProxy(records={"ann": [Owned("container", "gone", "x"), Owned("network", "n", "net")]})
    ctx = context(world, proxy, {"dockerAccess": "limited"})
    world.server = None
    status = run(ctx)
    assert [o.id for o in proxy.records["ann"]] == ["n"] and status.container_count == 0 and world.log == []


def test_no_proxy_or_swarm_is_said_and_nothing_opens() -> None:
    status = run(context(World(), None, {"dockerAccess": "limited"}))
    assert status.phase == "Degraded" and status.condition("Ready").reason == "NoProxy"
    proxy = FakeProxy()
    status = run(context(World(), proxy, {"dockerAccess": "limited"}, swarm=True))
    assert proxy.sockets == {} and status.condition("Ready").reason == "UnsupportedOnSwarm"
    assert run(context(World(), None, {})).phase == "Ready"  # none: nothing to say


def test_privileged_users_get_no_proxy_socket() -> None:
    world, proxy = World(), FakeProxy()
    world.groups = ["docker-privileged"]
    ctx = context(world, proxy, {"dockerAccess": "limited"})
    ctx.stored.spec = {"groups": ["docker-privileged"], "dockerAccess": "privileged"}
    status = run(ctx)
    assert status.level == "privileged" and proxy.sockets == {} and not status.socket_open


def test_running_containers_count_as_activity_only_when_asked() -> None:
    world = World()
    ctx = context(world, FakeProxy(records={"ann": [Owned("container", "c1", "db")]}), {"dockerAccess": "limited"})
    run(ctx)
    assert world.activity == []
    ctx.settings.docker_limited_counts_as_activity = True
    run(ctx)
    assert world.activity == [[""]]


def test_names_are_members_of_limited_groups_open_sockets_and_pending_removals() -> None:
    world, proxy = World(), FakeProxy(sockets={"bob": Quota()})
    ctx = context(world, proxy, {"dockerAccess": "limited"})
    ctx.saved["cy"] = {"containerCount": 2}
    ctx.saved["dee"] = {"level": "none"}
    assert asyncio.run(dockeraccess.names(ctx)) == {"ann", "bob", "cy"}


def test_the_audit_sink_records_on_the_users_key_within_its_bound(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/audit.db")
    sink = AuditSink(store, per_minute=3)
    refused = SimpleNamespace(kind="refused", endpoint="container create", object="", message="HostConfig.Privileged")
    created = SimpleNamespace(kind="create", endpoint="container create", object="db", message="created")
    assert (
        sink(  # the proxy's callback: returns at once
            "ann", created
        )
        is None
    )
    for _ in range(5):
        sink("ann", refused)
    sink("bob", refused)  # another user's bound is their own
    sink.flush()
    events = store.events("DockerAccess", "ann")
    assert [e.reason for e in events] == ["Created", "Refused", "Refused"]
    assert events[1].type == "Warning" and "container create: HostConfig.Privileged" in events[1].message
    assert [e.reason for e in store.events("DockerAccess", "bob")] == ["Refused"]
    # The next minute begins with one event counting what was left out.
    assert sink.add("ann", "Refused", "again", "Warning", now=10**9)
    sink.flush()
    reasons = [e.reason for e in store.events("DockerAccess", "ann")]
    assert reasons[-2:] == ["AuditSuppressed", "Refused"]
    sink.close()
