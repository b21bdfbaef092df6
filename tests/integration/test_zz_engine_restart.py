"""The engine restarting under the reconciler: it retries, then converges. Runs last (zz):
it stops and starts the machine's Docker engine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import ROOT, Hub, wait_for
from tests.helpers import finished, manifest, status
from vocabulary import naming


def engine_up() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def engine_hub(own_platforms) -> Iterator[Hub]:
    try:
        yield own_platforms.platform("engine", {"RESYNC_SECONDS": "3"})
    finally:
        if not engine_up():  # never leave the machine without an engine
            subprocess.run([str(ROOT / "scripts/engine.sh")], check=True, timeout=120)


def test_engine_restart_mid_reconcile_recovers_and_converges(engine_hub: Hub, tmp_path) -> None:
    hub = engine_hub
    hub.create_user("eli")
    hub.start_server("eli")
    hub.stop_server("eli")  # eli has volumes now

    pid = int(Path("/var/run/docker.pid").read_text())
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
    # Gone, not only refusing new connections: while dockerd shuts down it still serves the
    # connections it has, so the reconciler's kept-alive client could go on working for a moment.
    wait_for(lambda: not engine_up() and not Path(f"/proc/{pid}").exists(), 60, "the engine stopped")
    try:
        path = tmp_path / "reset.yaml"
        path.write_text(manifest("VolumeReset", "eli-cache", {"user": "eli", "volumes": ["cache"]}))
        assert hub.hubctl("apply", "-f", str(path)).returncode == 0

        def retrying() -> bool:
            return any(c["reason"] == "Retrying" for c in status(hub, "VolumeReset", "eli-cache").get("conditions", []))

        wait_for(retrying, 30, "the reconciler reports that it retries while the engine is away")
    finally:
        subprocess.run([str(ROOT / "scripts/engine.sh")], check=True, timeout=120)
    assert engine_up()

    reset = finished(hub, "VolumeReset", "eli-cache", 90, interval=0.5)  # backoff is capped at 60 s
    assert reset.get("phase") == "Succeeded", reset
    assert reset["resetVolumes"] == ["cache"]
    names = {v.name for v in docker.from_env().volumes.list(filters={"label": f"{naming.LABEL_USER}=eli"})}
    assert hub.volume_name("eli", "cache") not in names and hub.volume_name("eli", "home") in names
    # And the hub still spawns: the engine is back for everyone.
    hub.start_server("eli")
