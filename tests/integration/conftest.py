"""Fixtures on real parts: the Docker engine, a JupyterHub started by `scripts/up.sh`, labs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import pytest

from tests.harness import ROOT, TEST_PLATFORM, Hub, Swarm, cleanup_docker, test_swarm


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    client.ping()  # no engine is a failure here, never a skip: `make test` starts one
    cleanup_docker(client, TEST_PLATFORM)  # what an interrupted run left behind
    yield client
    cleanup_docker(client, TEST_PLATFORM)
    client.close()


@pytest.fixture(scope="session")
def hub(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One platform for the session, started exactly as `make up` starts it."""
    # Short broadcast deadlines, so a frozen server's timeout is seen within a test.
    h = Hub(
        state_dir=tmp_path_factory.mktemp("hub-state"),
        extra_env={"BROADCAST_DEADLINE": "6", "BROADCAST_ATTEMPT_TIMEOUT": "2", "RESYNC_SECONDS": "10"},
    )
    result = h.up()
    assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
    yield h
    h.down()


@pytest.fixture(scope="session")
def admin_session(hub: Hub):
    """The admin (created at start-up with JUPYTERHUB_ADMIN_PASSWORD), logged in through the form."""
    session, error = hub.login("admin")
    assert session is not None, error
    yield session
    session.close()


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    """The two-node test swarm (`scripts/swarm.sh up`), removed at the end of the session so
    nothing is left running; the main engine is untouched."""
    yield test_swarm()
    subprocess.run([str(ROOT / "scripts/swarm.sh"), "down"], capture_output=True, timeout=300, check=False)
