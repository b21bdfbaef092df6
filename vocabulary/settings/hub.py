"""Settings of the hub itself, its sign-in (NativeAuthenticator) and its automation service."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, SecretStr, field_validator
from pydantic_settings import NoDecode

from .. import naming
from .fields import DockerName, Section, low_entropy, parse_list

_PERIODS = {"second": 1, "minute": 60, "hour": 3600}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(?:(second|minute|hour)|(\d+)\s*s)\s*$")


@dataclass(frozen=True)
class Rate:
    """At most `count` events in any `seconds`; a count of 0 is no limit."""

    count: int
    seconds: int

    def __str__(self) -> str:
        if not self.count:
            return "0"
        names = {v: k for k, v in _PERIODS.items()}
        return f"{self.count}/{names.get(self.seconds, f'{self.seconds}s')}"


def parse_rate(value: Any) -> Rate:
    """`10/minute`, `100/hour`, `5/30s`; `0` or `off`: no limit."""
    if isinstance(value, Rate):
        return value
    text = str(value).strip().lower()
    if text in ("0", "off", ""):
        return Rate(0, 60)
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError("must be N/second, N/minute, N/hour or N/<seconds>s (e.g. 10/minute), or 0 for no limit")
    count, period, seconds = match.groups()
    span = _PERIODS[period] if period else int(seconds)
    if not 1 <= span <= 86400:
        raise ValueError("the period must be between 1 second and 1 day")
    return Rate(int(count), span)


_PROXY_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.:-]*(/[0-9]{1,3})?$")
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(parse_rate), PlainSerializer(str)]


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
    # --- the hub's own limits (JupyterHub's options; docs/operations.md) -----------------
    concurrent_spawn_limit: int = Field(
        10,
        ge=0,
        alias="JUPYTERHUB_CONCURRENT_SPAWN_LIMIT",
        description="Servers starting at once; more are told to retry (429). 10, not JupyterHub's 100 (sized for "
        "Kubernetes): on one host every start is an engine create and a Jupyter boot on the same cores, so a class "
        "logging in together queues briefly instead of slowing every start to a timeout; 0: no limit",
    )
    active_server_limit: int = Field(
        60,
        ge=0,
        alias="JUPYTERHUB_ACTIVE_SERVER_LIMIT",
        description="Servers running (or starting, or stopping) at once; more are refused (429) until one stops. "
        "60 is about what one 64 GB host holds at the ~1 GB a working data-science lab takes (JupyterHub's own "
        "default, no limit, lets the host run out of memory instead); size it to your host, 0: no limit",
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
    one_time_password_days: float = Field(
        7,
        gt=0,
        le=3650,
        alias="ONE_TIME_PASSWORD_DAYS",
        description="Days a Roster's one-time password may be used to sign in after it is made; then login with it "
        "is refused and the Roster makes a new one (docs/roster.md)",
    )
    allowed_failed_logins: int = Field(
        5,
        ge=0,
        alias="NATIVE_AUTH_ALLOWED_FAILED_LOGINS",
        description="Failed logins before a lockout; 0 disables lockout",
    )
    lockout_seconds: int = Field(600, ge=1, alias="NATIVE_AUTH_LOCKOUT_SECONDS", description="How long a lockout lasts")

    # --- sign-in rate limits (docs/security.md) ----------------------------------------
    login_rate_limit: RateSetting = Field(
        Rate(30, 60),
        alias="LOGIN_RATE_LIMIT",
        description="Login attempts per client address (N/minute, N/hour, N/<seconds>s); a successful login does "
        "not count; beyond it 429 with Retry-After. On top of the per-account lockout; 0: no limit",
    )
    signup_rate_limit: RateSetting = Field(
        Rate(10, 60),
        alias="SIGNUP_RATE_LIMIT",
        description="Sign-up attempts per client address, like LOGIN_RATE_LIMIT. A class signing up together behind "
        "one NAT address needs more (or its accounts made by an admin)",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        alias="HUB_TRUSTED_PROXIES",
        description="Reverse proxies in front of the hub's public port whose X-Forwarded-For names the client "
        "(addresses, networks such as 10.0.0.0/8, or host names resolved each minute; compose: "
        "jupyterhub-traefik). The hub's own proxy is always believed, a header from anyone else never",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        value = parse_list(value)
        for item in value if isinstance(value, list) else []:
            if isinstance(item, str) and item.strip() in ("0.0.0.0/0", "::/0", "*"):
                raise ValueError(f"{item!r} would believe any client's X-Forwarded-For; list the proxies themselves")
            if isinstance(item, str) and not _PROXY_RE.match(item):
                raise ValueError(f"{item!r} is not an address, a network (a.b.c.d/n) or a host name")
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
