"""Settings of the hub itself, its sign-in (NativeAuthenticator) and its automation service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .. import naming
from .fields import DockerName, Section, low_entropy


class HubSettings(Section):
    """The hub: where it listens, its state, its admin, its sign-in."""

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
    platform_id: DockerName = Field(
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

    @field_validator("admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value


class AutomationSettings(Section):
    """The `automation` service: its token and what it may do."""

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
