"""What in a container's configuration gives it power over the host: one set of field rules
for the engine-wide watch (`controllers/engineaccess`, over what the engine recorded) and
the Docker request policy (`docker_requests`, over what a request asks for).

Both read the same facts: `host_config_facts` takes a `HostConfig`, which has one shape in
a container's inspection and in a create request's body.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

UNCONFINED = {"seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"}
# (fact, the HostConfig field it comes from, the namespace's name)
NAMESPACES = (
    ("pid_mode", "PidMode", "PID"),
    ("ipc_mode", "IpcMode", "IPC"),
    ("uts_mode", "UTSMode", "UTS"),
    ("network_mode", "NetworkMode", "network"),
)


@dataclass(frozen=True)
class Finding:
    code: str  # socket, socket-parent, privileged, <ns>-host, join, caps, devices, unconfined, volume-bind
    text: str  # what an admin reads in the event
    field: str = ""  # the HostConfig field it comes from (what a refused request is told)


def host_config_facts(host: dict[str, Any]) -> dict[str, Any]:
    """The facts of a `HostConfig` the rules read (empty values: absent)."""
    return {
        "privileged": bool(host.get("Privileged")),
        "pid_mode": host.get("PidMode") or "",
        "ipc_mode": host.get("IpcMode") or "",
        "uts_mode": host.get("UTSMode") or "",
        "network_mode": host.get("NetworkMode") or "",
        "cap_add": [c for c in host.get("CapAdd") or [] if c],
        "devices": [d.get("PathOnHost") or "?" for d in host.get("Devices") or []],
        "device_rules": [r for r in host.get("DeviceCgroupRules") or [] if r],
        "security_opt": [o for o in host.get("SecurityOpt") or [] if o],
    }


def volume_bind_path(info: dict[str, Any]) -> str | None:
    """The host path behind a volume of the `local` driver mounted with `o=bind` (a host
    folder under a volume's name), else None."""
    options = info.get("Options") or {}
    binds = {o.strip() for o in (options.get("o") or "").split(",")} & {"bind", "rbind"}
    return (options.get("device") or "?") if info.get("Driver") == "local" and binds else None


def guarded_paths(socket_path: str | Sequence[str]) -> tuple[set[str], set[str]]:
    """(the sockets' paths, their parent folders): a bind of any of them reaches an engine.
    On Swarm every node's socket counts (the node label io.jupyterhub-ds.socket)."""
    paths = [socket_path] if isinstance(socket_path, str) else list(socket_path)
    sockets = {p for path in paths for p in (os.path.normpath(path), os.path.realpath(path))}
    parents: set[str] = set()
    for path in sockets:
        while path not in ("/", ""):
            path = os.path.dirname(path)
            parents.add(path)
    return sockets, parents


def _host_paths(c: dict[str, Any], sockets: set[str], parents: set[str]) -> list[Finding]:
    found = []
    binds = [(source, "") for source in c.get("sources") or []]
    binds += [(path, f" through the volume {name}") for name, path in (c.get("volume_binds") or {}).items()]
    for source, via in binds:
        normal = os.path.normpath(source) if source else source
        if normal in sockets:
            found.append(Finding("socket", f"the engine socket ({source}){via}", "Mounts"))
        elif normal in parents:
            found.append(Finding("socket-parent", f"a parent folder of the engine socket ({source}){via}", "Mounts"))
        elif via:
            found.append(Finding("volume-bind", f"the host path {source}{via}", "Mounts"))
    return found


def namespaces(c: dict[str, Any]) -> list[Finding]:
    """The host's namespaces, or another container's (`join`: the proxy judges whose)."""
    found = []
    for fact, field, namespace in NAMESPACES:
        mode = c.get(fact) or ("host" if fact == "pid_mode" and c.get("pid_host") else "")
        if mode == "host":
            text = f"the host's {namespace} namespace"
            found.append(Finding(f"{namespace.lower()}-host", text, f"HostConfig.{field}"))
        elif mode.startswith("container:"):
            text = f"another container's {namespace} namespace ({mode[:22]})"
            found.append(Finding("join", text, f"HostConfig.{field}"))
    return found


def escalations(c: dict[str, Any], socket_path: str | Sequence[str]) -> list[Finding]:
    """What gives this container power over the host, or over another container (empty:
    nothing), from its facts (`host_config_facts`, plus `sources`: host paths bound in, and
    `volume_binds`: {volume: the host path it binds})."""
    sockets, parents = guarded_paths(socket_path)
    found = [Finding("privileged", "privileged mode", "HostConfig.Privileged")] if c.get("privileged") else []
    found += namespaces(c)
    if c.get("cap_add"):
        text = f"added capabilities ({', '.join(sorted(c['cap_add']))})"
        found.append(Finding("caps", text, "HostConfig.CapAdd"))
    if c.get("devices"):
        found.append(Finding("devices", f"host devices ({', '.join(c['devices'])})", "HostConfig.Devices"))
    if c.get("device_rules"):
        text = f"device cgroup rules ({', '.join(c['device_rules'])})"
        found.append(Finding("devices", text, "HostConfig.DeviceCgroupRules"))
    unconfined = [o for o in c.get("security_opt") or [] if o.replace(":", "=", 1) in UNCONFINED]
    if unconfined:
        found.append(Finding("unconfined", f"no confinement ({', '.join(unconfined)})", "HostConfig.SecurityOpt"))
    return found + _host_paths(c, sockets, parents)
