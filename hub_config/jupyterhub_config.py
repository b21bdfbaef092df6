"""JupyterHub configuration, built from `vocabulary.settings` (start with `jupyterhub -f <this file>`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hub_config
from hub_config import gpu
from hub_config.handlers import HANDLERS
from reconciler.clients.hub import PAGE_LIMIT
from vocabulary import naming, scopes
from vocabulary.settings import Settings, SettingsError, get_settings

# The reconciler service: only what its controllers need.
RECONCILER_SCOPES = [
    "list:users",
    "read:users:name",
    "read:servers",  # is a server running? (restarts, resets); its last activity (idle culling)
    "read:users:groups",  # whose idle-culling policy governs a server
    "read:users:activity",
    "servers",  # stop and start servers (ServerRestart)
    "admin:groups",
    scopes.ADMIN_USERS,  # Rosters and removals create and delete users (docs/roster.md); UserRename renames
]

# The `automation` service applies manifests: the platform's scopes only. Managing the hub's
# users, servers and groups too is a second, explicit opt-in (HUB_AUTOMATION_ADMIN).
AUTOMATION_SCOPES = [scopes.WRITE]
AUTOMATION_ADMIN_SCOPES = ["admin:users", "admin:servers", "admin:groups"]


def hub_renames_named_servers() -> bool:
    """JupyterHub 6 has `allow_existing_invalid_named_servers`; 5.x would warn of an unknown option."""
    from jupyterhub.app import JupyterHub

    return JupyterHub.class_traits().get("allow_existing_invalid_named_servers") is not None


def apply_settings(c: Any, s: Settings) -> None:
    """Fill JupyterHub's config object `c` from the settings."""
    s.state_dir.resolve().mkdir(mode=0o700, parents=True, exist_ok=True)
    _hub(c, s)
    _authenticator(c, s)
    _spawner(c, s)
    _platform(c, s)
    _automation(c, s)


def _hub(c: Any, s: Settings) -> None:
    """The hub and its proxy: addresses, database, state, groups."""
    c.JupyterHub.bind_url = s.public_url
    c.JupyterHub.hub_ip = s.hub_ip
    c.JupyterHub.hub_port = s.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    if s.hub_connect_ip:
        c.JupyterHub.hub_connect_ip = s.hub_connect_ip
    c.JupyterHub.db_url = s.database_url
    state = s.state_dir.resolve()
    state.chmod(0o700)  # password hashes, secrets and logs: nobody else's business
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    # User servers outlive a hub restart (upgrades, Watchtower); `make down` stops them.
    c.JupyterHub.cleanup_servers = s.cleanup_servers
    # One host's limits (docs/operations.md); JupyterHub answers 429 beyond them.
    c.JupyterHub.concurrent_spawn_limit = s.concurrent_spawn_limit
    c.JupyterHub.active_server_limit = s.active_server_limit
    c.JupyterHub.allow_named_servers = s.named_server_limit > 0
    c.JupyterHub.named_server_limit_per_user = s.named_server_limit
    if hub_renames_named_servers():
        # JupyterHub 6 restricts server names. Renaming the stopped servers whose names it
        # refuses is safe here: all a server keeps (volumes, placement, backups, keep-alive)
        # is its user's, and containers are removed at stop (docs/jupyterhub6.md).
        c.JupyterHub.allow_existing_invalid_named_servers = "autorename"
    c.JupyterHub.custom_scopes = scopes.DEFINITIONS
    # Lists of users and groups in one request: a resync costs the hub O(1) requests.
    c.JupyterHub.api_page_max_limit = PAGE_LIMIT
    # What idle culling reads: how often the hub asks the proxy for activity, and how small
    # a step of activity is still written.
    c.JupyterHub.last_activity_interval = s.last_activity_interval
    c.JupyterHub.activity_resolution = s.activity_resolution
    # Created at start-up, members untouched; the spawner recreates it if deleted.
    c.JupyterHub.load_groups = {
        naming.PRIVILEGED_GROUP: {"properties": {"description": "Members get the Docker socket in their server"}}
    }


def _authenticator(c: Any, s: Settings) -> None:
    """Sign-up and login (NativeAuthenticator)."""
    c.JupyterHub.authenticator_class = "hub_config.authenticator.PlatformAuthenticator"
    c.Authenticator.username_pattern = naming.USERNAME_PATTERN
    c.Authenticator.admin_users = {s.admin}
    # NativeAuthenticator decides who may log in (approved users); nothing else gates it.
    c.Authenticator.allow_all = True
    c.NativeAuthenticator.enable_signup = True
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = s.min_password_length
    c.NativeAuthenticator.allowed_failed_logins = s.allowed_failed_logins
    c.NativeAuthenticator.seconds_before_next_try = s.lockout_seconds
    c.NativeAuthenticator.check_common_password = True


def _spawner(c: Any, s: Settings) -> None:
    """One container per user server (DockerSpawner, through the platform spawner)."""
    c.JupyterHub.spawner_class = (
        "hub_config.swarm_spawner.SwarmPlatformSpawner" if s.swarm else "hub_config.spawner.PlatformSpawner"
    )
    c.DockerSpawner.image = s.notebook_image
    c.DockerSpawner.pull_policy = s.pull_policy
    c.DockerSpawner.notebook_dir = s.notebook_dir
    c.DockerSpawner.prefix = s.container_prefix
    c.DockerSpawner.remove = True  # containers are cattle; volumes keep the data
    c.DockerSpawner.network_name = s.network_name
    c.DockerSpawner.use_internal_ip = True  # named network: container IP; host: see spawner
    if s.mem_limit:
        c.DockerSpawner.mem_limit = s.mem_limit
    if s.cpu_limit:
        c.DockerSpawner.cpu_limit = s.cpu_limit
    c.Spawner.default_url = "/lab"
    # Labs report kernel and terminal activity to the hub this often (idle culling).
    c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": str(s.activity_interval)}
    c.Spawner.start_timeout = s.spawn_timeout
    c.Spawner.http_timeout = s.spawn_timeout
    if not s.host_network:
        c.Spawner.ip = "0.0.0.0"


def _platform(c: Any, s: Settings) -> None:
    """The platform's pages and REST API, and the reconciler as a hub-managed service."""
    c.JupyterHub.extra_handlers = HANDLERS
    # The installed package's templates: the hub image reads this file from another folder.
    c.JupyterHub.template_paths = [str(Path(hub_config.__file__).resolve().parent / "templates")]
    c.JupyterHub.services = [
        {
            "name": "reconciler",
            "command": [sys.executable, "-m", "reconciler.service"],
            "url": f"http://127.0.0.1:{s.reconciler_port}",
            "environment": service_environment(s),
        }
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "reconciler",
            "description": "The platform's reconciler",
            # A `limited` user's running containers count as their server's activity only if asked.
            "scopes": RECONCILER_SCOPES + (["users:activity"] if s.docker_limited_counts_as_activity else []),
            "services": ["reconciler"],
        },
        {
            "name": "platform-admin",
            "description": "Every kind of the platform's resources (protected groups: with admin:groups)",
            "scopes": [scopes.WRITE],
            "users": [s.admin],
        },
        {
            "name": "platform-operator",
            "description": "Broadcasts, requests for anyone, group memberships (not the protected groups)",
            "scopes": [scopes.WRITE_BROADCASTS, scopes.WRITE_REQUESTS, scopes.WRITE_GROUPS],
            "groups": [scopes.OPERATORS_GROUP],
        },
    ]
    c.JupyterHub.load_groups[scopes.OPERATORS_GROUP] = {
        "properties": {"description": "Members send broadcasts and manage requests and unprotected groups"}
    }


def _automation(c: Any, s: Settings) -> None:
    """The `automation` service (GitOps pipelines, scripts), when its token is set."""
    if s.automation_token is not None:
        c.JupyterHub.services.append({"name": "automation", "api_token": s.automation_token.get_secret_value()})
        c.JupyterHub.load_roles.append(
            {
                "name": "automation",
                "description": "GitOps pipelines and scripts",
                "scopes": AUTOMATION_SCOPES + (AUTOMATION_ADMIN_SCOPES if s.automation_admin else []),
                "services": ["automation"],
            }
        )


def service_environment(s: Settings) -> dict[str, str]:
    """The reconciler reads the same settings as the hub: pass every variable that is set."""
    names = {f.alias for f in Settings.model_fields.values()} | {"PATH", "DOCKER_HOST", "PYTHONPATH"}
    names -= {"HUB_AUTOMATION_TOKEN", "JUPYTERHUB_ADMIN_PASSWORD"}  # the service has its own token
    env = {k: v for k, v in os.environ.items() if k in names}
    env["JUPYTERHUB_DB_URL"] = s.database_url
    env["JUPYTERHUB_STATE_DIR"] = str(s.state_dir.resolve())
    if s.manifests_dir:
        env["MANIFESTS_DIR"] = str(Path(s.manifests_dir).resolve())
    return env


def series_problem(s: Settings, version: str) -> str | None:
    """Why this JupyterHub is not the release the settings ask for (HUB_JUPYTERHUB), if it is not."""
    if version == s.jupyterhub_series or version.startswith(f"{s.jupyterhub_series}."):
        return None
    where = ".venv-compat (make up with HUB_JUPYTERHUB=5.5)" if s.jupyterhub_series == "5.5" else ".venv (make up)"
    return f"HUB_JUPYTERHUB={s.jupyterhub_series}, but this is JupyterHub {version}: start it from {where}"


def _load(c: Any) -> None:
    import jupyterhub

    try:
        settings = get_settings()
        if problem := series_problem(settings, jupyterhub.__version__):
            raise SettingsError(problem)
    except SettingsError as e:
        print(f"jupyterhub: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    apply_settings(c, settings)
    # Start GPU detection now so its one log line comes at start-up, not at first spawn.
    import asyncio

    import docker

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    gpu.decision(settings.gpu_mode, lambda: docker.from_env().info(), settings.gpu_detect_timeout)


if "c" in globals():
    _load(c)  # noqa: F821  (JupyterHub injects `c`)
