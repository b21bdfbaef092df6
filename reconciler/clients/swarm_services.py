"""A Swarm service seen as the controllers see a container (pure: specs in, dicts out).

The controllers read containers; on Swarm a user server is a service, so its spec is shown
in a container's shape (`as_container`) and in the engine survey's (`service_facts`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..container_rules import volume_bind_path


def as_container(service: dict[str, Any]) -> dict[str, Any]:
    """A server's service in the shape the controllers read from a container."""
    spec = service["Spec"]
    cs = spec["TaskTemplate"]["ContainerSpec"]
    mounts = [
        {"Type": m.get("Type", "volume"), "Source": m.get("Source", ""), "Destination": m.get("Target", "")}
        for m in cs.get("Mounts") or []
    ]
    return {
        "Id": service["ID"],
        "Names": ["/" + spec["Name"]],
        "Labels": cs.get("Labels") or spec.get("Labels") or {},
        "State": "running",  # a server's service exists only while its server runs
        "Mounts": mounts,
        "Image": cs.get("Image", "").split("@")[0],
        "Env": cs.get("Env") or [],
    }


def epoch(text: str) -> float:
    """An engine time (RFC 3339, nanoseconds) in seconds since the epoch; 0 if unreadable."""
    try:
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def service_facts(service: dict[str, Any]) -> dict[str, Any]:
    """A service's spec in the shape of `container_facts`: bind sources, host paths bound
    through `local` volumes, added capabilities, unconfined seccomp or AppArmor."""
    c = as_container(service)
    cs = service["Spec"]["TaskTemplate"]["ContainerSpec"]
    privileges = cs.get("Privileges") or {}
    security = []
    if (privileges.get("Seccomp") or {}).get("Mode") == "unconfined":
        security.append("seccomp=unconfined")
    if (privileges.get("AppArmor") or {}).get("Mode") == "disabled":
        security.append("apparmor=unconfined")
    volume_binds = {}
    for m in cs.get("Mounts") or []:
        driver = (m.get("VolumeOptions") or {}).get("DriverConfig") or {}
        path = volume_bind_path({"Driver": driver.get("Name") or "local", "Options": driver.get("Options")})
        if m.get("Type", "volume") == "volume" and path is not None:
            volume_binds[m.get("Source", "")] = path
    return {
        "id": service["ID"],
        "name": c["Names"][0].lstrip("/"),
        "labels": c["Labels"],
        "created": epoch(service.get("CreatedAt", "")),
        "privileged": False,
        "cap_add": list(cs.get("CapabilityAdd") or []),
        "security_opt": security,
        "sources": [m["Source"] for m in c["Mounts"] if m["Type"] == "bind"],
        "volume_binds": volume_binds,
    }


def strip_log_headers(raw: bytes) -> str:
    """Service logs come as the engine's multiplexed frames (8-byte headers) when the
    service has no TTY; keep only the payloads."""
    out, i = bytearray(), 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1 : i + 4] == b"\0\0\0":
        size = int.from_bytes(raw[i + 4 : i + 8], "big")
        out += raw[i + 8 : i + 8 + size]
        i += 8 + size
    return (out if out else raw).decode(errors="replace")
