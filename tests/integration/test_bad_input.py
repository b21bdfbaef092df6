"""Bad settings, an unreachable engine, a missing image: one clear message, no traceback."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests.harness import ROOT, Hub


def test_bad_setting_stops_make_up_naming_the_variable(tmp_path) -> None:
    hub = Hub(state_dir=tmp_path / "state", extra_env={"ENABLE_GPU_SUPPORT": "7", "JUPYTERHUB_PORT": "99999"})
    result = hub.up()
    assert result.returncode == 2
    assert "invalid setting ENABLE_GPU_SUPPORT='7': allowed values: 0 (off), 1 (on), 2 (auto-detect)" in result.stderr
    assert "invalid setting JUPYTERHUB_PORT='99999'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (hub.state_dir / "jupyterhub.pid").exists()


def test_bad_setting_stops_jupyterhub_itself(tmp_path) -> None:
    env = Hub(state_dir=tmp_path, extra_env={"DOCKER_NETWORK_NAME": "bridge"}).env
    result = subprocess.run(
        [str(ROOT / ".venv/bin/jupyterhub"), "-f", str(ROOT / "hub_config/jupyterhub_config.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("jupyterhub: invalid setting DOCKER_NETWORK_NAME='bridge'")
    assert "Traceback" not in result.stderr


def test_secret_setting_is_never_echoed(tmp_path) -> None:
    hub = Hub(state_dir=tmp_path / "state", token="short-secret-value")
    result = hub.up()
    assert result.returncode == 2
    assert "invalid setting HUB_AUTOMATION_TOKEN: must be at least 32 characters" in result.stderr
    assert "short-secret-value" not in result.stderr + result.stdout


def test_unreachable_engine_is_named() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts/engine.sh")],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "DOCKER_HOST": "tcp://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no Docker engine answers at DOCKER_HOST=tcp://127.0.0.1:9" in result.stderr


@pytest.fixture
def hub_without_image(own_platforms) -> Hub:
    return own_platforms.platform(
        "noimage", {"DOCKER_NOTEBOOK_IMAGE": "jhds-test/no-such-image:1", "DOCKER_PULL_POLICY": "never"}
    )


def test_missing_image_fails_the_spawn_with_a_clear_message(hub_without_image: Hub) -> None:
    hub = hub_without_image
    hub.create_user("gina")
    r = hub.api("POST", "users/gina/server")
    assert r.status_code in (201, 202, 500), r.text
    events = []
    with requests.get(
        f"{hub.url}hub/api/users/gina/server/progress",
        headers={"Authorization": f"token {hub.token}"},
        stream=True,
        timeout=60,
    ) as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("failed") or events[-1].get("ready"):
                    break
    assert events and events[-1].get("failed"), events
    message = events[-1]["message"]
    assert "The server image jhds-test/no-such-image:1 is not on the Docker engine" in message
    assert "make images" in message
