"""A container's create request: no way out of it (the shared field rules in
`container_rules`, then what only a user with `limited` access is refused), its names are
the user's, its limits within the quota, its labels the owner's."""

from __future__ import annotations

import copy
from typing import Any

from ..container_rules import escalations, host_config_facts
from .model import SHARED, Quota, View, human, image_key, labelled, not_yours, owner_of, rule

# The shared rules' fields (a Finding names one of these).
SHARED_RULES = {
    r.field: r
    for r in (
        rule("HostConfig.Privileged", "privileged mode (`--privileged`)"),
        rule("HostConfig.CapAdd", "added capabilities (`--cap-add`)"),
        rule("HostConfig.Devices", "host devices (`--device`)"),
        rule("HostConfig.DeviceCgroupRules", "device cgroup rules (`--device-cgroup-rule`)"),
        rule("HostConfig.SecurityOpt", "unconfined seccomp or AppArmor, SELinux labelling disabled"),
        rule("HostConfig.PidMode", "the host's PID namespace, or another owner's container's"),
        rule("HostConfig.IpcMode", "the host's IPC namespace, or another owner's container's"),
        rule("HostConfig.UTSMode", "the host's UTS namespace, or another owner's container's"),
        rule("HostConfig.NetworkMode", "the host's network, or another owner's container's"),
    )
}
USERNS = rule("HostConfig.UsernsMode", "the host's user namespace (`--userns=host`)")
SYSCTLS = rule("HostConfig.Sysctls", "sysctls (`--sysctl`)")
CGROUP_PARENT = rule("HostConfig.CgroupParent", "another cgroup parent (outside the quota)")
CGROUPNS = rule("HostConfig.CgroupnsMode", "the host's cgroup namespace")
DEVICE_REQUESTS = rule("HostConfig.DeviceRequests", "device requests (`--gpus`)")
MASKED = rule("HostConfig.MaskedPaths", "unmasked system paths (`--security-opt systempaths=unconfined`)")
READONLY = rule("HostConfig.ReadonlyPaths", "writable system paths")
RUNTIME = rule("HostConfig.Runtime", "a runtime other than the engine's default")
OOM = rule("HostConfig.OomScoreAdj", "a negative OOM score (others killed first)")
ANNOTATIONS = rule("HostConfig.Annotations", "OCI annotations to the runtime")
LOG_DRIVER = rule("HostConfig.LogConfig.Type", "log drivers other than json-file and local")
BINDS = rule("HostConfig.Binds", "host paths bound in (`-v /path:/in`), or other owners' volumes")
MOUNTS = rule("HostConfig.Mounts", "bind mounts of host paths, volume driver options, other owners' volumes")
VOLUME_DRIVER = rule("HostConfig.VolumeDriver", "volume drivers (`--volume-driver`)")
VOLUMES_FROM = rule("HostConfig.VolumesFrom", "volumes of another owner's container")
LINKS = rule("HostConfig.Links", "links to another owner's container")
PORTS = rule("HostConfig.PortBindings", "ports published on host addresses the settings do not allow")
PUBLISH_ALL = rule("HostConfig.PublishAllPorts", "publishing every port on every address (`-P`)")
COUNT = rule("containers", "more containers than the quota's count", 409)
MEMORY = rule("HostConfig.Memory", "more memory than the quota, per container or in total", 409)
CPUS = rule("HostConfig.NanoCpus", "more CPUs than the quota, per container or in total", 409)
SWAP = rule("HostConfig.MemorySwap", "swap beyond the memory limit (`--memory-swap`)", 409)
PIDS = rule("HostConfig.PidsLimit", "more processes than the quota (`--pids-limit`)", 409)
LOG_DRIVERS = {"", "json-file", "local"}
DEFAULT_NETWORKS = {"", "default", "bridge", "none"}


def _no_way_out(host: dict[str, Any], user: str, view: View) -> None:
    for found in escalations(host_config_facts(host), ()):
        if found.code == "join":
            target = host[found.field.split(".", 1)[1]].split(":", 1)[1]
            if owner_of(view.containers, target) == user:
                continue  # a sidecar of the user's own container
        raise SHARED_RULES[found.field].refuse(f"{found.text} is not allowed")
    if (host.get("UsernsMode") or "") == "host":
        raise USERNS.refuse("the host's user namespace is not allowed")
    for value, which in (
        (host.get("Sysctls"), SYSCTLS),
        (host.get("CgroupParent"), CGROUP_PARENT),
        (host.get("DeviceRequests"), DEVICE_REQUESTS),
        (host.get("Annotations"), ANNOTATIONS),
        (host.get("VolumeDriver"), VOLUME_DRIVER),
    ):
        if value:
            raise which.refuse(f"{value!r} is not allowed")
    if (host.get("CgroupnsMode") or "") == "host":
        raise CGROUPNS.refuse("the host's cgroup namespace is not allowed")
    for value, which in ((host.get("MaskedPaths"), MASKED), (host.get("ReadonlyPaths"), READONLY)):
        if value is not None:
            raise which.refuse("the engine's defaults only")
    if (host.get("Runtime") or "runc") != "runc":
        raise RUNTIME.refuse(f"{host['Runtime']!r} is not allowed")
    if (host.get("OomScoreAdj") or 0) < 0:
        raise OOM.refuse(f"{host['OomScoreAdj']} is not allowed (0 or more)")
    if ((host.get("LogConfig") or {}).get("Type") or "") not in LOG_DRIVERS:
        raise LOG_DRIVER.refuse(f"{host['LogConfig']['Type']!r} is not allowed")


def _volume(name: str, user: str, view: View, which: Any, new: list[str]) -> None:
    owner = owner_of(view.volumes, name)
    if owner is None:
        new.append(name)  # the engine would make it unlabelled: the policy's caller makes it first
    elif owner != user:
        raise which.refuse(f"the volume {name} is not yours")


def _mounts(host: dict[str, Any], user: str, view: View) -> list[str]:
    """The named volumes to make first; refuses host paths and other owners' volumes."""
    new: list[str] = []
    for bind in host.get("Binds") or []:
        source = bind.split(":", 1)[0] if ":" in bind else ""
        if "/" in source:
            raise BINDS.refuse(f"the host path {source} ({bind}) is not allowed")
        if source:
            _volume(source, user, view, BINDS, new)
    for m in host.get("Mounts") or []:
        kind, source = m.get("Type") or "volume", m.get("Source") or ""
        if kind not in ("volume", "tmpfs"):
            raise MOUNTS.refuse(f"a {kind} mount ({source or m.get('Target')}) is not allowed")
        if (m.get("VolumeOptions") or {}).get("DriverConfig"):
            raise MOUNTS.refuse(f"volume driver options ({source}) are not allowed")
        if kind == "volume" and source:
            _volume(source, user, view, MOUNTS, new)
    for ref in host.get("VolumesFrom") or []:
        if owner_of(view.containers, ref.split(":", 1)[0]) != user:
            raise VOLUMES_FROM.refuse(f"the container {ref} is not yours")
    for link in host.get("Links") or []:
        if owner_of(view.containers, link.split(":", 1)[0]) != user:
            raise LINKS.refuse(f"the container {link} is not yours")
    return sorted(set(new))


def _ports(host: dict[str, Any], quota: Quota) -> None:
    allowed = quota.publish_addresses
    if host.get("PublishAllPorts") and "0.0.0.0" not in allowed:
        raise PUBLISH_ALL.refuse(f"every address is not allowed (only {', '.join(sorted(allowed))})")
    for port, bindings in (host.get("PortBindings") or {}).items():
        for b in bindings or []:
            ip = (b or {}).get("HostIp") or "0.0.0.0"
            if ip not in allowed:
                raise PORTS.refuse(f"{port} on {ip} is not allowed (only {', '.join(sorted(allowed)) or 'none'})")


def _networks(host: dict[str, Any], body: dict[str, Any], user: str, view: View) -> None:
    names = [host.get("NetworkMode") or ""]
    names += list(((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).keys())
    for name in names:
        if name not in DEFAULT_NETWORKS and ":" not in name and owner_of(view.networks, name) != user:
            raise not_yours("network", name)


def _cpus(host: dict[str, Any]) -> float:
    if host.get("NanoCpus"):
        return host["NanoCpus"] / 1e9
    if host.get("CpuQuota", 0) > 0:
        return host["CpuQuota"] / (host.get("CpuPeriod") or 100_000)
    return 0.0


def _quota(host: dict[str, Any], quota: Quota, view: View) -> None:
    """Defaults applied to `host` in place; refuses what is over the quota, with the numbers."""
    used = view.usage
    if quota.max_containers is not None and used.containers + 1 > quota.max_containers:
        raise COUNT.refuse(f"{used.containers} of at most {quota.max_containers} exist; remove one first")
    if not host.get("Memory") and (quota.default_memory or quota.memory):
        host["Memory"] = quota.default_memory or quota.memory
    if not _cpus(host) and (quota.default_cpus or quota.cpus):
        host["NanoCpus"] = int((quota.default_cpus or quota.cpus or 0) * 1e9)
    memory, cpus = host.get("Memory") or 0, _cpus(host)
    _swap_and_pids(host, memory, quota)
    if quota.memory is not None and memory > quota.memory:
        raise MEMORY.refuse(f"{human(memory)} ({memory}) asked, at most {human(quota.memory)} ({quota.memory}) each")
    if quota.total_memory is not None and (not memory or used.memory + memory > quota.total_memory):
        asked = human(memory) if memory else "no limit"
        raise MEMORY.refuse(f"{human(used.memory)} in use + {asked} > {human(quota.total_memory)} in total")
    if quota.cpus is not None and cpus > quota.cpus:
        raise CPUS.refuse(f"{cpus:g} CPUs asked, at most {quota.cpus:g} each")
    if quota.total_cpus is not None and (not cpus or used.cpus + cpus > quota.total_cpus):
        asked = f"{cpus:g}" if cpus else "no limit"
        raise CPUS.refuse(f"{used.cpus:g} CPUs in use + {asked} > {quota.total_cpus:g} in total")


def _swap_and_pids(host: dict[str, Any], memory: int, quota: Quota) -> None:
    """Swap is memory too: no more of it than the limit (the engine's default is as much
    again). Processes: the quota's default when none is asked (0 or less: unlimited)."""
    swap = host.get("MemorySwap") or 0
    if memory:
        if swap == -1 or swap > memory:
            raise SWAP.refuse(f"{swap} asked with a memory limit of {memory}: no swap beyond it")
        host["MemorySwap"] = memory
    pids = host.get("PidsLimit") or 0
    if quota.pids is not None:
        if pids > quota.pids:
            raise PIDS.refuse(f"{pids} asked, at most {quota.pids}")
        if pids <= 0:
            host["PidsLimit"] = quota.pids


def create(body: Any, user: str, quota: Quota, view: View) -> tuple[dict[str, Any], list[str]]:
    """(the body to send, the named volumes to make first), or `Refused`."""
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    host = body.setdefault("HostConfig", {}) or {}
    body["HostConfig"] = host
    _no_way_out(host, user, view)
    new = _mounts(host, user, view)
    _ports(host, quota)
    _networks(host, body, user, view)
    image = body.get("Image") or ""
    if owner_of(view.images, image_key(image)) not in (None, SHARED, user):
        raise not_yours("image", image)  # the CLI then pulls it (unless the platform reserves it)
    if owner_of(view.images, image) not in (None, SHARED, user):
        raise not_yours("image", image)
    _quota(host, quota, view)
    body["Labels"] = labelled(body.get("Labels"), view.platform, user)
    return body, new
