"""Swarm nodes as the platform sees them, and where each user's volumes live.

A user's volumes are created on one node (Swarm volumes are node-local) and their servers
run there ever after: the node is recorded at the first start and only an admin moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocabulary import naming

from ..errors import PermanentError


class NodeDown(PermanentError):
    """The node holding a user's volumes is not ready: nothing of theirs can run elsewhere."""

    def __init__(self, user: str, node: Node | None, node_id: str):
        where = (
            f"node {node.name} ({node_id[:12]}, {node.state}/{node.availability})" if node else f"node {node_id[:12]}"
        )
        super().__init__(
            f"the volumes of {user} are on {where}, which is not available. Wait for it to come back, "
            f"or an admin moves {user} to another node (hubctl move-user {user} NODE; the volumes there start empty "
            "unless restored from a backup)",
            "NodeDown",
        )


@dataclass(frozen=True)
class Node:
    id: str
    name: str  # the node label io.jupyterhub-ds.node, else its hostname
    addr: str
    state: str
    availability: str
    socket: str  # the node's engine socket on that host

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.availability == "active"

    @classmethod
    def of(cls, raw: dict[str, Any], default_socket: str) -> Node:
        labels = (raw.get("Spec") or {}).get("Labels") or {}
        return cls(
            id=raw["ID"],
            name=labels.get("io.jupyterhub-ds.node") or raw.get("Description", {}).get("Hostname", raw["ID"][:12]),
            addr=(raw.get("Status") or {}).get("Addr", ""),
            state=(raw.get("Status") or {}).get("State", "unknown"),
            availability=(raw.get("Spec") or {}).get("Availability", "unknown"),
            socket=labels.get(naming.NODE_LABEL_SOCKET) or default_socket,
        )


def least_loaded(nodes: list[Node], load: dict[str, int]) -> Node | None:
    """The ready node running fewest of the platform's tasks; ties go to the name first."""
    ready = [n for n in nodes if n.ready]
    return min(ready, key=lambda n: (load.get(n.id, 0), n.name, n.id)) if ready else None


@dataclass
class Placements:
    """Where each user's volumes live: {user: {"node": id, "nodeName": ..., "volumes": [...]}}."""

    read_all: Callable[[], dict[str, dict[str, Any]]]
    write: Callable[[str, dict[str, Any]], None]

    def node_of_volume(self, name: str) -> tuple[str, str] | None:
        """(user, node id) of the user whose recorded volumes include `name`."""
        for user, record in self.read_all().items():
            if name in record.get("volumes", []):
                return user, record["node"]
        return None
