"""Who has the Docker socket and who should (pure: the engine's containers, membership and
the platform's records in, rows out). The PrivilegedAccess watch acts on it; the hub's
Privileged page shows it.
"""

from __future__ import annotations

from typing import Any

from vocabulary import naming

from .api.privilegedaccess import PrivilegedServer

SOCKET_IN_CONTAINER = "/var/run/docker.sock"


def has_socket(mounts: list[dict[str, Any]], socket_path: str) -> bool:
    """From the engine's mounts, not from labels: is the engine socket inside?"""
    return any(m.get("Destination") == SOCKET_IN_CONTAINER or m.get("Source") == socket_path for m in mounts or [])


def survey(
    containers: list[dict[str, Any]],
    members: set[str],
    hub_servers: set[tuple[str, str]],
    socket_path: str,
    granted: bool = True,
    owned: dict[str, dict[str, Any]] | None = None,
) -> list[PrivilegedServer]:
    """One row per running platform container: who has the socket, who should, the drift.
    `granted`: the policies in force give members the socket (else a member lacking it is
    no drift); the socket without membership is drift whatever the policies say. A
    container is the hub's server only if the hub lists that server and the spawner
    recorded this container id for it (`owned`, from the store): labels can be copied."""
    owned = owned or {}
    rows = []
    for c in containers:
        labels = c.get("Labels") or {}
        user = labels.get(naming.LABEL_USER)
        if user is None:
            continue
        server = labels.get(naming.LABEL_SERVER, "")
        socket = has_socket(c.get("Mounts") or [], socket_path)
        member = user in members
        drift = None
        if socket and not member:
            drift = "socket-without-membership"
        elif member and not socket and granted:
            drift = "membership-without-socket"
        rows.append(
            PrivilegedServer(
                user=user,
                server=server,
                container=(c.get("Names") or ["?"])[0].lstrip("/"),
                container_id=c["Id"],
                has_socket=socket,
                member=member,
                hub_server=(user, server) in hub_servers and recorded_lab(owned.get(c["Id"]), user, server),
                drift=drift,
            )
        )
    return sorted(rows, key=lambda r: (r.user, r.server, r.container))


def recorded_lab(record: dict[str, Any] | None, user: str, server: str) -> bool:
    """The spawner recorded this container as that user's server when it created it."""
    if not record or record.get("role") != "lab":
        return False
    return (record.get("user"), record.get("server", "")) == (user, server)
