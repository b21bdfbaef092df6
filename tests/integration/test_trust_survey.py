"""The engine-wide survey trusts nothing a container says about itself (issue 22, item 4):
the platform's own are known by the ids it recorded when it made them, never by labels;
every other way to the host (devices, capabilities, no confinement, another container's
namespaces, a host folder behind a volume) is named and stopped. Real engine, session hub.

Other test platforms may share this engine, and their hubs stop what they judge too. The
rogues here are named `jhds-test-survey-*`, inside the tests' ENGINE_ACCESS_ALLOWED: a name
on that list now keeps only the socket and the host's network, so this hub stops them for
anything more (and is the one that reports them)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import docker
import pytest

from tests.harness import Hub, wait_for
from tests.helpers import events
from vocabulary import naming

LAB = "jupyterhub-ds/lab:minimal"
SOCKET = "/var/run/docker.sock"
MEMBER = "sv-mem"


def messages(hub: Hub, kind: str, reason: str) -> dict[str, str]:
    """{object name: message} of this hub's events of one kind and reason."""
    return {e["name"]: e["message"] for e in events(hub, reason=reason) if e["kind"] == kind}


def server_ready(hub: Hub, user: str) -> bool:
    return bool(hub.api("GET", f"users/{user}").json()["servers"].get("", {}).get("ready"))


def running(c) -> bool:
    try:
        c.reload()
    except docker.errors.NotFound:
        return False
    return c.status == "running"


@pytest.fixture
def started(engine: docker.DockerClient) -> Iterator[list]:
    """Containers a test starts, removed at the end whatever happened."""
    made: list = []
    yield made
    for c in made:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)


def run(engine: docker.DockerClient, hub: Hub, started: list, name: str, labels: dict | None = None, **kw):
    """A container started straight through the socket, as a member could."""
    kw.setdefault("network_mode", "none")
    kw.setdefault("init", True)  # sleep under an init stops at once (the survey stops one at a time)
    labels = {naming.LABEL_PLATFORM: hub.platform, **(labels or {})}  # the session's clean-up finds it too
    c = engine.containers.run(LAB, ["sleep", "300"], detach=True, name=name, labels=labels, **kw)
    started.append(c)
    return c


def test_copied_labels_exempt_nothing_and_the_real_server_is_known_by_its_id(
    hub: Hub, engine: docker.DockerClient, started: list
) -> None:
    hub.create_user(MEMBER)
    r = hub.api("POST", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": [MEMBER]})
    assert r.status_code == 200, r.text
    hub.start_server(MEMBER)
    lab = engine.containers.get(hub.container_name(MEMBER))
    try:
        assert any(m["Destination"] == SOCKET for m in lab.attrs["Mounts"])  # the socket and the host's network
        # A "node task" (the platform's labels, copied) with the host's / bound.
        task = {naming.LABEL_NODE_TASK: "n", "io.jupyterhub-ds.backup-helper": "backup"}
        copied = run(engine, hub, started, f"{hub.platform}-copied", task, volumes={"/": {"bind": "/host"}})
        # A twin of the member's server (its labels, the socket): the hub does not know its id.
        server = {naming.LABEL_USER: MEMBER, naming.LABEL_SERVER: "", naming.LABEL_SOCKET: "true"}
        twin = run(engine, hub, started, f"{hub.platform}-twin", server, volumes={SOCKET: {"bind": SOCKET}})
        wait_for(lambda: not running(copied), 40, "the copied task stopped")
        found = messages(hub, "EngineAccess", "EngineAccessDrift")
        assert "a parent folder of the engine socket (/)" in found[copied.name]
        assert running(lab) and running(twin)  # the member may have the socket: both stay for now

        hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": [MEMBER]})  # revoked
        wait_for(lambda: not running(twin), 40, "the twin stopped")
        # The member's subject gets several ContainerStopped events (the twin, then the lab's
        # restart), in either order, and each is written once its stop returned: look at all.
        wait_for(
            lambda: any(
                e["kind"] == "PrivilegedAccess" and e["message"].startswith(f"stopped {twin.name}")
                for e in events(hub, reason="ContainerStopped")
            ),
            20,
            "the twin's stop recorded by the privileged-access watch",
        )
        wait_for(lambda: not running(lab), 40, "the real server restarted through the hub")
        wait_for(lambda: server_ready(hub, MEMBER), 90, "the server back (absent from the hub for a moment)")
        again = engine.containers.get(hub.container_name(MEMBER))
        assert not any(m["Destination"] == SOCKET for m in again.attrs["Mounts"])
        time.sleep(1)
        assert running(again)  # recorded by the spawner: its host network is no drift
    finally:
        hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": [MEMBER]})
        hub.stop_server(MEMBER)


def test_devices_capabilities_confinement_namespaces_and_volume_binds_are_stopped(
    hub: Hub, engine: docker.DockerClient, started: list
) -> None:
    prefix = f"{hub.platform}-x-"
    target = run(engine, hub, started, prefix + "target", ipc_mode="shareable")  # what the joiners join
    volume = engine.volumes.create(
        prefix + "host-root",
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": "/"},
        labels={naming.LABEL_PLATFORM: hub.platform},
    )
    try:
        attempts = {
            prefix + "device": ({"devices": ["/dev/zero:/dev/hostzero:r"]}, "host devices (/dev/zero)"),
            prefix + "cap": ({"cap_add": ["SYS_PTRACE"]}, "added capabilities (SYS_PTRACE)"),
            prefix + "seccomp": ({"security_opt": ["seccomp=unconfined"]}, "no confinement (seccomp=unconfined)"),
            prefix + "pid-join": ({"pid_mode": f"container:{target.id}"}, "another container's PID namespace"),
            prefix + "ipc-join": ({"ipc_mode": f"container:{target.id}"}, "another container's IPC namespace"),
            prefix + "net-join": ({"network_mode": f"container:{target.id}"}, "another container's network namespace"),
            prefix + "ipc-host": ({"ipc_mode": "host"}, "the host's IPC namespace"),
            prefix + "volume-root": (
                {"volumes": {volume.name: {"bind": "/host", "mode": "ro"}}},
                f"a parent folder of the engine socket (/) through the volume {volume.name}",
            ),
            # Not on the allowed list: only the platform's servers and its own may share the host's network.
            "survey-net-host": ({"network_mode": "host"}, "the host's network namespace"),
        }
        tried = [run(engine, hub, started, name, **kw) for name, (kw, _) in attempts.items()]
        for c in tried:
            wait_for(lambda c=c: not running(c), 40, f"{c.name} stopped")
        found = messages(hub, "EngineAccess", "EngineAccessDrift")
        for name, (_, what) in attempts.items():
            assert what in found.get(name, ""), (name, found.get(name))
        assert running(target), "nothing that gives power over the host: left alone"
    finally:
        for c in started:
            c.remove(force=True)
        started.clear()
        volume.remove(force=True)
