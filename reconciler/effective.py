"""The effective policy of a user: how the GroupPolicies of all their groups combine.

Defined once, here, and used by the spawner (what a server gets), the drift survey (what a
running server should have) and `hubctl get effective` (what an admin sees):

| field         | rule when several policies apply                                   |
|---------------|--------------------------------------------------------------------|
| memory, cpus  | the largest                                                        |
| gpus          | the largest count; ids: the union                                  |
| images        | the union, highest priority first; the first is the default        |
| volumes       | the union; a volume in several: the highest priority's mount       |
| environment   | per name, the highest priority's value                             |
| dockerAccess  | the most: privileged > limited > none (only docker-privileged's    |
|               | may say privileged; `dockerSocket: true` is privileged)            |
| dockerQuota   | per field, the largest, over the policies saying limited or giving |
|               | a quota; a field a policy leaves out is DEFAULT_DOCKER_QUOTA's     |
| quota,storage | most generous per limit / per volume kind: `quotas.py` (not part   |
|               | of the policy hash: they bound use, not what a server gets)        |

A server that gets the socket takes images, volumes and environment from the policies of
the socket groups alone (`withheld` names the others): only those need `admin:groups` to
write, so `write:policies` never decides what runs in a container holding the socket.

Ties in priority are broken by the policy name (alphabetical first wins), so the result
never depends on the order policies were listed or applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vocabulary.scopes import SOCKET_GROUPS

from .api.grouppolicy import DOCKER_LEVELS, DockerAccessLevel, DockerQuotaSpec, GroupPolicySpec, memory_bytes


@dataclass(frozen=True)
class NamedGroupPolicy:
    name: str
    spec: GroupPolicySpec


@dataclass(frozen=True)
class DockerQuota:
    """A `limited` user's combined quota (the fields of `docker_requests.Quota`)."""

    max_containers: int
    memory: int  # bytes, per container
    cpus: float
    total_memory: int
    total_cpus: float
    default_memory: int
    default_cpus: float
    build_context: int  # bytes

    def as_dict(self) -> dict[str, float]:
        return {
            "containers": self.max_containers,
            "memory": self.memory,
            "cpus": self.cpus,
            "totalMemory": self.total_memory,
            "totalCpus": self.total_cpus,
            "defaultMemory": self.default_memory,
            "defaultCpus": self.default_cpus,
            "buildContext": self.build_context,
        }


@dataclass
class Effective:
    """What a server of one user gets from the policies; empty when none applies."""

    policies: list[str]
    memory: int | None = None  # bytes
    cpus: float | None = None
    gpu_count: int | None = None
    gpu_ids: list[str] | None = None
    images: list[str] | None = None  # None: no policy restricts images (the platform's default)
    volumes: dict[str, dict[str, Any]] | None = None  # name -> {mount, readOnly}
    environment: dict[str, str] | None = None
    docker_socket: bool = False  # the engine socket (the spawner also checks membership)
    docker_access: DockerAccessLevel = "none"  # privileged exactly when docker_socket
    # Limited only: applied live by the proxy, so not part of the hash (no restart for it).
    docker_quota: DockerQuota | None = None
    # Policies whose images, volumes and environment a server holding the socket does not get.
    withheld: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Canonical JSON form (what the hash covers and what the container's label holds)."""
        data = {
            "policies": self.policies,
            "memory": self.memory,
            "cpus": self.cpus,
            "gpuCount": self.gpu_count,
            "gpuIds": self.gpu_ids,
            "images": self.images,
            "volumes": self.volumes,
            "environment": self.environment,
            "dockerSocket": True if self.docker_socket else None,  # absent when false: hashes unchanged
            # The proxy's directory is mounted at spawn: a server started without it drifts.
            "dockerAccess": "limited" if self.docker_access == "limited" else None,
            "withheld": self.withheld,
        }
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    @property
    def default_image(self) -> str | None:
        return self.images[0] if self.images else None


def ordered(policies: Iterable[NamedGroupPolicy]) -> list[NamedGroupPolicy]:
    """Highest priority first; equal priorities by name."""
    return sorted(policies, key=lambda p: (-p.spec.priority, p.name))


def applying(groups: Iterable[str], policies: Iterable[NamedGroupPolicy]) -> list[NamedGroupPolicy]:
    """The policies that apply to a member of `groups`, highest priority first."""
    mine = set(groups)
    return ordered(p for p in policies if not p.spec.suspend and mine.intersection(p.spec.groups))


def combine(groups: Iterable[str], policies: Iterable[NamedGroupPolicy]) -> Effective:
    """The effective policy of a member of `groups` (see the module's table)."""
    found = applying(groups, policies)
    eff = Effective(policies=[p.name for p in found])
    eff.docker_access = max((p.spec.docker_level for p in found), key=DOCKER_LEVELS.index, default="none")
    eff.docker_socket = eff.docker_access == "privileged"
    if eff.docker_access == "limited":
        eff.docker_quota = docker_quota([p.spec for p in found])
    for p in found:
        s = p.spec
        _limits(eff, s)
        if eff.docker_socket and not SOCKET_GROUPS.intersection(s.groups):
            eff.withheld = [*(eff.withheld or []), p.name]  # what runs beside the socket is the admins'
            continue
        if s.images:
            eff.images = (eff.images or []) + [i for i in s.images if i not in (eff.images or [])]
        for name, volume in s.volumes.items():
            eff.volumes = eff.volumes or {}
            eff.volumes.setdefault(name, volume.model_dump(mode="json", by_alias=True))
        for key, value in s.environment.items():
            eff.environment = eff.environment or {}
            eff.environment.setdefault(key, value)  # found is highest priority first
    return eff


def docker_quota(specs: Iterable[GroupPolicySpec]) -> DockerQuota:
    """The most generous of the quotas of the policies saying `limited` or giving a quota,
    field by field (each with the defaults filled in); the defaults when none does."""
    giving = [s for s in specs if s.docker_quota is not None or s.docker_level == "limited"]
    quotas = [(s.docker_quota or DockerQuotaSpec()).resolved() for s in giving] or [DockerQuotaSpec().resolved()]
    top = {name: max(q[name] for q in quotas) for name in quotas[0]}
    return DockerQuota(
        max_containers=int(top["containers"]),
        memory=int(top["memory"]),
        cpus=top["cpus"],
        total_memory=int(top["total_memory"]),
        total_cpus=top["total_cpus"],
        default_memory=int(top["default_memory"]),
        default_cpus=top["default_cpus"],
        build_context=int(top["build_context"]),
    )


def _limits(eff: Effective, s: GroupPolicySpec) -> None:
    """Memory, CPUs and GPUs: the largest (they bound a server, they run nothing in it)."""
    if s.resources and s.resources.memory is not None:
        eff.memory = max(eff.memory or 0, memory_bytes(s.resources.memory))
    if s.resources and s.resources.cpus is not None:
        eff.cpus = max(eff.cpus or 0.0, s.resources.cpus)
    if s.gpus and s.gpus.count is not None:
        eff.gpu_count = max(eff.gpu_count or 0, s.gpus.count)
    if s.gpus and s.gpus.ids:
        eff.gpu_ids = sorted(set(eff.gpu_ids or []) | set(s.gpus.ids))


def policy_hash(eff: Effective) -> str:
    """16 hex digits of the sha256 of the effective policy's canonical JSON."""
    canonical = json.dumps(eff.as_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def allowed_images(eff: Effective, platform_default: str) -> list[str]:
    """What a user may start: the policies' images, or only the platform's default image."""
    return list(eff.images) if eff.images else [platform_default]


def image_problem(image: str, eff: Effective, platform_default: str) -> str | None:
    """Why `image` may not be started for this user, or None."""
    allowed = allowed_images(eff, platform_default)
    if image in allowed:
        return None
    return f"The image {image} is not allowed for you. Allowed: {', '.join(allowed)}."


def differences(was: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What changed between two effective policies (their `as_dict` forms), one line per
    field: `memory: 2147483648 -> 4294967296`, `environment.X: added`..."""
    out = []
    for field in sorted(set(was) | set(now)):
        old, new = was.get(field), now.get(field)
        if old == new or field == "policies":
            continue
        if isinstance(old, dict) or isinstance(new, dict):
            old, new = old or {}, new or {}
            for key in sorted(set(old) | set(new)):
                if key not in old:
                    out.append(f"{field}.{key}: added")
                elif key not in new:
                    out.append(f"{field}.{key}: removed")
                elif old[key] != new[key]:
                    out.append(f"{field}.{key}: {json.dumps(old[key])} -> {json.dumps(new[key])}")
        else:
            out.append(f"{field}: {json.dumps(old)} -> {json.dumps(new)}")
    if was.get("policies") != now.get("policies") and not out:
        out.append(f"policies: {was.get('policies', [])} -> {now.get('policies', [])}")
    return out
