"""Every environment variable the platform reads, in one typed model, `Settings`, composed
of its sections (one module each: the hub, the users' servers, the reconciler, operations);
the README's table is generated from it, in the sections' order.

Part of the leaf package `vocabulary`, so the hub configuration, the spawner and the
reconciler all read the same settings. A bad value raises
`SettingsError`, whose message names the variable and what it accepts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from .docker_proxy import DockerProxySettings
from .fields import (
    DEFAULT_USER_VOLUMES,
    DEFAULT_VOLUME_DESCRIPTIONS,
    GpuMode,
    SettingsError,
    low_entropy,
)
from .hub import AutomationSettings, HubSettings
from .operations import OperationsSettings
from .quotas import QuotaSettings
from .reconciler import ReconcilerSettings
from .spawner import SpawnerSettings
from .usage import UsageSettings

__all__ = [
    "DEFAULT_USER_VOLUMES",
    "DEFAULT_VOLUME_DESCRIPTIONS",
    "GpuMode",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
    "low_entropy",
    "settings_table",
]


# Fields come in the order of the bases from the last to the first: the hub's first.
class Settings(
    AutomationSettings,
    DockerProxySettings,
    QuotaSettings,
    UsageSettings,
    OperationsSettings,
    ReconcilerSettings,
    SpawnerSettings,
    HubSettings,
):
    """The platform's settings; the field's alias is its environment variable."""

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
    def docker_proxy_root(self) -> Path:
        """The folder of the per-user Docker proxy sockets (`naming.docker_proxy_dir`)."""
        return (self.docker_proxy_dir or self.state_dir / "docker-proxy").resolve()

    @property
    def proxy_url(self) -> str:
        """The proxy as seen from this host (the reconciler runs beside the hub)."""
        host = "127.0.0.1" if self.bind_ip in ("0.0.0.0", "", "::") else self.bind_ip
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        return f"http://{self.bind_ip}:{self.port}{self.base_url}"


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
