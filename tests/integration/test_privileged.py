"""The built-in `docker-privileged` group decides who gets the Docker socket."""

from __future__ import annotations

import docker

from tests.harness import Hub
from vocabulary import naming

SOCKET = "/var/run/docker.sock"
PING = (
    "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/var/run/docker.sock'); "
    "s.sendall(b'GET /_ping HTTP/1.0\\r\\n\\r\\n'); print(s.recv(4096).decode().split()[-1])"
)


def test_group_exists_from_startup(hub: Hub) -> None:
    r = hub.api("GET", f"groups/{naming.PRIVILEGED_GROUP}")
    assert r.status_code == 200, r.text


def test_member_gets_the_socket_and_can_use_it(hub: Hub, engine: docker.DockerClient) -> None:
    hub.create_user("pat")
    r = hub.api("POST", f"groups/{naming.PRIVILEGED_GROUP}/users", json={"users": ["pat"]})
    assert r.status_code == 200, r.text
    hub.start_server("pat")
    try:
        container = engine.containers.get(hub.container_name("pat"))
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert mounts[SOCKET]["Source"] == SOCKET
        assert mounts[SOCKET]["RW"] is True
        assert container.labels[naming.LABEL_SOCKET] == "true"
        # The lab's own (non-root) user can talk to the engine.
        code, output = container.exec_run(["python3", "-c", PING], user="lab")
        assert code == 0 and output.decode().strip() == "OK", output
    finally:
        hub.stop_server("pat")


def test_non_member_never_has_the_socket(hub: Hub, engine: docker.DockerClient) -> None:
    hub.create_user("quinn")
    hub.start_server("quinn")
    try:
        container = engine.containers.get(hub.container_name("quinn"))
        assert SOCKET not in {m["Destination"] for m in container.attrs["Mounts"]}
        assert container.labels[naming.LABEL_SOCKET] == "false"
        code, _ = container.exec_run(["test", "-e", SOCKET])
        assert code != 0
    finally:
        hub.stop_server("quinn")


def test_deleted_group_is_recreated_before_a_spawn(hub: Hub, engine: docker.DockerClient) -> None:
    hub.create_user("rita")
    assert hub.api("DELETE", f"groups/{naming.PRIVILEGED_GROUP}").status_code == 204
    # The privileged watch recreates a deleted built-in group itself (empty), and may be first.
    r = hub.api("GET", f"groups/{naming.PRIVILEGED_GROUP}")
    assert r.status_code == 404 or (r.status_code == 200 and r.json()["users"] == []), r.text
    hub.start_server("rita")
    try:
        r = hub.api("GET", f"groups/{naming.PRIVILEGED_GROUP}")
        assert r.status_code == 200, r.text
        assert r.json()["users"] == []  # recreated empty: nobody gains the socket by it
        container = engine.containers.get(hub.container_name("rita"))
        assert SOCKET not in {m["Destination"] for m in container.attrs["Mounts"]}
    finally:
        hub.stop_server("rita")
