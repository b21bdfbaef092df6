"""`make up` / `make down` as a user meets them: data survives, nothing is left running."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import docker
import pytest

from tests.harness import Hub, cleanup_docker
from vocabulary import naming

PLATFORM = "jhds-test-life"  # its own label: `down` here must not touch the session's hub


@pytest.fixture
def life_hub(engine: docker.DockerClient, tmp_path) -> Iterator[Hub]:
    cleanup_docker(engine, PLATFORM)
    h = Hub(state_dir=tmp_path / "state", platform=PLATFORM)
    yield h
    h.down()
    cleanup_docker(engine, PLATFORM)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_down_stops_everything_and_keeps_volumes(life_hub: Hub, engine: docker.DockerClient) -> None:
    result = life_hub.up()
    assert result.returncode == 0, result.stderr
    assert f"JupyterHub is ready at {life_hub.url}" in result.stdout
    assert "Sign in as the admin 'admin'" in result.stdout

    # A second `up` while running finds it and does nothing more.
    again = life_hub.up()
    assert again.returncode == 0 and "already running" in again.stdout

    life_hub.create_user("frank")
    life_hub.start_server("frank")
    container = engine.containers.get(life_hub.container_name("frank"))
    code, _ = container.exec_run(["sh", "-c", "echo kept > /home/lab/notes.txt"], user="lab")
    assert code == 0

    result = life_hub.down()
    assert result.returncode == 0, result.stderr
    assert not (life_hub.state_dir / "jupyterhub.pid").exists()
    assert not port_open(life_hub.port)
    assert not port_open(life_hub.reconciler_port)
    log = life_hub.log_path.read_text()
    assert "reconciler: stopping (signal)" in log and "reconciler stopped" in log  # a clean shutdown
    label = f"{naming.LABEL_PLATFORM}={PLATFORM}"
    assert engine.containers.list(all=True, filters={"label": label}) == []
    names = {v.name for v in engine.volumes.list(filters={"label": label})}
    assert {life_hub.volume_name("frank", k) for k in ("home", "workspace", "cache")} <= names

    # Up again: the hub finds the server gone, a new start finds the data.
    assert life_hub.up().returncode == 0
    assert "" not in life_hub.api("GET", "users/frank").json()["servers"]
    life_hub.start_server("frank")
    container = engine.containers.get(life_hub.container_name("frank"))
    code, output = container.exec_run(["cat", "/home/lab/notes.txt"], user="lab")
    assert (code, output.decode().strip()) == (0, "kept")
