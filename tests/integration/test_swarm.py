"""The platform on a real two-node Docker Swarm (PLATFORM_BACKEND=swarm; `make swarm-up`).

Each user server is a service. Volumes stay on the node that holds them; everything that
touches them runs there; a node that is down fails its users' spawns with its name and
leaves the other node's users working.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import ROOT, Hub, cleanup_swarm, own_hub, wait_for
from tests.helpers import apply, apply_manifests, events, finished, gm, group_members, manifest, status
from vocabulary import naming

PLATFORM = "jhds-test-swarm"
USERS = ("sw-ann", "sw-bob")
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def shub(swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    cleanup_swarm(PLATFORM)
    env = {"PLATFORM_BACKEND": "swarm", "DOCKER_HOST": swarm.manager_host}
    manager = swarm.client("a")
    with own_hub(manager, tmp_path_factory.mktemp("swarm"), PLATFORM, env) as hub:
        for user in USERS:
            hub.create_user(user)
            hub.start_server(user)
        yield hub
    cleanup_swarm(PLATFORM)


def service(swarm, hub: Hub, user: str) -> dict | None:
    found = swarm.client("a").api.services(filters={"name": hub.container_name(user)})
    return next((s for s in found if s["Spec"]["Name"] == hub.container_name(user)), None)


def running_task(swarm, svc: dict) -> dict:
    tasks = swarm.client("a").api.tasks(filters={"service": svc["ID"], "desired-state": "running"})
    assert len(tasks) == 1, tasks
    return tasks[0]


def node_of(swarm, hub: Hub, user: str) -> str:
    """The name (a or b) of the node running the user's server."""
    node_id = running_task(swarm, service(swarm, hub, user))["NodeID"]
    return next(name for name, nid in swarm.node_ids.items() if nid == node_id)


def has_volume(swarm, node: str, name: str) -> bool:
    try:
        swarm.client(node).volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


def test_users_spread_over_both_nodes_with_volume_mounts(swarm, shub: Hub) -> None:
    nodes = {user: node_of(swarm, shub, user) for user in USERS}
    assert set(nodes.values()) == {"a", "b"}, nodes  # the least loaded node takes the next user
    for user, node in nodes.items():
        spec = service(swarm, shub, user)["Spec"]["TaskTemplate"]["ContainerSpec"]
        names = {shub.volume_name(user, key) for key in ("home", "workspace", "cache")}
        own = [m for m in spec["Mounts"] if m["Source"] in names]
        assert len(own) == 3 and all(m["Type"] == "volume" for m in own), spec["Mounts"]
        other = "b" if node == "a" else "a"
        home = shub.volume_name(user, "home")
        assert has_volume(swarm, node, home) and not has_volume(swarm, other, home)
        labels = swarm.client(node).volumes.get(home).attrs["Labels"]
        assert labels[naming.LABEL_USER] == user and labels[naming.LABEL_PLATFORM] == PLATFORM


def test_pages_and_the_volume_list_work_as_on_one_host(swarm, shub: Hub) -> None:
    user = USERS[1]  # on node b: its volumes are listed by a task there
    r = shub.api("GET", f"users/{user}/manage-volumes")
    assert r.status_code == 200, r.text
    listed = {v["key"]: v for v in r.json()["volumes"]}
    assert set(listed) == {"home", "workspace", "cache"} and all(v["size"] is not None for v in listed.values())
    survey = wait_for(lambda: (r := shub.api("GET", "servers").json())["servers"] and r, 30, "the drift survey")
    assert survey["swarm"] and {s["user"]: s["node"] for s in survey["servers"]} == {
        u: node_of(swarm, shub, u) for u in USERS
    }
    assert "NODE" in shub.hubctl("get", "servers").stdout
    session, error = shub.login("admin")
    assert session is not None, error
    with session:
        for page in ("privileged", "servers", "idle-culling", "backups", f"users/{user}/policy"):
            page_r = session.get(f"{shub.url}hub/{page}", timeout=60)
            assert page_r.status_code == 200, (page, page_r.status_code)
            if page in ("privileged", "servers"):  # the running servers, read from the services
                assert user in page_r.text, page


def test_a_broadcast_reaches_labs_on_both_nodes(swarm, shub: Hub) -> None:
    data = shub.broadcast("Hello from the swarm")
    outcomes = {d["user"]: d["outcome"] for d in data["deliveries"]}
    assert outcomes == dict.fromkeys(USERS, "delivered"), data
    assert {node_of(swarm, shub, u) for u in USERS} == {"a", "b"}


def test_a_restart_is_a_new_task_on_the_same_node(swarm, shub: Hub) -> None:
    user = USERS[1]
    node, before = node_of(swarm, shub, user), running_task(swarm, service(swarm, shub, user))["ID"]
    apply(shub, "ServerRestart", "swarm-restart", {"user": user})
    assert finished(shub, "ServerRestart", "swarm-restart", 90, interval=0.5)["phase"] == "Succeeded"
    shub.wait_ready(user)
    assert running_task(swarm, service(swarm, shub, user))["ID"] != before
    assert node_of(swarm, shub, user) == node


def test_backup_and_reset_act_on_the_node_holding_the_volumes(swarm, shub: Hub) -> None:
    user = USERS[1]
    node = node_of(swarm, shub, user)
    other = "b" if node == "a" else "a"
    shub.stop_server(user)
    apply(shub, "VolumeBackup", "swarm-backup", {"user": user})
    backup = finished(shub, "VolumeBackup", "swarm-backup", 120, interval=0.5)
    assert backup["phase"] == "Succeeded", backup
    location = f"{PLATFORM}-backups"
    assert has_volume(swarm, node, location) and not has_volume(swarm, other, location)
    cache = shub.volume_name(user, "cache")
    assert has_volume(swarm, node, cache)
    apply(shub, "VolumeReset", "swarm-reset", {"user": user, "volumes": ["cache"]})
    reset = finished(shub, "VolumeReset", "swarm-reset", 90, interval=0.5)
    assert reset["phase"] == "Succeeded", json.dumps(reset)
    assert not has_volume(swarm, node, cache)
    assert has_volume(swarm, node, shub.volume_name(user, "home"))  # only what was asked
    shub.start_server(user)
    assert node_of(swarm, shub, user) == node


def test_helper_names_never_collide_between_users_and_requests(swarm, shub: Hub) -> None:
    """Two users whose names share a long prefix, backed up at once (issue 22, item 10): each
    helper task has its own name, so neither removes the other's as "a leftover"."""
    twins = [f"sw-collide-{'a' * 19}-{i}" for i in (1, 2)]
    for user in twins:
        shub.create_user(user)
        shub.start_server(user)  # its volumes, on its node
        # Enough data that the two helpers surely run at the same time (gzip takes seconds).
        task = running_task(swarm, service(swarm, shub, user))
        node = swarm.client(node_of(swarm, shub, user))
        lab = node.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        fill = lab.exec_run(["sh", "-c", "head -c 24000000 /dev/urandom > /home/lab/workspace/big"], user="0")
        assert fill.exit_code == 0, fill.output
        node.close()
        shub.stop_server(user)
    apply(shub, "VolumeBackup", "nightly", {"selector": {"users": twins}, "volumes": ["workspace"]})
    backup = finished(shub, "VolumeBackup", "nightly", 120, interval=0.5)
    assert backup["phase"] == "Succeeded", json.dumps(backup)
    assert {u["user"]: u["outcome"] for u in backup["users"]} == dict.fromkeys(twins, "Succeeded")
    # Side by side, at the first try: a shared name made the second helper fail ("name
    # conflicts with an existing object") and wait for a retry, or removed the first one.
    log = Path(shub.log_path).read_text()
    assert "name conflicts with an existing object" not in log
    assert "volumebackup/nightly: unexpected error" not in log


def test_a_rename_moves_the_volumes_on_the_node_holding_them(swarm, shub: Hub) -> None:
    """The helper copies on the old name's node, the new volumes are made there (not on
    whichever node the new name would have been given), and the new name is placed there."""
    old, new = "sw-cy", "sw-cyd"
    shub.create_user(old)
    shub.start_server(old)
    node = node_of(swarm, shub, old)
    other = "b" if node == "a" else "a"
    task = running_task(swarm, service(swarm, shub, old))
    client = swarm.client(node)
    lab = client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    wrote = lab.exec_run(["sh", "-c", "echo kept > /home/lab/workspace/note.txt"], user="lab")
    assert wrote.exit_code == 0, wrote.output
    client.close()
    shub.stop_server(old)
    cli = shub.hubctl("rename-user", old, new, timeout=180)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    for key in ("home", "workspace"):
        assert has_volume(swarm, node, shub.volume_name(new, key)), key
        assert not has_volume(swarm, other, shub.volume_name(new, key)), key
        assert not has_volume(swarm, node, shub.volume_name(old, key)), key
    placed = {
        u["user"]: u["nodeName"] for u in json.loads(shub.hubctl("get", "placements", "-o", "json").stdout)["users"]
    }
    assert old not in placed and placed[new] == node, placed
    shub.start_server(new)
    assert node_of(swarm, shub, new) == node
    task = running_task(swarm, service(swarm, shub, new))
    client = swarm.client(node)
    lab = client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    assert lab.exec_run(["cat", "/home/lab/workspace/note.txt"], user="lab").output == b"kept\n"
    client.close()
    shub.stop_server(new)


def test_a_service_with_the_platforms_labels_copied_is_removed(swarm, shub: Hub) -> None:
    """A node task is known by the id the platform recorded, not by its labels (item 4)."""
    manager = swarm.client("a")
    labels = {naming.LABEL_PLATFORM: PLATFORM, naming.LABEL_NODE_TASK: swarm.node_ids["a"]}
    spec = docker.types.ContainerSpec(
        "jupyterhub-ds/lab:minimal",
        command=["sleep", "300"],
        mounts=[docker.types.Mount("/host", "/", type="bind", read_only=True)],
        labels=labels,
    )
    template = docker.types.TaskTemplate(container_spec=spec, restart_policy=docker.types.RestartPolicy("none"))
    sid = manager.api.create_service(template, name=f"{PLATFORM}-copied-task", labels=labels)["ID"]
    try:
        wait_for(lambda: not manager.api.services(filters={"id": sid}), 60, "the copied task removed")
        copied = [e for e in events(shub, reason="EngineAccessDrift") if e["name"] == f"{PLATFORM}-copied-task"]
        (drift,) = copied
        assert "a parent folder of the engine socket (/)" in drift["message"]
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            manager.api.remove_service(sid)
        manager.close()


def socket_mounted(svc: dict | None) -> bool:
    spec = (svc or {}).get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return any(m["Target"] == SOCKET for m in spec.get("Mounts") or [])


def test_a_revoked_member_loses_the_node_socket_within_5_s(swarm, shub: Hub) -> None:
    user = USERS[0]
    node = node_of(swarm, shub, user)
    apply_manifests(shub, gm(naming.PRIVILEGED_GROUP, naming.PRIVILEGED_GROUP, [user]))
    wait_for(lambda: group_members(shub, naming.PRIVILEGED_GROUP) == {user}, 10, f"{user} in docker-privileged")
    shub.stop_server(user)
    shub.start_server(user)
    svc = service(swarm, shub, user)
    mount = next(m for m in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"] if m["Target"] == SOCKET)
    assert mount["Type"] == "bind" and mount["Source"] == swarm.node_hosts[node].removeprefix("unix://")
    t0 = time.monotonic()
    apply_manifests(shub, gm(naming.PRIVILEGED_GROUP, naming.PRIVILEGED_GROUP, []))
    wait_for(lambda: not socket_mounted(service(swarm, shub, user)), 5, "the socket gone from the service")
    print(f"swarm revocation: socket gone in {time.monotonic() - t0:.1f} s")
    # The watch restarts the server without the socket (absent from the hub for a moment).
    wait_for(lambda: shub.api("GET", f"users/{user}").json()["servers"].get("", {}).get("ready"), 90, "restarted")
    assert not socket_mounted(service(swarm, shub, user))


def test_a_node_down_fails_its_users_clearly_and_spares_the_others(swarm, shub: Hub) -> None:
    on_b = next(u for u in USERS if node_of(swarm, shub, u) == "b")
    on_a = next(u for u in USERS if u != on_b)
    shub.stop_server(on_b)
    subprocess.run([str(ROOT / "scripts/swarm.sh"), "stop-node", "b"], check=True, capture_output=True, timeout=60)
    try:
        wait_for(
            lambda: swarm.client("a").nodes.get(swarm.node_ids["b"]).attrs["Status"]["State"] == "down", 60, "b down"
        )
        r = shub.api("POST", f"users/{on_b}/server")
        assert r.status_code >= 400 or wait_for(
            lambda: "" not in shub.api("GET", f"users/{on_b}").json()["servers"], 30, "the spawn failed"
        )
        # What the user reads on the spawn page ("Spawn failed: ..."), as the hub logged it.
        log = Path(shub.log_path).read_text()
        assert f"Your server cannot start: the volumes of {on_b} are on node b" in log, log[-3000:]
        shub.stop_server(on_a)
        shub.start_server(on_a)  # the other node's users keep working
        assert node_of(swarm, shub, on_a) == "a"
        # An admin moves the user whose node is gone: their next start is on the other node.
        moved = shub.hubctl("move-user", on_b, "a")
        assert moved.returncode == 0 and "to node a" in moved.stdout, moved.stdout + moved.stderr
        shub.start_server(on_b)
        assert node_of(swarm, shub, on_b) == "a"
        placements = json.loads(shub.hubctl("get", "placements", "-o", "json").stdout)
        assert {u["user"]: u["nodeName"] for u in placements["users"] if u["user"] in USERS} == {on_a: "a", on_b: "a"}
        refused = shub.hubctl("move-user", on_b, "b")  # while the server runs
        assert refused.returncode != 0 and "running server" in refused.stderr, refused.stderr
    finally:
        subprocess.run([str(ROOT / "scripts/swarm.sh"), "up"], check=True, capture_output=True, timeout=600)


def test_a_gpu_policy_is_unsupported_on_swarm_and_says_so(swarm, shub: Hub) -> None:
    shub.create_user("sw-gpu")
    apply_manifests(
        shub,
        gm("sw-gpu-team", "sw-gpu-team", ["sw-gpu"], prune=False),
        manifest("GroupPolicy", "sw-gpu-team", {"groups": ["sw-gpu-team"], "gpus": {"count": 1}}),
    )

    def gpus_condition() -> dict | None:
        conditions = status(shub, "GroupPolicy", "sw-gpu-team").get("conditions", [])
        return next((c for c in conditions if c["type"] == "GPUs"), None)

    gpus = wait_for(gpus_condition, 20, "the GPUs condition")
    assert gpus["status"] == "False" and gpus["reason"] == "Unsupported", gpus
    wait_for(lambda: "sw-gpu" in shub.api("GET", "groups/sw-gpu-team").json().get("users", []), 10, "membership")
    r = shub.api("POST", "users/sw-gpu/server")
    assert r.status_code >= 400 or wait_for(
        lambda: "" not in shub.api("GET", "users/sw-gpu").json()["servers"], 30, "the spawn failed"
    )
    assert "which the Swarm backend does not support (Unsupported)" in Path(shub.log_path).read_text()
    assert service(swarm, shub, "sw-gpu") is None
