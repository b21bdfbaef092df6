"""The engine-wide access survey: what gives a container power over the host, and who may
have it (the platform's own by the ids it recorded, never by labels)."""

from __future__ import annotations

from typing import Any

from reconciler.clients.docker import container_facts
from reconciler.clients.swarm import service_facts
from reconciler.container_rules import escalations, guarded_paths, volume_bind_path
from reconciler.controllers.engineaccess import GRACE, stale_records, survey_engine
from vocabulary import naming

SOCKET = "/var/run/docker.sock"
NOW = 1_000_000.0


def container(name: str, *, labels: dict[str, str] | None = None, created: float = NOW - 3600, **facts: Any) -> dict:
    return {"id": f"id-{name}", "name": name, "labels": labels or {}, "created": created, **facts}


def texts(c: dict) -> list[str]:
    return [f.text for f in escalations(c, SOCKET)]


def survey(containers: list[dict], owned: dict | None = None, allowed: tuple[str, ...] = ()) -> list[str]:
    return [r.container for r in survey_engine(containers, "p", SOCKET, list(allowed), owned, NOW).rows]


def test_the_socket_and_every_parent_of_it_count() -> None:
    sockets, parents = guarded_paths(SOCKET)
    assert "/var/run/docker.sock" in sockets and {"/var/run", "/var", "/"} <= parents
    for source in ("/var/run", "/", "/var", "/var/run/docker.sock", "/var/run/"):
        assert texts(container("x", sources=[source])), source
    assert texts(container("x", privileged=True)) == ["privileged mode"]
    assert texts(container("x", pid_mode="host")) == ["the host's PID namespace"]
    assert texts(container("x", sources=["/home/data", "/var/lib/x"])) == []


def test_every_other_way_to_the_host_is_named() -> None:
    cases = {
        "ipc_mode": ("host", "the host's IPC namespace"),
        "uts_mode": ("host", "the host's UTS namespace"),
        "network_mode": ("host", "the host's network namespace"),
    }
    for field, (value, text) in cases.items():
        assert texts(container("x", **{field: value})) == [text]
    for field in ("pid_mode", "ipc_mode", "network_mode"):
        (found,) = texts(container("x", **{field: "container:0123456789abcdef0123"}))
        assert found.startswith("another container's") and "(container:0123456789ab)" in found
    assert texts(container("x", cap_add=["SYS_ADMIN"])) == ["added capabilities (SYS_ADMIN)"]
    assert texts(container("x", devices=["/dev/sda"])) == ["host devices (/dev/sda)"]
    assert texts(container("x", device_rules=["b *:* rmw"])) == ["device cgroup rules (b *:* rmw)"]
    for opt in ("seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "label=disable"):
        assert texts(container("x", security_opt=[opt])) == [f"no confinement ({opt})"]
    assert texts(container("x", security_opt=["no-new-privileges"], network_mode="none")) == []
    assert texts(container("x", volume_binds={"v": "/"})) == [
        "a parent folder of the engine socket (/) through the volume v"
    ]
    assert texts(container("x", volume_binds={"v": "/srv/x"})) == ["the host path /srv/x through the volume v"]


def test_facts_come_from_the_engine_record() -> None:
    attrs = {
        "HostConfig": {
            "Privileged": False,
            "PidMode": "container:abc",
            "NetworkMode": "host",
            "CapAdd": ["NET_ADMIN"],
            "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse"}],
            "SecurityOpt": ["seccomp=unconfined"],
        },
        "Mounts": [
            {"Type": "bind", "Source": "/run"},
            {"Type": "volume", "Name": "sneaky", "Driver": "local"},
            {"Type": "volume", "Name": "plain", "Driver": "local"},
        ],
    }
    facts = container_facts(attrs, {"sneaky": "/", "plain": None}.get)
    assert facts["volume_binds"] == {"sneaky": "/"} and facts["sources"] == ["/run"]
    assert facts["devices"] == ["/dev/fuse"] and facts["cap_add"] == ["NET_ADMIN"]
    bind = {"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}
    assert volume_bind_path(bind) == "/etc"
    assert volume_bind_path({"Driver": "local", "Options": {"type": "nfs", "o": "addr=1.2.3.4,rw"}}) is None
    assert volume_bind_path({"Driver": "local", "Options": None}) is None


def test_a_swarm_service_spec_is_read_the_same_way() -> None:
    spec = {
        "Name": "svc",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "x",
                "CapabilityAdd": ["SYS_PTRACE"],
                "Privileges": {"Seccomp": {"Mode": "unconfined"}, "AppArmor": {"Mode": "disabled"}},
                "Mounts": [
                    {"Type": "bind", "Source": "/var/run", "Target": "/x"},
                    {
                        "Type": "volume",
                        "Source": "root",
                        "Target": "/y",
                        "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"o": "bind", "device": "/"}}},
                    },
                ],
            }
        },
    }
    facts = service_facts({"ID": "s1", "Spec": spec, "CreatedAt": "2026-12-02T18:00:00.123456789Z"})
    assert facts["created"] > 0 and facts["sources"] == ["/var/run"] and facts["volume_binds"] == {"root": "/"}
    assert len(texts(facts)) == 4


def test_who_may_keep_it() -> None:
    ours = {naming.LABEL_PLATFORM: "p", naming.LABEL_USER: "ann"}
    containers = [
        container("lab-ann", sources=[SOCKET], network_mode="host", labels=ours),  # recorded: the per-user watch's
        container("lab-ann-root", sources=["/"], labels=ours),  # recorded as ann's server, but more than the socket
        container("sibling", sources=["/run"]),  # unlabelled, a parent folder
        container("priv", privileged=True),
        container("forged", sources=[SOCKET], labels=ours),  # labelled as ann's, never recorded
        container("traefik", sources=[SOCKET], network_mode="host"),  # allowed by name: the socket only
        container("traefik-root", sources=["/"]),  # allowed by name, but more than the socket
        container("plain", sources=["/srv/data"], network_mode="none"),
        container("other-net", network_mode="host"),
    ]
    owned = {"id-lab-ann": {"role": "lab", "user": "ann"}, "id-lab-ann-root": {"role": "lab", "user": "ann"}}
    rows = survey_engine(containers, "p", SOCKET, ["traefik*"], owned, NOW).rows
    assert [r.container for r in rows] == ["forged", "lab-ann-root", "other-net", "priv", "sibling", "traefik-root"]
    assert {r.container: r.user for r in rows}["lab-ann-root"] == "ann"
    assert {r.container: r.user for r in rows}["forged"] is None  # its labels say nothing


def test_copied_labels_exempt_nothing_only_recorded_ids_do() -> None:
    task_labels = {naming.LABEL_PLATFORM: "p", naming.LABEL_NODE_TASK: "node", "io.jupyterhub-ds.backup-helper": "x"}
    copied = container("copied", sources=["/"], labels=task_labels)
    task = container("task", sources=[SOCKET], labels=task_labels)
    helper = container("helper", sources=["/srv/backups"], volume_binds={"loc": "/srv/b"})
    owned = {"id-task": {"role": "node-task"}, "id-helper": {"role": "helper"}}
    assert survey([copied, task, helper], owned) == ["copied"]


def test_an_unrecorded_object_claiming_to_be_ours_is_judged_after_the_grace() -> None:
    labels = {naming.LABEL_PLATFORM: "p", naming.LABEL_USER: "ann"}
    young = container("young", sources=[SOCKET], labels=labels, created=NOW - 2)
    found = survey_engine([young], "p", SOCKET, [], {}, NOW)
    assert found.rows == [] and 0 < found.recheck_in <= GRACE
    assert survey([container("old", sources=[SOCKET], labels=labels, created=NOW - GRACE - 1)]) == ["old"]
    assert survey([container("stranger", sources=[SOCKET], created=NOW - 1)]) == ["stranger"]  # no claim, no grace


def test_records_of_gone_objects_are_forgotten_after_a_while() -> None:
    owned = {"a": {"recorded": NOW - 5}, "b": {"recorded": NOW - 3600}, "c": {"recorded": NOW - 3600}}
    assert stale_records(owned, {"c"}, NOW) == ["b"]
