"""Where users' volumes live on Docker Swarm (PLATFORM_BACKEND=swarm, docs/swarm.md).

- `GET /api/placements`: the swarm's nodes and, per user, the node holding their volumes
  (platform read scope). `hubctl get placements` prints it.
- `PUT /api/users/<name>/placement {"node": "<name or id>"}`: move a user to another node,
  for when theirs is gone for good (scope `admin:users`; refused while the user's server
  runs). The volumes on the new node start empty; restore a backup there to bring data.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from jupyterhub import orm
from tornado import web

from reconciler.clients.swarm import SwarmEngine
from vocabulary import naming
from vocabulary.settings import get_settings

from ..backends import get_engine, get_store
from .base import READ, ResourceAPIHandler

MOVE_SCOPE = "admin:users"


def swarm_engine() -> SwarmEngine:
    engine = get_engine()
    if not isinstance(engine, SwarmEngine):
        raise web.HTTPError(404, "placements exist on the Swarm backend only (PLATFORM_BACKEND=swarm)")
    return engine


async def placements_report() -> dict[str, Any]:
    engine = swarm_engine()
    nodes = await engine.call(engine.nodes_now)
    users = await asyncio.to_thread(get_store().observed_all, naming.PLACEMENT_KIND)
    names = {n.id: n.name for n in nodes}
    return {
        "nodes": [{"id": n.id, "name": n.name, "state": n.state, "availability": n.availability} for n in nodes],
        "users": [
            {
                "user": u,
                "node": r["node"],
                "nodeName": names.get(r["node"], r.get("nodeName", "?")),
                "since": r.get("since"),
            }
            for u, r in sorted(users.items())
        ],
    }


class PlacementsAPIHandler(ResourceAPIHandler):
    """GET /hub/api/placements."""

    async def get(self) -> None:
        self.require(READ)
        self.send(await placements_report())


class PlacementAPIHandler(ResourceAPIHandler):
    """PUT /hub/api/users/<name>/placement."""

    async def put(self, name: str) -> None:
        self.require(MOVE_SCOPE)
        wanted = str(self.json_object().get("node") or "")
        user = orm.User.find(self.db, name)
        if user is None:
            raise web.HTTPError(404, f"no such user: {name}")
        if any(spawner.active for spawner in self.users[user].spawners.values()):
            raise web.HTTPError(409, f"{name} has a running server: stop it before moving {name}")
        engine = swarm_engine()
        nodes = await engine.call(engine.nodes_now)
        node = next((n for n in nodes if wanted in (n.name, n.id)), None)
        if node is None:
            known = ", ".join(sorted(n.name for n in nodes))
            raise web.HTTPError(400, f"no node {wanted!r} in the swarm (nodes: {known})")
        store = get_store()
        before = (await asyncio.to_thread(store.observed, naming.PLACEMENT_KIND, name)) or {}
        s = get_settings()
        volumes = sorted(naming.user_volume_names(s.volume_name_template, name, list(s.user_volumes)).values())
        record = {"node": node.id, "nodeName": node.name, "volumes": volumes, "since": datetime.now(UTC).isoformat()}
        await asyncio.to_thread(store.write_observed, naming.PLACEMENT_KIND, name, record)
        message = (
            f"{name} moved from node {before.get('nodeName', '(none)')} to node {node.name}; volumes there start empty"
        )
        actor = self.current_user.name if self.current_user else None
        await asyncio.to_thread(store.add_event, naming.PLACEMENT_KIND, name, "Moved", message, "Warning", actor)
        self.log.info(message)
        self.send({"user": name, "node": node.id, "nodeName": node.name, "from": before.get("nodeName")})


handlers = [
    (r"/api/placements", PlacementsAPIHandler),
    (r"/api/users/([^/]+)/placement", PlacementAPIHandler),
]
