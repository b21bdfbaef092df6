"""The engine restarting under the reconciler: it retries, then converges. Runs last (zz):
it stops and starts the machine's Docker engine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import pytest

from tests.harness import ROOT, Hub, own_hub, wait_for
from vocabulary import naming

PLATFORM = "jhds-test-engine"


def engine_up() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def engine_hub(engine, tmp_path) -> Iterator[Hub]:
    with own_hub(engine, tmp_path / "state", PLATFORM, {"RESYNC_SECONDS": "3"}) as hub:
        try:
            yield hub
        finally:
            if not engine_up():  # never leave the machine without an engine
                subprocess.run([str(ROOT / "scripts/engine.sh")], check=True, timeout=120)


def test_engine_restart_mid_reconcile_recovers_and_converges(engine_hub: Hub, tmp_path) -> None:
    hub = engine_hub
    hub.create_user("eli")
    hub.start_server("eli")
    hub.stop_server("eli")  # eli has volumes now

    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=True)
    wait_for(lambda: not engine_up(), 60, "the engine stopped answering")
    try:
        manifest = tmp_path / "reset.yaml"
        manifest.write_text(
            "apiVersion: jupyterhub-ds/v1\nkind: VolumeReset\nmetadata: {name: eli-cache}\n"
            "spec: {user: eli, volumes: [cache]}\n"
        )
        assert hub.hubctl("apply", "-f", str(manifest)).returncode == 0

        def retrying():
            status = hub.api("GET", "resources/volumereset/eli-cache").json().get("status") or {}
            return any(c["reason"] == "Retrying" for c in status.get("conditions", []))

        wait_for(retrying, 30, "the reconciler reports that it retries while the engine is away")
    finally:
        subprocess.run([str(ROOT / "scripts/engine.sh")], check=True, timeout=120)
    assert engine_up()

    def finished():
        status = hub.api("GET", "resources/volumereset/eli-cache").json().get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_for(finished, 90, "the reset finished", interval=0.5)  # backoff is capped at 60 s
    assert status.get("phase") == "Succeeded", status
    assert status["resetVolumes"] == ["cache"]
    names = {v.name for v in docker.from_env().volumes.list(filters={"label": f"{naming.LABEL_USER}=eli"})}
    assert hub.volume_name("eli", "cache") not in names and hub.volume_name("eli", "home") in names
    # And the hub still spawns: the engine is back for everyone.
    hub.start_server("eli")
