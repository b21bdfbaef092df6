"""The production deployment files: compose.yml, its override example, compose.local.yml (the
registry-less run of `make deploy`), the hub's Dockerfile and its health check.

`scripts/compose-check.sh` runs Docker Compose v2's own validation; the rest reads the files
and checks what the platform relies on, against the settings model the hub itself uses.
No engine and no images are needed.
"""

from __future__ import annotations

import importlib.util
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


class ComposeLoader(yaml.SafeLoader):
    """YAML with compose's `!reset` tag (an override that empties a value), read as that value."""


ComposeLoader.add_constructor(
    "!reset",
    lambda loader, node: (
        loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else None
    ),
)


def load_yaml(name: str) -> dict[str, Any]:
    return yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)  # a SafeLoader


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
        source, target, *mode = with_defaults(spec).split(":")
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
    assert result.stdout.count("ok: ") == 3, result.stdout
    assert "ok: compose.yml + compose.local.yml" in result.stdout


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
    assert hub["build"]["context"] == "." and hub["build"]["dockerfile"] == "docker/hub/Dockerfile"
    assert with_defaults(hub["build"]["args"]["BASE_IMAGE"]) == "python:3.11-slim-bookworm"
    assert hub["image"] == "${HUB_IMAGE:-jupyterhub-ds/hub:latest}"
    assert hub["restart"] == "unless-stopped"
    volumes = mounts(hub)
    assert volumes[SOCKET] == f"{SOCKET}:rw"
    assert volumes["/data"] == "jupyterhub_data:rw"
    assert hub_env["JUPYTERHUB_STATE_DIR"] == "/data"
    # The manifests folder (GitOps), read-only: the reconciler watches it.
    assert volumes[hub_env["MANIFESTS_DIR"]] == "./manifests:ro"
    # User servers reach the hub by its container name, on the network named for them.
    container = with_defaults(hub["container_name"])
    assert hub_env["JUPYTERHUB_HUB_CONNECT_IP"] == container == "jupyterhub"
    assert hub_env["DOCKER_NETWORK_NAME"] in hub["networks"]
    assert compose["networks"][hub_env["DOCKER_NETWORK_NAME"]]["name"] == hub_env["DOCKER_NETWORK_NAME"]
    assert {name: with_defaults(v["name"]) for name, v in compose["volumes"].items()} == {
        "jupyterhub_data": "jupyterhub_data",
        "jupyterhub_shared": "jupyterhub_shared",
    }
    # The engine-access watch stops any other container with the socket: the hub's own
    # name (whatever HUB_CONTAINER_NAME makes it), Traefik's and Watchtower's are allowed.
    allowed = load_settings(hub_env).engine_access_allowed
    assert hub["environment"]["ENGINE_ACCESS_ALLOWED"].startswith("${HUB_CONTAINER_NAME:-jupyterhub},")
    names = {container, compose["services"]["traefik"]["container_name"]}
    assert names | {compose["services"]["watchtower"]["container_name"]} <= set(allowed)
    assert volumes[hub_env["SHARED_VOLUME_MOUNT"]] == f"{hub_env['SHARED_VOLUME_NAME']}:rw"
    assert hub_env["JUPYTERHUB_CLEANUP_SERVERS"] == "false"


def test_hub_environment_is_valid_settings(hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    raw = hub["environment"]
    assert set(hub_env) <= SETTINGS_VARIABLES, "unknown variables (typos?)"
    for name, default in {
        "JUPYTERHUB_ADMIN": "admin",
        "ENABLE_GPU_SUPPORT": "2",
        "DOCKER_NOTEBOOK_IMAGE": "jupyterhub-ds/lab:ds",
        "HUB_AUTOMATION_TOKEN": "",
    }.items():
        assert raw[name] == f"${{{name}:-{default}}}", f"{name} should be settable from .env"
    settings = load_settings(hub_env)  # raises SettingsError, naming the variable
    assert settings.base_url == "/jupyterhub/"
    assert settings.bind_ip == settings.hub_ip == "0.0.0.0"
    assert not settings.host_network
    assert settings.automation_token is None


def load_healthcheck() -> Any:
    spec = importlib.util.spec_from_file_location("jhds_healthcheck", ROOT / "docker/hub/healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hub_healthcheck_probes_the_hub_and_the_reconciler(hub: dict[str, Any], hub_env: dict[str, str]) -> None:
    assert hub["healthcheck"]["test"] == ["CMD", "jhds-healthcheck"]
    assert with_defaults(hub["healthcheck"]["interval"]) == "30s"
    urls = load_healthcheck().urls(load_settings(hub_env))
    port = Settings.model_fields["reconciler_port"].default
    assert urls == ["http://127.0.0.1:8000/jupyterhub/hub/health", f"http://127.0.0.1:{port}/health"]


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
    assert "configurable-http-proxy" in (ROOT / "docker/hub/install-deps.sh").read_text()
    assert "EXPOSE 8000" in lines
    assert "WORKDIR /data" in lines
    cmd = next(line for line in lines if line.startswith("CMD "))
    config = re.search(r'"-f", "([^"]+)"', cmd).group(1)
    assert f"/hub_config/jupyterhub_config.py {config}" in text, "the config file must be put where CMD reads it"
    # The entry point checks the settings and the store schema, then runs CMD.
    assert 'ENTRYPOINT ["jhds-hub-start"]' in lines
    assert "docker/hub/start.py /usr/local/bin/jhds-hub-start" in text
    assert "docker/hub/healthcheck.py /usr/local/bin/jhds-healthcheck" in text
    assert any(line.startswith("HEALTHCHECK ") and line.endswith('CMD ["jhds-healthcheck"]') for line in lines)
    # Offline inputs are optional: the production build (repository root) has none.
    assert "docker/hub/offlin[e]" in text


def test_hub_image_script_builds_offline_and_caches_on_its_inputs() -> None:
    text = (ROOT / "scripts/hub-image.sh").read_text()
    assert "--network none" in text and "HUB_BASE_IMAGE" in text
    assert '--label "$KEY_LABEL=$hub_key"' in text
    # `make images` and `make deploy` build it; `make up` (the host hub) does not wait for it.
    assert '"$ROOT/scripts/hub-image.sh"' in (ROOT / "scripts/images.sh").read_text()
    assert "scripts/images.sh --hub" in (ROOT / "Makefile").read_text()
    assert '"$ROOT/scripts/images.sh" --hub' in (ROOT / "scripts/deploy.sh").read_text()
    assert '"$ROOT/scripts/images.sh"\n' in (ROOT / "scripts/up.sh").read_text()


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    return load_yaml("compose.local.yml")


def test_local_override_runs_the_hub_alone_on_the_host_network(local: dict[str, Any], hub_env: dict[str, str]) -> None:
    services = local["services"]
    assert services["traefik"]["profiles"] == ["traefik"], "Traefik is left out (no registry)"
    hub = services["jupyterhub"]
    assert hub["network_mode"] == "host"
    assert hub["networks"] == {}  # `!reset {}`: the bridge network cannot be created here
    env = as_mapping(hub["environment"])
    settings = load_settings({**hub_env, **env})
    assert settings.host_network and settings.bind_ip == settings.hub_ip == "127.0.0.1"
    assert settings.base_url == "/" and settings.port == 8000
    # The same variables as `make up`: ports from the environment, the rest through the env
    # file scripts/deploy.sh writes (optional, so plain `docker compose config` works).
    for name in ("JUPYTERHUB_PORT", "JUPYTERHUB_HUB_PORT", "JUPYTERHUB_PROXY_API_PORT", "RECONCILER_PORT"):
        assert hub["environment"][name].startswith(f"${{{name}:-"), name
    assert hub["env_file"] == [{"path": "${DEPLOY_ENV_FILE:-.state/deploy.env}", "required": False}]
    assert "DEPLOY_ENV_FILE" in (ROOT / "scripts/deploy.sh").read_text()
    assert hub["labels"]["io.jupyterhub-ds.port"] == "${JUPYTERHUB_PORT:-8000}"


def test_dockerignore_keeps_local_state_out_of_the_hub_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".state", ".venv", "tests", "benchmarks", ".env", "compose.override.yml"} <= ignored
    assert "docker/hub/offline" in ignored  # a stray offline build folder never reaches production
    assert not {"hub_config", "reconciler", "pyproject.toml"} & ignored
