"""GroupPolicy: what the servers of a group's members get (resources, GPUs, environment,
images, volumes, Docker access and its quota) and how many they run at once
(`maxActiveServers`); standing; docs/policies.md. Its spec, its status, its table; how
policies combine is `effective.py` (the server caps: `server_caps.py`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status
from .fields import Duration, GroupName, SpecModel, VolumeKey, unique

# Environment names the hub sets itself (its token, URLs, the server's identity): a policy
# that could set them could impersonate the hub or another user's server.
RESERVED_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_")
_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def memory_bytes(value: str | int) -> int:
    """Docker's memory notation ("8G", "512m", "1.5g", bytes) in bytes (1024-based)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _MEMORY_RE.match(str(value).strip())
    if match is None:
        raise ValueError(f"must be a size such as 512M or 8G (got {value!r})")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])


class PolicyResources(SpecModel):
    memory: str | None = None  # docker mem_limit
    cpus: float | None = Field(None, gt=0, le=1024)  # docker nano_cpus

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> object:
        if value is None:
            return None
        if memory_bytes(value) < 6 * 1024**2:  # the engine's own minimum
            raise ValueError(f"must be at least 6M (got {value!r})")
        return str(value)


class PolicyGpus(SpecModel):
    count: int | None = Field(None, ge=1)
    ids: list[str] = []

    @model_validator(mode="after")
    def _one(self) -> PolicyGpus:
        if (self.count is None) == (not self.ids):
            raise ValueError("set exactly one of count or ids")
        return self


class PolicyVolume(SpecModel):
    mount: str
    read_only: StrictBool = Field(False, alias="readOnly")

    @field_validator("mount")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or ".." in value.split("/") or "," in value or ":" in value:
            raise ValueError(f"must be an absolute path inside the server, e.g. /mnt/datasets (got {value!r})")
        return value.rstrip("/") or "/"


DockerAccessLevel = Literal["none", "limited", "privileged"]
DOCKER_LEVELS: tuple[DockerAccessLevel, ...] = ("none", "limited", "privileged")  # least to most


class DockerQuotaSpec(SpecModel):
    """What a member with `limited` Docker access may use through the platform's proxy
    (`docker_requests.Quota`); a field left out takes `DEFAULT_DOCKER_QUOTA`'s value."""

    containers: int | None = Field(None, ge=1, le=1000)  # existing at once, stopped ones too
    memory: str | None = None  # per container
    cpus: float | None = Field(None, gt=0, le=1024)
    total_memory: str | None = Field(None, alias="totalMemory")
    total_cpus: float | None = Field(None, alias="totalCpus", gt=0, le=4096)
    default_memory: str | None = Field(None, alias="defaultMemory")  # a container asking for none
    default_cpus: float | None = Field(None, alias="defaultCpus", gt=0, le=1024)
    build_context: str | None = Field(None, alias="buildContext")  # an image build's context

    @field_validator("memory", "total_memory", "default_memory", mode="before")
    @classmethod
    def _memory(cls, value: object) -> object:
        if value is not None and memory_bytes(value) < 6 * 1024**2:  # the engine's own minimum
            raise ValueError(f"must be at least 6M (got {value!r})")
        return None if value is None else str(value)

    @field_validator("build_context", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if value is not None and memory_bytes(value) < 1024:
            raise ValueError(f"must be at least 1K (got {value!r})")
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _ordered(self) -> DockerQuotaSpec:
        """A default above its bound, or a bound above its total, could never be used."""
        full = self.resolved()
        pairs = (
            ("defaultMemory", full["default_memory"], "memory", full["memory"]),
            ("memory", full["memory"], "totalMemory", full["total_memory"]),
            ("defaultCpus", full["default_cpus"], "cpus", full["cpus"]),
            ("cpus", full["cpus"], "totalCpus", full["total_cpus"]),
        )
        for low_name, low, high_name, high in pairs:
            if low > high:
                shown = (f"{v / 1024**3:g}G" if "emory" in high_name else f"{v:g}" for v in (low, high))
                raise ValueError(f"{low_name} is above {high_name} ({' > '.join(shown)}), with the defaults filled in")
        return self

    def resolved(self) -> dict[str, float]:
        """Every field, in bytes and CPUs, the defaults filled in."""
        out: dict[str, float] = {}
        for name, default in DEFAULT_DOCKER_QUOTA.items():
            value = getattr(self, name)
            value = default if value is None else value
            out[name] = memory_bytes(value) if isinstance(value, str) else value
        return out


# What `limited` gives without a `dockerQuota`, and each field a quota leaves out: five
# containers whose default limits fit the totals together (docs/policies.md).
DEFAULT_DOCKER_QUOTA: dict[str, str | float] = {
    "containers": 5,
    "memory": "2G",
    "cpus": 1.0,
    "total_memory": "4G",
    "total_cpus": 2.0,
    "default_memory": "512M",
    "default_cpus": 0.4,
    "build_context": "1G",
}


QuotaEnforce = Literal["spawn", "stop"]
MAX_QUOTA_HOURS = 1_000_000.0  # a bound on the input (over a century of one server)
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 3600, 366 * 86400


class QuotaSpec(SpecModel):
    """Per user, over a rolling `window`: how many server-, CPU- and GPU-hours (each
    optional); `enforce`: at 100 % refuse a new spawn (`spawn`) or also stop the running
    servers (`stop`). How they combine across policies: `quotas.combine_quota`."""

    server_hours: float | None = Field(None, alias="serverHours", gt=0, le=MAX_QUOTA_HOURS)
    cpu_hours: float | None = Field(None, alias="cpuHours", gt=0, le=MAX_QUOTA_HOURS)
    gpu_hours: float | None = Field(None, alias="gpuHours", gt=0, le=MAX_QUOTA_HOURS)
    window: Duration = 30 * 86400
    enforce: QuotaEnforce = "spawn"

    @field_validator("window")
    @classmethod
    def _window(cls, value: int) -> int:
        if not MIN_WINDOW_SECONDS <= value <= MAX_WINDOW_SECONDS:
            raise ValueError(f"must be from 1h to 366d (got {value} s)")
        return value

    @model_validator(mode="after")
    def _some(self) -> QuotaSpec:
        if self.server_hours is None and self.cpu_hours is None and self.gpu_hours is None:
            raise ValueError("give at least one of serverHours, cpuHours, gpuHours")
        return self


class StorageLimit(SpecModel):
    """A soft limit on one kind of a user's volumes: warnings at `warnAt` percent of it and,
    past it, the cleanup tools first on the home page. Nothing is refused: the engine's
    local volumes cannot enforce a size (docs/usage.md#quotas)."""

    soft_limit: str = Field(alias="softLimit")
    warn_at: list[int] = Field([80, 95], alias="warnAt")

    @field_validator("soft_limit", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if memory_bytes(value) < 1024**2:  # type: ignore[arg-type]
            raise ValueError(f"must be at least 1M (got {value!r})")
        return str(value)

    @field_validator("warn_at")
    @classmethod
    def _percents(cls, value: list[int]) -> list[int]:
        if not value or len(value) > 5:
            raise ValueError("give one to five percentages, e.g. [80, 95]")
        if any(not 1 <= v <= 100 for v in value) or sorted(set(value)) != value:
            raise ValueError(f"must be rising percentages from 1 to 100, e.g. [80, 95] (got {value})")
        return value

    @property
    def bytes(self) -> int:
        return memory_bytes(self.soft_limit)


class GroupPolicySpec(SpecModel):
    groups: list[GroupName] = Field(json_schema_extra={"minItems": 1})
    priority: int = Field(0, ge=-1000, le=1000)
    # --- caps (docs/policies.md): how many servers the members of each group run at once ---
    max_active_servers: int | None = Field(None, ge=0, le=100_000, alias="maxActiveServers")
    # --- end of caps ---
    resources: PolicyResources | None = None
    gpus: PolicyGpus | None = None
    environment: dict[str, str] = {}
    images: list[str] = []  # offered at spawn; the first is the default
    volumes: dict[str, PolicyVolume] = {}  # Docker volume name -> where it is mounted
    # Docker in the lab: none; limited (the platform's proxy, owner-scoped, within
    # `docker_quota`); privileged (the engine socket, root on the host: only for the groups
    # in scopes.SOCKET_GROUPS). None: not said here (`dockerSocket` may say privileged).
    docker_access: DockerAccessLevel | None = Field(None, alias="dockerAccess")
    docker_quota: DockerQuotaSpec | None = Field(None, alias="dockerQuota")
    # The older spelling of `dockerAccess: privileged`, kept as a synonym.
    docker_socket: StrictBool | None = Field(None, alias="dockerSocket")
    # --- usage (docs/usage.md#quotas): per member, over a rolling window; storage per volume kind ---
    quota: QuotaSpec | None = None
    storage: dict[VolumeKey, StorageLimit] = {}  # volume key (USER_VOLUMES: home, ...) -> soft limit
    suspend: StrictBool = False

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one group")
        return unique(value)

    @field_validator("images")
    @classmethod
    def _images(cls, value: list[str]) -> list[str]:
        for image in value:
            if not image or any(c.isspace() for c in image):
                raise ValueError(f"not an image reference: {image!r}")
        return unique(value)

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ENV_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name.upper().startswith(RESERVED_ENV_PREFIXES):
                raise ValueError(f"{name} is reserved: the hub sets {', '.join(RESERVED_ENV_PREFIXES)}* itself")
        return value

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: dict[str, PolicyVolume]) -> dict[str, PolicyVolume]:
        for name in value:
            if not _VOLUME_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a Docker volume name")
        mounts = [v.mount for v in value.values()]
        if len(set(mounts)) != len(mounts):
            raise ValueError("two volumes are mounted at the same path")
        return value

    @field_validator("docker_access")
    @classmethod
    def _access(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "privileged" and (problem := socket_refusal(info.data.get("groups") or [])):
            raise ValueError(problem)
        return value

    @field_validator("docker_socket")
    @classmethod
    def _socket(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        # Both spellings given must say the same (None: not given; a stored spec has both).
        access = info.data.get("docker_access")
        if value is not None and access is not None and (access == "privileged") != value:
            raise ValueError(
                f"dockerSocket: {str(value).lower()} disagrees with dockerAccess: {access} "
                "(dockerSocket: true means dockerAccess: privileged); write only dockerAccess"
            )
        if value and (problem := socket_refusal(info.data.get("groups") or [])):
            raise ValueError(problem)
        return value

    @property
    def docker_level(self) -> DockerAccessLevel:
        """The Docker access this policy gives, whichever spelling said it."""
        if self.docker_access is not None:
            return self.docker_access
        return "privileged" if self.docker_socket else "none"


def socket_refusal(groups: list[str]) -> str | None:
    """Why a policy of `groups` may not give the Docker socket, or None (docs/policies.md)."""
    allowed = ", ".join(sorted(scopes.SOCKET_GROUPS))
    unprotected = [g for g in groups if g not in scopes.PROTECTED_GROUPS]
    if unprotected:
        return (
            f"only {allowed} may be given the Docker socket (root on the host): {', '.join(unprotected)} is not "
            f"a protected group, its members are added with {scopes.WRITE_GROUPS} alone, so the socket "
            f"would escape {scopes.PROTECTED_GROUPS_SCOPE}"
        )
    others = [g for g in groups if g not in scopes.SOCKET_GROUPS]
    if others:
        return (
            f"only {allowed} may be given the Docker socket (root on the host): {', '.join(others)} is "
            f"protected, but the privileged-access watch takes the socket from anyone outside {allowed}"
        )
    return None


class GroupPolicy(Envelope):
    kind: Literal["GroupPolicy"]
    spec: GroupPolicySpec


class GroupPolicyStatus(Status):
    # Users of the hub the policy applies to now (members of its groups), and how many run a server.
    members: list[str] = []
    running: int = 0
    drifted: int = 0  # running servers of its members that no longer match


KIND = KindInfo(
    GroupPolicy,
    GroupPolicyStatus,
    one_shot=False,
    scope=scopes.WRITE_POLICIES,
    columns=(Column("GROUPS", "spec.groups"), Column("PRIORITY", "spec.priority"), Column("DRIFTED", "status.drifted")),
)
