"""Every environment variable the platform reads, in one typed model.

One piece: the model is the one list of settings (the README's table is generated from it),
so it stays in one module however many variables there are.

Part of the leaf package `vocabulary`, so the hub configuration, the spawner and the
reconciler all read the same settings. A bad value raises
`SettingsError`, whose message names the variable and what it accepts.
"""

from __future__ import annotations

import re
import zlib
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import naming

DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
VOLUME_KEY = re.compile(naming.VOLUME_KEY_PATTERN)

DEFAULT_USER_VOLUMES = {
    "home": "/home",
    "workspace": "/home/lab/workspace",
    "cache": "/home/lab/.cache",
}

DEFAULT_VOLUME_DESCRIPTIONS = {
    "home": "Home directory: settings and conda environments",
    "workspace": "Workspace: notebooks and project files",
    "cache": "Cache: downloaded packages and other caches",
}


class GpuMode(IntEnum):
    OFF = 0
    ON = 1
    AUTO = 2


class SettingsError(Exception):
    """A setting has a bad value; the message is meant for the person starting the hub."""


def _parse_mapping(value: object) -> object:
    """Accept `key=value,key=value` as well as JSON for map-valued variables."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        import json

        return json.loads(text)
    pairs = {}
    for item in text.split(","):
        key, sep, val = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


class Settings(BaseSettings):
    """The platform's settings; the field's alias is its environment variable."""

    # Only the documented names (the aliases) are read: a stray `HUB_PORT` or `ADMIN` in the
    # environment must not become a setting.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    # --- the hub ---------------------------------------------------------------------
    admin: str = Field(
        "admin", alias="JUPYTERHUB_ADMIN", description="The admin account, created at start-up (never by sign-up)"
    )
    admin_password: SecretStr | None = Field(
        None,
        alias="JUPYTERHUB_ADMIN_PASSWORD",
        description="The admin's first password (used only when the account does not exist); unset: one is "
        "generated into the state folder's `admin-password` and printed by `make up`",
    )
    base_url: str = Field("/", alias="JUPYTERHUB_BASE_URL", description="URL prefix of the hub")
    bind_ip: str = Field("127.0.0.1", alias="JUPYTERHUB_BIND_IP", description="Address the public proxy listens on")
    port: int = Field(8000, ge=1, le=65535, alias="JUPYTERHUB_PORT", description="Port the public proxy listens on")
    hub_ip: str = Field("127.0.0.1", alias="JUPYTERHUB_HUB_IP", description="Address the hub's internal API listens on")
    hub_port: int = Field(
        8081, ge=1, le=65535, alias="JUPYTERHUB_HUB_PORT", description="Port of the hub's internal API"
    )
    proxy_api_port: int = Field(
        8001, ge=1, le=65535, alias="JUPYTERHUB_PROXY_API_PORT", description="Port of the proxy's REST API (localhost)"
    )
    hub_connect_ip: str = Field(
        "", alias="JUPYTERHUB_HUB_CONNECT_IP", description="Address user servers use to reach the hub (named network)"
    )
    state_dir: Path = Field(
        Path(".state"), alias="JUPYTERHUB_STATE_DIR", description="Folder of the hub's database, secrets and logs"
    )
    db_url: str = Field(
        "", alias="JUPYTERHUB_DB_URL", description="Database URL; empty means SQLite in the state folder"
    )
    cleanup_servers: bool = Field(
        False, alias="JUPYTERHUB_CLEANUP_SERVERS", description="Stop user servers when the hub stops"
    )
    named_server_limit: int = Field(
        0, ge=0, alias="JUPYTERHUB_NAMED_SERVER_LIMIT", description="Named servers per user; 0 disables them"
    )
    platform_id: str = Field(
        "jupyterhub-ds", alias="PLATFORM_ID", description="Label value marking this platform's containers and volumes"
    )

    # --- the JupyterHub release (docs/jupyterhub6.md) -----------------------------------
    jupyterhub_series: Literal["6", "5.5"] = Field(
        "6",
        alias="HUB_JUPYTERHUB",
        description="The JupyterHub release `make up` runs: `6` (in `.venv`), or `5.5` (in `.venv-compat`, for a "
        "deployment that cannot move yet; docs/jupyterhub6.md)",
    )

    # --- NativeAuthenticator ----------------------------------------------------------
    min_password_length: int = Field(
        8, ge=1, alias="NATIVE_AUTH_MIN_PASSWORD_LENGTH", description="Shortest password accepted at sign-up"
    )
    allowed_failed_logins: int = Field(
        5,
        ge=0,
        alias="NATIVE_AUTH_ALLOWED_FAILED_LOGINS",
        description="Failed logins before a lockout; 0 disables lockout",
    )
    lockout_seconds: int = Field(600, ge=1, alias="NATIVE_AUTH_LOCKOUT_SECONDS", description="How long a lockout lasts")

    # --- DockerSpawner ----------------------------------------------------------------
    backend: Literal["docker", "swarm"] = Field(
        "docker",
        alias="PLATFORM_BACKEND",
        description="`docker`: a container per server; `swarm`: a Swarm service per server (DOCKER_HOST: a manager)",
    )
    notebook_image: str = Field(
        "jupyterhub-ds/lab:ds", alias="DOCKER_NOTEBOOK_IMAGE", description="Image of user servers"
    )
    notebook_dir: str = Field(
        "/home/lab/workspace", alias="DOCKER_NOTEBOOK_DIR", description="Folder JupyterLab opens in"
    )
    network_name: str = Field(
        "host", alias="DOCKER_NETWORK_NAME", description="`host`, or a Docker network shared with the hub"
    )
    pull_policy: Literal["ifnotpresent", "never", "always"] = Field(
        "ifnotpresent", alias="DOCKER_PULL_POLICY", description="When the spawner pulls the image"
    )
    container_prefix: str = Field(
        "jupyterlab", alias="DOCKER_CONTAINER_PREFIX", description="Prefix of user container names"
    )
    spawn_timeout: int = Field(
        120, ge=10, alias="DOCKER_SPAWN_TIMEOUT", description="Seconds a server may take to start"
    )
    mem_limit: str = Field(
        "", alias="DOCKER_MEM_LIMIT", description="Memory limit per user container, e.g. 4G; empty: none"
    )
    cpu_limit: float = Field(0, ge=0, alias="DOCKER_CPU_LIMIT", description="CPUs per user container; 0: no limit")
    user_volumes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_USER_VOLUMES),
        alias="USER_VOLUMES",
        description="Per-user volumes, `key=mount,...` or JSON",
    )
    volume_descriptions: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_VOLUME_DESCRIPTIONS),
        alias="USER_VOLUME_DESCRIPTIONS",
        description="What each per-user volume holds (shown before a reset), JSON or `key=text,...`",
    )
    volume_name_template: str = Field(
        "jupyterlab-{username}_{volume}",
        alias="USER_VOLUME_NAME_TEMPLATE",
        description="Name of a per-user volume; `{username}` is escaped",
    )
    shared_volume: str = Field(
        "", alias="SHARED_VOLUME_NAME", description="Volume mounted in every server (e.g. CIFS); empty: none"
    )
    shared_volume_mount: str = Field(
        "/mnt/shared", alias="SHARED_VOLUME_MOUNT", description="Where the shared volume is mounted"
    )
    docker_socket: str = Field(
        "/var/run/docker.sock",
        alias="DOCKER_SOCKET_PATH",
        description="Engine socket given to `docker-privileged` members",
    )

    # --- GPU --------------------------------------------------------------------------
    gpu_mode: GpuMode = Field(GpuMode.AUTO, alias="ENABLE_GPU_SUPPORT", description="0 off, 1 on, 2 auto-detect")
    gpu_detect_timeout: float = Field(
        10.0, gt=0, le=120, alias="GPU_DETECT_TIMEOUT", description="Seconds auto-detection may take"
    )

    # --- the reconciler ---------------------------------------------------------------
    manifests_dir: str = Field(
        "", alias="MANIFESTS_DIR", description="Folder of desired-state manifests, watched (GitOps); empty: none"
    )
    gitops_prune: bool = Field(
        False, alias="GITOPS_PRUNE", description="Delete resources whose manifest left MANIFESTS_DIR"
    )
    resync_seconds: float = Field(
        30, ge=1, le=3600, alias="RESYNC_SECONDS", description="Interval of the reconciler's full resync"
    )
    reconciler_port: int = Field(
        8090, ge=1, le=65535, alias="RECONCILER_PORT", description="Port of the reconciler's /health and /metrics"
    )
    reconciler_workers: int = Field(
        4,
        ge=1,
        le=64,
        alias="RECONCILER_WORKERS",
        description="Workers of the fast lane: revocation, engine access, broadcasts, idle culling, groups, "
        "policies, restarts, resets",
    )
    reconciler_slow_workers: int = Field(
        2,
        ge=1,
        le=64,
        alias="RECONCILER_SLOW_WORKERS",
        description="Workers of the slow lane: backups, restores, backup schedules, rollouts",
    )
    reconcile_deadline: float = Field(
        300,
        ge=1,
        le=86400,
        alias="RECONCILE_DEADLINE",
        description="Seconds one reconcile of a fast-lane kind may take before it is cancelled (revocations, "
        "restarts and resets get at least twice DOCKER_SPAWN_TIMEOUT + 60, broadcasts BROADCAST_DEADLINE + 60)",
    )
    reconcile_slow_deadline: float = Field(
        22200,  # above backups' default activeDeadlineSeconds (6 h): the helper's own deadline ends it first
        ge=1,
        le=604800,
        alias="RECONCILE_SLOW_DEADLINE",
        description=(
            "Seconds one reconcile of a slow-lane kind may take before it is cancelled "
            "(keep it above the backups' `activeDeadlineSeconds`)"
        ),
    )
    reconciler_test_hooks: bool = Field(
        False,
        alias="RECONCILER_TEST_HOOKS",
        description="For tests only, never in production: a resource labelled `jupyterhub-ds/test-hang: <seconds>` "
        "hangs that long in its reconcile, ignoring cancellation (a stuck worker)",
    )

    events_max_age_days: float = Field(
        30, gt=0, alias="EVENTS_MAX_AGE_DAYS", description="Events older than this are deleted"
    )
    events_max_rows: int = Field(
        100_000, ge=100, alias="EVENTS_MAX_ROWS", description="At most this many events are kept (the newest)"
    )
    events_max_per_subject: int = Field(
        1000,
        ge=10,
        alias="EVENTS_MAX_PER_SUBJECT",
        description="At most this many events are kept per user (the newest), so one user's requests cannot push "
        "out anyone else's history",
    )
    deliveries_max_age_days: float = Field(
        30, gt=0, alias="DELIVERIES_MAX_AGE_DAYS", description="Broadcast delivery records older than this are deleted"
    )
    deliveries_max_rows: int = Field(
        500_000,
        ge=1000,
        alias="DELIVERIES_MAX_ROWS",
        description="At most this many broadcast delivery records are kept (the newest)",
    )

    # --- privileged access ------------------------------------------------------------
    privileged_drift_policy: Literal["restart", "stop", "report"] = Field(
        "restart",
        alias="PRIVILEGED_DRIFT_POLICY",
        description="A server with the socket whose user left docker-privileged: restart, stop or report",
    )
    engine_access_allowed: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        alias="ENGINE_ACCESS_ALLOWED",
        description="Containers (names or globs, comma-separated) allowed the engine socket and the host's network "
        "besides the platform's servers: the platform's own (hub, Traefik, Watchtower)",
    )
    privileged_restart_on_grant: bool = Field(
        False,
        alias="PRIVILEGED_RESTART_ON_GRANT",
        description="Restart a new member's running server to add the socket",
    )

    # --- broadcasts -------------------------------------------------------------------
    broadcast_concurrency: int = Field(
        50, ge=1, le=1000, alias="BROADCAST_CONCURRENCY", description="Notifications sent at the same time"
    )
    broadcast_attempt_timeout: float = Field(
        5, gt=0, le=60, alias="BROADCAST_ATTEMPT_TIMEOUT", description="Seconds one delivery attempt may take"
    )
    broadcast_deadline: float = Field(
        60, gt=0, le=3600, alias="BROADCAST_DEADLINE", description="Seconds a broadcast keeps retrying a server"
    )

    # --- idle culling (seed policy and the activity that feeds every policy) ---------
    idle_culler_enabled: bool = Field(
        False,
        alias="JUPYTERHUB_IDLE_CULLER_ENABLED",
        description="Seed a built-in IdleCullPolicy `idle-culler` for everyone from the JUPYTERHUB_IDLE_CULLER_* "
        "variables (priority -1000: any policy you write wins over it)",
    )
    idle_culler_timeout: int = Field(
        86400,
        ge=60,
        alias="JUPYTERHUB_IDLE_CULLER_TIMEOUT",
        description="Seed policy: stop a server idle this many seconds",
    )
    idle_culler_interval: float = Field(
        600,
        ge=1,
        le=86400,
        alias="JUPYTERHUB_IDLE_CULLER_INTERVAL",
        description="Seconds between two looks at every server's activity (each policy also wakes at its next "
        "warning or stop)",
    )
    idle_culler_max_age: int = Field(
        0,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_MAX_AGE",
        description="Seed policy: stop any server this many seconds old; 0: never",
    )
    idle_culler_max_extension: float = Field(
        24,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_MAX_EXTENSION",
        description="Seed policy: hours a user may keep their server beyond its idle deadline",
    )
    idle_culler_warn_before: int = Field(
        600,
        ge=0,
        alias="JUPYTERHUB_IDLE_CULLER_WARN_BEFORE",
        description="Seed policy: seconds before the stop that a notice is shown in JupyterLab; 0: none",
    )
    last_activity_interval: int = Field(
        300,
        ge=1,
        alias="JUPYTERHUB_LAST_ACTIVITY_INTERVAL",
        description="Seconds between the hub's reads of the proxy's per-server activity",
    )
    activity_interval: int = Field(
        300,
        ge=1,
        alias="JUPYTERHUB_ACTIVITY_INTERVAL",
        description="Seconds between a lab's own activity reports to the hub (kernels, terminals)",
    )
    activity_resolution: int = Field(
        30,
        ge=0,
        alias="JUPYTERHUB_ACTIVITY_RESOLUTION",
        description="Activity less than this many seconds newer than the recorded one is not written",
    )

    # --- backups ----------------------------------------------------------------------
    backup_location: str = Field(
        "",
        alias="BACKUP_LOCATION",
        description="Where backup archives go: `volume:<name>` (a named volume) or an absolute folder on the "
        "engine's host; empty: the named volume `<PLATFORM_ID>-backups`",
    )
    backup_concurrency: int = Field(
        2, ge=1, le=64, alias="BACKUP_CONCURRENCY", description="Volume backups and restores run at the same time"
    )
    backup_helper_image: str = Field(
        "jupyterhub-ds/base:bookworm",
        alias="BACKUP_HELPER_IMAGE",
        description="Image of the short-lived backup helper containers (tar, gzip, python3, timeout; never pulled)",
    )
    backup_user_max: int = Field(
        3,
        ge=1,
        le=1000,
        alias="BACKUP_USER_MAX",
        description="A user's own backups (taken before their resets) kept per user; a newer one that succeeded "
        "removes the oldest beyond this, archives first",
    )
    backup_user_ttl_seconds: int = Field(
        14 * 24 * 3600,
        ge=0,
        alias="BACKUP_USER_TTL_SECONDS",
        description="Seconds after it finished when a user's own backup is deleted with its archives; 0 keeps it "
        "(until BACKUP_USER_MAX pushes it out)",
    )
    volume_sizes_max_age: float = Field(
        60.0,
        ge=0,
        alias="VOLUME_SIZES_MAX_AGE",
        description="Seconds the hub reuses one survey of volume sizes (the engine's disk usage) for Manage Volumes",
    )

    # --- automation -------------------------------------------------------------------
    automation_token: SecretStr | None = Field(
        None, alias="HUB_AUTOMATION_TOKEN", description="Token of the `automation` service; unset: no such service"
    )
    automation_admin: bool = Field(
        False,
        alias="HUB_AUTOMATION_ADMIN",
        description="Also let `automation` manage the hub's users, servers and groups (admin:users, "
        "admin:servers, admin:groups)",
    )

    @field_validator("user_volumes", "volume_descriptions", mode="before")
    @classmethod
    def _mapping(cls, value: object) -> object:
        return _parse_mapping(value)

    @field_validator("engine_access_allowed", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        for pattern in value if isinstance(value, list) else []:
            if isinstance(pattern, str) and not pattern.strip("*?[]!"):
                # A bare wildcard would allow every container: the survey would see nothing.
                raise ValueError(f"{pattern!r} matches every container name; list the platform's own containers")
        return value

    @field_validator("gpu_mode", mode="before")
    @classmethod
    def _gpu_mode(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/', e.g. / or /jupyterhub/")
        return value if value.endswith("/") else value + "/"

    @field_validator("admin")
    @classmethod
    def _admin(cls, value: str) -> str:
        value = value.strip().lower()
        problem = naming.username_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("network_name")
    @classmethod
    def _network(cls, value: str) -> str:
        if value in ("bridge", "none"):
            raise ValueError(
                "allowed values: `host`, or the name of a user-defined Docker network "
                f"(the default `{value}` network gives containers no route to the hub by name)"
            )
        if not DOCKER_NAME.match(value):
            raise ValueError("allowed values: `host`, or a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        return value

    @field_validator("platform_id", "container_prefix")
    @classmethod
    def _docker_name(cls, value: str) -> str:
        if not DOCKER_NAME.match(value):
            raise ValueError("must be usable in Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        return value

    @field_validator("backup_location")
    @classmethod
    def _backup_location(cls, value: str) -> str:
        if value.startswith("volume:"):
            if not DOCKER_NAME.match(value.removeprefix("volume:")):
                raise ValueError("`volume:` must be followed by a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        elif value and not value.startswith("/"):
            raise ValueError("must be `volume:<name>`, an absolute folder on the engine's host, or empty")
        return value

    @field_validator("shared_volume")
    @classmethod
    def _shared(cls, value: str) -> str:
        if value and not DOCKER_NAME.match(value):
            raise ValueError("must be a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*) or empty")
        return value

    @field_validator("user_volumes")
    @classmethod
    def _volumes(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one per-user volume is needed, e.g. home=/home")
        for key, mount in value.items():
            if not VOLUME_KEY.match(key):
                raise ValueError(f"volume key {key!r} must match [a-z0-9][a-z0-9_-]*")
            if not mount.startswith("/"):
                raise ValueError(f"mount point of {key!r} must be an absolute path, got {mount!r}")
        return value

    @field_validator("volume_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            sample = value.format(username="u", volume="v")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"only {{username}} and {{volume}} may be used ({e})") from None
        if "{username}" not in value or "{volume}" not in value:
            raise ValueError("must contain both {username} and {volume}")
        if not DOCKER_NAME.match(sample):
            raise ValueError("must give a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
        return value

    @field_validator("mem_limit")
    @classmethod
    def _mem(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d+[KMGT]?", value.upper()):
            raise ValueError("must be a size such as 512M or 4G, or empty")
        return value.upper()

    @field_validator("admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value

    @field_validator("automation_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        token = value.get_secret_value()
        if len(token) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        if low_entropy(token):
            raise ValueError("is too predictable (repeated or patterned); use e.g. `openssl rand -hex 32`")
        return value

    @model_validator(mode="after")
    def _shared_not_user_volume(self) -> Settings:
        if self.shared_volume and self.shared_volume_mount in self.user_volumes.values():
            raise ValueError("SHARED_VOLUME_MOUNT must differ from every per-user mount point")
        return self

    # --- derived ----------------------------------------------------------------------
    @property
    def swarm(self) -> bool:
        return self.backend == "swarm"

    @property
    def host_network(self) -> bool:
        return self.network_name == "host"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.state_dir.resolve() / 'jupyterhub.sqlite'}"

    @property
    def proxy_url(self) -> str:
        """The proxy as seen from this host (the reconciler runs beside the hub)."""
        host = "127.0.0.1" if self.bind_ip in ("0.0.0.0", "", "::") else self.bind_ip
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        return f"http://{self.bind_ip}:{self.port}{self.base_url}"


def low_entropy(secret: str) -> bool:
    """A secret that is long but guessable: few distinct characters, or a repeated pattern
    (it compresses well). `openssl rand -hex 32` has 16 distinct characters and does not."""
    if len(set(secret)) < 10:
        return True
    return len(zlib.compress(secret.encode(), 9)) < 0.6 * len(secret)


def _explain(error: ValidationError) -> str:
    """One line per bad variable, naming it and the value it had."""
    lines = []
    for err in error.errors():
        loc = err["loc"][0] if err["loc"] else ""
        field = Settings.model_fields.get(str(loc))
        name = (field.alias if field else None) or str(loc) or "settings"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "enum":
            message = "allowed values: 0 (off), 1 (on), 2 (auto-detect)"
        value = err.get("input")
        secret = name in ("HUB_AUTOMATION_TOKEN", "JUPYTERHUB_ADMIN_PASSWORD")
        shown = "" if secret or isinstance(value, dict) else f"='{value}'"
        lines.append(f"invalid setting {name}{shown}: {message}")
    return "\n".join(lines)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read settings from `environ` (default: the process environment)."""
    try:
        if environ is None:
            return Settings()
        fields = {f.alias for f in Settings.model_fields.values()}
        return Settings.model_validate({k: v for k, v in environ.items() if k in fields})
    except ValidationError as e:
        raise SettingsError(_explain(e)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows, for the README and `hubctl settings`."""
    rows = []
    for field in Settings.model_fields.values():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, dict):
            default = ",".join(f"{k}={v}" for k, v in default.items())
        elif isinstance(default, list):
            default = ",".join(default)
        elif isinstance(default, GpuMode):
            default = int(default)
        elif default is None:
            default = ""
        rows.append((field.alias or "", str(default), field.description or ""))
    return rows
