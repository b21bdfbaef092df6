"""Spec models of the policies over servers: idle culling, group policies, rollouts.

Kept apart from `resources` (the envelopes and the registry) so that each policy's fields
and rules read on their own.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from vocabulary import scopes

from .fields import Duration, DurationOrZero, GroupName, JobSpec, SpecModel, Username, unique


class UsersAndGroups(SpecModel):
    """Listed users and members of listed groups (broadcast targets, policy selectors)."""

    users: list[Username] = []
    groups: list[GroupName] = []

    @field_validator("users", "groups")
    @classmethod
    def _unique_lists(cls, value: list[str]) -> list[str]:
        return unique(value)


class ServerSelector(UsersAndGroups):
    """Whose servers a policy covers: members of any listed group, and the listed users."""

    @model_validator(mode="after")
    def _not_empty(self) -> ServerSelector:
        if not self.users and not self.groups:
            raise ValueError("must list users or groups (omit selector to cover everyone)")
        return self

    def matches(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return user in self.users or bool(groups.intersection(self.groups))


class IdleCullPolicySpec(SpecModel):
    selector: ServerSelector | None = None  # None: every user
    idle_timeout: Duration = Field(alias="idleTimeout")
    max_age: DurationOrZero = Field(0, alias="maxAge")  # 0: no age limit
    warn_before: DurationOrZero = Field(600, alias="warnBefore")  # 0: no notice
    max_extension: DurationOrZero = Field(8 * 3600, alias="maxExtension")  # 0: users cannot keep servers
    priority: int = Field(0, ge=-1000, le=1000)
    dry_run: StrictBool = Field(False, alias="dryRun")
    suspend: StrictBool = False

    @model_validator(mode="after")
    def _warning_fits(self) -> IdleCullPolicySpec:
        if self.warn_before and self.warn_before >= self.idle_timeout:
            raise ValueError(
                f"warnBefore ({self.warn_before} s) must be shorter than idleTimeout ({self.idle_timeout} s)"
            )
        if self.warn_before and self.max_age and self.warn_before >= self.max_age:
            raise ValueError(f"warnBefore ({self.warn_before} s) must be shorter than maxAge ({self.max_age} s)")
        return self

    def covers(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return self.selector is None or self.selector.matches(user, groups)


# --- GroupPolicy: what a server gets (docs/policies.md) --------------------------------------

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


class GroupPolicySpec(SpecModel):
    groups: list[GroupName] = Field(json_schema_extra={"minItems": 1})
    priority: int = Field(0, ge=-1000, le=1000)
    resources: PolicyResources | None = None
    gpus: PolicyGpus | None = None
    environment: dict[str, str] = {}
    images: list[str] = []  # offered at spawn; the first is the default
    volumes: dict[str, PolicyVolume] = {}  # Docker volume name -> where it is mounted
    # The engine socket, root on the host: only for the groups in scopes.SOCKET_GROUPS.
    docker_socket: StrictBool = Field(False, alias="dockerSocket")
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

    @field_validator("docker_socket")
    @classmethod
    def _socket(cls, value: bool, info: ValidationInfo) -> bool:
        if value and (problem := socket_refusal(info.data.get("groups") or [])):
            raise ValueError(problem)
        return value


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


# --- RolloutRestart: restart what must be, a few at a time ----------------------------------


class RolloutSelector(SpecModel):
    """Exactly one of: the drifted servers, members of groups, listed users, everyone."""

    drifted: StrictBool | None = None
    groups: list[GroupName] = []
    users: list[Username] = []
    all: StrictBool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RolloutSelector:
        chosen = [bool(self.drifted), bool(self.groups), bool(self.users), bool(self.all)]
        if sum(chosen) != 1:
            raise ValueError("set exactly one of drifted: true, groups, users or all: true")
        return self


class RolloutRestartSpec(JobSpec):
    selector: RolloutSelector
    max_unavailable: int = Field(1, alias="maxUnavailable", ge=1, le=100)
    skip_active_within: DurationOrZero = Field(0, alias="skipActiveWithin")  # 0: nobody counts as active
    # What to do with a server still active when its turn comes (it is put last first).
    when_active: Literal["Skip", "Wait"] = Field("Skip", alias="whenActive")
    warn_before: DurationOrZero = Field(120, alias="warnBefore")  # 0: no notice
