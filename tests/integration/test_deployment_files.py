"""The production deployment files: compose.yml, its override example, the hub's Dockerfile.

`scripts/compose-check.sh` runs Docker Compose v2's own validation; the rest reads the files
and checks what the platform relies on, against the settings model the hub itself uses.
No engine and no images are needed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from vocabulary.settings import Settings, load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOCKET = "/var/run/docker.sock"
WATCHTOWER_LABEL = ("com.centurylinklabs.watchtower.enable", "true")
SETTINGS_VARIABLES = {field.alias for field in Settings.model_fields.values()}


def load_yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def with_defaults(value: object) -> str:
    """Compose interpolation with nothing set: `${VAR:-default}` -> default, `$$` -> `$`."""
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(value))
    return text.replace("$$", "$")


def as_mapping(items: dict[str, Any] | list[str] | None) -> dict[str, str]:
    """Compose's `environment` or `labels`, in either the map or the list form."""
    if isinstance(items, dict):
        return {k: with_defaults("" if v is None else v) for k, v in items.items()}
    return dict(with_defaults(item).partition("=")[::2] for item in items or [])


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> source:mode of a service's short-syntax volumes."""
    result = {}
    for spec in service.get("volumes", []):
        source, target, *mode = spec.split(":")
        result[target] = f"{source}:{mode[0] if mode else 'rw'}"
    return result


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml("compose.yml")


@pytest.fixture(scope="module")
def hub(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["jupyterhub"]


@pytest.fixture(scope="module")
def hub_env(hub: dict[str, Any]) -> dict[str, str]:
    return as_mapping(hub["environment"])


def test_compose_check_script_passes() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "compose-check.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"compose-check failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.count("ok: ") == 2, result.stdout


def test_traefik_terminates_tls_and_redirects_http(compose: dict[str, Any]) -> None:
    traefik = compose["services"]["traefik"]
    assert re.fullmatch(r"traefik:v3(\.\d+)*", traefik["image"])
    args = set(traefik["command"])
    assert {"--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443"} <= args
    assert "--entrypoints.web.http.redirections.entrypoint.to=websecure" in args
    assert "--entrypoints.websecure.http.tls=true" in args
    assert "--providers.docker.exposedbydefault=false" in args
    assert mounts(traefik)[SOCKET] == f"{SOCKET}:ro"
    ports = {with_defaults(p) for p in traefik["ports"]}
    assert {"80:80", "443:443"} <= ports


def test_traefik_routes_the_base_url_to_the_hub(hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    labels = as_mapping(hub["labels"])
    base = hub_env["JUPYTERHUB_BASE_URL"].rstrip("/")
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.routers.jupyterhub.rule"] == f"PathPrefix(`{base}`)"
    assert labels["traefik.http.routers.jupyterhub.entrypoints"] == "websecure"
    assert labels["traefik.http.routers.jupyterhub.tls"] == "true"
    port = Settings.model_fields["port"].default
    assert labels["traefik.http.services.jupyterhub.loadbalancer.server.port"] == str(port)
    assert "JUPYTERHUB_PORT" not in hub_env or hub_env["JUPYTERHUB_PORT"] == str(port)


def test_hub_service(compose: dict[str, Any], hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    assert hub["build"] == {"context": ".", "dockerfile": "docker/hub/Dockerfile"}
    assert hub["image"] == "jupyterhub-ds/hub:latest"
    assert hub["restart"] == "unless-stopped"
    volumes = mounts(hub)
    assert volumes[SOCKET] == f"{SOCKET}:rw"
    assert volumes["/data"] == "jupyterhub_data:rw"
    assert hub_env["JUPYTERHUB_STATE_DIR"] == "/data"
    # User servers reach the hub by its container name, on the network named for them.
    assert hub_env["JUPYTERHUB_HUB_CONNECT_IP"] == hub["container_name"] == "jupyterhub"
    assert hub_env["DOCKER_NETWORK_NAME"] in hub["networks"]
    assert compose["networks"][hub_env["DOCKER_NETWORK_NAME"]]["name"] == hub_env["DOCKER_NETWORK_NAME"]
    assert {name: v["name"] for name, v in compose["volumes"].items()} == {
        "jupyterhub_data": "jupyterhub_data",
        "jupyterhub_shared": "jupyterhub_shared",
    }
    assert volumes[hub_env["SHARED_VOLUME_MOUNT"]] == f"{hub_env['SHARED_VOLUME_NAME']}:rw"
    assert hub_env["JUPYTERHUB_CLEANUP_SERVERS"] == "false"


def test_hub_environment_is_valid_settings(hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    raw = hub["environment"]
    assert set(hub_env) <= SETTINGS_VARIABLES, "unknown variables (typos?)"
    for name, default in {
        "JUPYTERHUB_ADMIN": "admin",
        "ENABLE_GPU_SUPPORT": "2",
        "DOCKER_NOTEBOOK_IMAGE": "jupyterhub-ds/lab:latest",
        "HUB_AUTOMATION_TOKEN": "",
    }.items():
        assert raw[name] == f"${{{name}:-{default}}}", f"{name} should be settable from .env"
    settings = load_settings(hub_env)  # raises SettingsError, naming the variable
    assert settings.base_url == "/jupyterhub/"
    assert settings.bind_ip == settings.hub_ip == "0.0.0.0"
    assert not settings.host_network
    assert settings.automation_token is None


def test_hub_healthcheck_uses_python_on_the_health_endpoint(hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    test = hub["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    url = f"http://localhost:8000{hub_env['JUPYTERHUB_BASE_URL'].rstrip('/')}/hub/health"
    assert url in test[3]


def test_watchtower_is_opt_in_and_label_scoped(compose: dict[str, Any]) -> None:
    services = compose["services"]
    label, value = WATCHTOWER_LABEL
    watchtower = services["watchtower"]
    assert watchtower["image"].startswith("containrrr/watchtower")
    assert watchtower["profiles"] == ["autoupdate"]
    assert as_mapping(watchtower["environment"])["WATCHTOWER_LABEL_ENABLE"] == "true"
    assert SOCKET in mounts(watchtower)
    labelled = {name for name, s in services.items() if as_mapping(s.get("labels")).get(label) == value}
    assert labelled == {"traefik", "jupyterhub"}


def test_lab_image_is_build_only(compose: dict[str, Any], hub_env: dict[str, str]) -> None:
    lab = compose["services"]["lab-image"]
    assert lab["profiles"] == ["build"]
    assert lab["build"]["context"] == "docker/lab"
    assert (ROOT / "docker/lab" / lab["build"].get("dockerfile", "Dockerfile")).is_file()
    assert lab["image"] == hub_env["DOCKER_NOTEBOOK_IMAGE"]


def test_override_example_mounts_cifs_share_and_enables_gpu(compose: dict[str, Any]) -> None:
    override = load_yaml("compose.override.yml.example")
    hub = override["services"]["jupyterhub"]
    env = as_mapping(hub["environment"])
    assert env["ENABLE_GPU_SUPPORT"] == "1"
    name, mount = env["SHARED_VOLUME_NAME"], env["SHARED_VOLUME_MOUNT"]
    volume = override["volumes"][name]
    assert volume["name"] == name  # the hub asks the engine for it by this name
    assert volume["driver_opts"]["type"] == "cifs"
    assert volume["driver_opts"]["device"].startswith("//")
    assert {"uid=1000", "gid=1000"} <= set(volume["driver_opts"]["o"].split(","))
    # Same target as the base file's shared mount, so compose replaces that one.
    assert mounts(hub)[mount] == f"{name}:rw"
    assert mount in mounts(compose["services"]["jupyterhub"])
    load_settings({**as_mapping(compose["services"]["jupyterhub"]["environment"]), **env})


def test_hub_dockerfile() -> None:
    text = (ROOT / "docker/hub/Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0].startswith("ARG BASE_IMAGE="), "ARG BASE_IMAGE must come before FROM"
    assert lines[1] == "FROM ${BASE_IMAGE}"
    assert "configurable-http-proxy" in text
    assert "EXPOSE 8000" in lines
    assert "WORKDIR /data" in lines
    cmd = next(line for line in lines if line.startswith("CMD "))
    config = re.search(r'"-f", "([^"]+)"', cmd).group(1)
    assert f"/hub_config/jupyterhub_config.py {config}" in text, "the config file must be put where CMD reads it"


def test_dockerignore_keeps_local_state_out_of_the_hub_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".state", ".venv", "tests", "benchmarks", ".env", "compose.override.yml"} <= ignored
    assert not {"hub_config", "reconciler", "pyproject.toml"} & ignored
