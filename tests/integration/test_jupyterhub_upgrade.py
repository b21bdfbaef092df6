"""From JupyterHub 5.5 to 6: a database made by JupyterHub 5.5 (in .venv-compat) with a named
server whose name 6 refuses; `make up` on 6 copies the database aside and upgrades it, the hub
renames the server (`autorename`), and the renamed server starts with its user's volumes and
the files in them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import ROOT, TEST_PLATFORM, Hub, cleanup_docker, wait_for
from vocabulary import naming

COMPAT_PYTHON = ROOT / ".venv-compat/bin/python"
USER = "ursula"
OLD_NAME = "My Analysis"  # JupyterHub 6: 1-30 of [a-z0-9-], starting with a letter
NEW_NAME = "my-analysis"  # what its autorename makes of it
LAB = "jupyterhub-ds/lab:minimal"

# Run by JupyterHub 5.5: its schema, its user and its (stopped) named server.
MAKE_DATABASE = """
import sys
import jupyterhub
from jupyterhub import orm
db = orm.new_session_factory(sys.argv[1])()
user = orm.User(name=sys.argv[2])
db.add(user)
db.commit()
db.add(orm.Spawner(user=user, name=sys.argv[3]))
db.commit()
print(jupyterhub.__version__)
"""


@pytest.fixture
def upgraded(engine: docker.DockerClient, tmp_path: Path) -> Iterator[Hub]:
    platform = f"{TEST_PLATFORM}-upgrade"
    cleanup_docker(engine, platform)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    made = subprocess.run(
        [str(COMPAT_PYTHON), "-c", MAKE_DATABASE, f"sqlite:///{state / 'jupyterhub.sqlite'}", USER, OLD_NAME],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, f"{COMPAT_PYTHON} (make test installs it): {made.stderr}"
    assert made.stdout.startswith("5.5."), made.stdout
    hub = Hub(state_dir=state, platform=platform, extra_env={"JUPYTERHUB_NAMED_SERVER_LIMIT": "2"})
    # A file in the user's workspace volume, as the 5.5 platform's server left it.
    volume = hub.volume_name(USER, "workspace")
    labels = naming.object_labels(platform, USER) | {naming.LABEL_VOLUME: "workspace"}
    engine.volumes.create(volume, labels=labels)
    engine.containers.run(
        LAB,
        ["-c", "echo kept > /w/notes.txt && chown 1000:1000 /w/notes.txt"],
        entrypoint="sh",
        user="root",
        volumes={volume: {"bind": "/w", "mode": "rw"}},
        labels={naming.LABEL_PLATFORM: platform},
        remove=True,
    )
    result = hub.up()
    try:
        assert result.returncode == 0, f"make up failed:\n{result.stdout}\n{result.stderr}"
        yield hub
    finally:
        hub.down()
        cleanup_docker(engine, platform)


def test_a_server_named_before_6_is_renamed_and_starts_with_its_files(upgraded: Hub, engine) -> None:
    hub = upgraded
    copies = list(hub.state_dir.glob("jupyterhub.sqlite.before-jupyterhub-6.*"))
    assert len(copies) == 1, "make up copies the 5.5 database aside before upgrading it"
    assert f"Renaming server user='{USER}' server='{OLD_NAME}' to '{NEW_NAME}'" in hub.log_path.read_text()

    servers = hub.api("GET", f"users/{USER}?include_stopped_servers=1").json()["servers"]
    assert set(servers) - {""} == {NEW_NAME}, servers  # and the default server, stopped
    assert servers[NEW_NAME].get("display_name") == OLD_NAME

    r = hub.api("POST", f"users/{USER}/servers/{NEW_NAME}")
    assert r.status_code in (201, 202), r.text
    wait_for(
        lambda: hub.api("GET", f"users/{USER}").json()["servers"].get(NEW_NAME, {}).get("ready"),
        120,
        "the renamed server ready",
        interval=0.5,
    )
    container = engine.containers.get(hub.container_name(USER, NEW_NAME))
    assert container.labels[naming.LABEL_SERVER] == NEW_NAME
    mounts = {m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"}
    assert mounts == {hub.volume_name(USER, key) for key in ("home", "workspace", "cache")}
    code, output = container.exec_run(["cat", "/home/lab/workspace/notes.txt"], user="lab")
    assert (code, output.decode().strip()) == (0, "kept")
    assert hub.api("DELETE", f"users/{USER}/servers/{NEW_NAME}").status_code in (202, 204)
