"""The test swarm itself (`scripts/swarm.sh`): two real engines on this machine as the nodes of
one Docker Swarm, with the images loaded into each, and what the swarm backend relies on: a
service on the host network with a named volume, placed on a chosen node, keeps that volume
on that node's engine."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import docker
import pytest
from docker.types import Mount

from tests.harness import ROOT, Swarm, cleanup_swarm, wait_for
from vocabulary import naming

PLATFORM = "jhds-test-swarm-infra"
SWARM_IMAGES = os.environ.get("SWARM_IMAGES", "jupyterhub-ds/lab:minimal jupyterhub-ds/base:bookworm").split()


@pytest.fixture(scope="module")
def swarm(swarm: Swarm) -> Iterator[Swarm]:
    """The session's swarm (conftest), with this module's objects removed around it."""
    cleanup_swarm(PLATFORM)  # what an interrupted run left
    yield swarm
    cleanup_swarm(PLATFORM)


def test_two_nodes_ready_one_manager(swarm: Swarm) -> None:
    assert swarm.manager_host == swarm.node_hosts["a"] == "unix:///run/jhds-swarm/a.sock"
    manager = swarm.client("a")
    try:
        nodes = {node.id: node.attrs for node in manager.nodes.list()}
    finally:
        manager.close()
    assert set(nodes) == set(swarm.node_ids.values())
    for name, node_id in swarm.node_ids.items():
        node = nodes[node_id]
        assert (node["Status"]["State"], node["Spec"]["Availability"]) == ("ready", "active"), node
        assert node["Spec"]["Labels"] == {
            "io.jupyterhub-ds.node": name,
            "io.jupyterhub-ds.socket": f"/run/jhds-swarm/{name}.sock",
        }
    assert [name for name, i in swarm.node_ids.items() if nodes[i]["Spec"]["Role"] == "manager"] == ["a"]


def test_each_node_has_the_main_engines_images(swarm: Swarm) -> None:
    # Only read from the main engine (the `engine` fixture would clean the session's objects).
    main = docker.from_env()
    try:
        for name in swarm.node_hosts:
            client = swarm.client(name)
            try:
                for image in SWARM_IMAGES:
                    assert client.images.get(image).id == main.images.get(image).id, (name, image)
            finally:
                client.close()
    finally:
        main.close()


def test_host_network_service_keeps_its_named_volume_on_its_node(swarm: Swarm) -> None:
    label = {naming.LABEL_PLATFORM: PLATFORM}
    volume = f"{PLATFORM}-data"
    manager, node_a, node_b = swarm.client("a"), swarm.client("a"), swarm.client("b")
    try:
        service = manager.services.create(
            "jupyterhub-ds/base:bookworm",
            ["sh", "-c", "echo written-on-b > /data/hello && exec sleep infinity"],
            name=f"{PLATFORM}-svc",
            labels=label,
            container_labels=label,
            mounts=[Mount(target="/data", source=volume, type="volume", labels=label)],
            networks=["host"],
            constraints=[f"node.id=={swarm.node_ids['b']}"],
        )
        mounts = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
        assert [(m["Type"], m["Source"]) for m in mounts] == [("volume", volume)]

        def running_task():
            tasks = service.tasks(filters={"desired-state": "running"})
            return next((t for t in tasks if t["Status"]["State"] == "running"), None)

        task = wait_for(running_task, 60, "the service's task runs", interval=0.5)
        assert task["NodeID"] == swarm.node_ids["b"]

        container = node_b.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        assert container.labels[naming.LABEL_PLATFORM] == PLATFORM
        code, output = container.exec_run(["cat", "/data/hello"])
        assert (code, output.decode().strip()) == (0, "written-on-b")

        assert node_b.volumes.get(volume).attrs["Labels"] == label
        with pytest.raises(docker.errors.NotFound):
            node_a.volumes.get(volume)
    finally:
        for client in (manager, node_a, node_b):
            client.close()
        cleanup_swarm(PLATFORM)
    for client_node in ("a", "b"):
        client = swarm.client(client_node)
        try:
            assert not client.volumes.list(filters={"label": f"{naming.LABEL_PLATFORM}={PLATFORM}"})
        finally:
            client.close()


def test_a_second_up_takes_seconds(swarm: Swarm) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    t0 = time.perf_counter()
    result = subprocess.run(
        [str(ROOT / "scripts/swarm.sh"), "up"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    took = time.perf_counter() - t0
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"DOCKER_HOST={swarm.manager_host}\n"
    assert took < 15, f"a second up took {took:.1f} s"
