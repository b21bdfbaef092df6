"""The README's three Swarm commands, run as written (issue 22): `make swarm-up` must load what
`PLATFORM_BACKEND=swarm make up` then asks for (the default lab, `jupyterhub-ds/lab:ds`, and
the backup helper), a user's server must start on the swarm from it, and `make down` (run
without DOCKER_HOST) must remove the platform's services from the swarm.

Only the environment differs from a user's shell: this platform's own port, state folder and
label (as every test hub). A swarm that was up before (another run's) is left up: then the
last command runs its `make down` part only."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import docker
import requests

from tests.harness import ROOT, SWARM_RUN_DIR, TEST_PLATFORM, Hub, cleanup_swarm

PLATFORM = f"{TEST_PLATFORM}-swarm-readme"
MANAGER = f"unix://{SWARM_RUN_DIR}/a.sock"


def readme_swarm_commands() -> list[str]:
    """The shell block of the README's "On Docker Swarm", one command a line (comments cut)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### On Docker Swarm") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def swarm_answers() -> bool:
    if not os.path.exists(f"{SWARM_RUN_DIR}/a.sock"):
        return False
    client = docker.DockerClient(base_url=MANAGER, timeout=10)
    try:
        return bool(client.info()["Swarm"].get("ControlAvailable"))
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


def run(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_readmes_swarm_commands_work_as_written(tmp_path: Path) -> None:
    commands = readme_swarm_commands()
    assert len(commands) == 3 and commands[0] == "make swarm-up", commands
    assert "PLATFORM_BACKEND=swarm make up" in commands[1] and "make swarm-down" in commands[2]
    was_up = swarm_answers()
    hub = Hub(state_dir=tmp_path / "state", platform=PLATFORM)
    # A user's shell: none of the suite's image choices, no DOCKER_HOST.
    env = {k: v for k, v in hub.env.items() if k not in ("DOCKER_NOTEBOOK_IMAGE", "SWARM_IMAGES", "DOCKER_HOST")}
    cleanup_swarm(PLATFORM)
    try:
        result = run(commands[0], env, 1800)
        assert result.returncode == 0, result.stdout + result.stderr

        result = run(commands[1], env, 900)
        assert result.returncode == 0, result.stdout + result.stderr
        assert requests.get(f"{hub.url}hub/health", timeout=10).status_code == 200
        for node in ("a", "b"):
            client = docker.DockerClient(base_url=f"unix://{SWARM_RUN_DIR}/{node}.sock", timeout=60)
            try:
                for image in ("jupyterhub-ds/lab:ds", "jupyterhub-ds/base:bookworm"):
                    client.images.get(image)  # loaded by swarm-up, as make up asks
            finally:
                client.close()
        hub.create_user("swarmreadme")
        hub.start_server("swarmreadme", timeout=300)  # the ds lab, as a service on a node

        last = commands[2] if not was_up else commands[2].split("&&")[0].strip()
        result = run(last, env, 600)
        assert result.returncode == 0, result.stdout + result.stderr
        if was_up:  # someone else's swarm stays; the platform's services are gone from it
            client = docker.DockerClient(base_url=MANAGER, timeout=30)
            try:
                assert not client.services.list(filters={"label": f"io.jupyterhub-ds.platform={PLATFORM}"})
            finally:
                client.close()
        else:
            assert not swarm_answers()
    finally:
        hub.down()  # already down: no-op
        cleanup_swarm(PLATFORM)
