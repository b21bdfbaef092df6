"""Who has the Docker socket now, who should, and the drift; who has `limited` Docker access
and what their containers hold (the DockerAccess watch's statuses): JSON for hubctl, a page
for admins."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from reconciler.privileged_survey import survey
from vocabulary import naming
from vocabulary.settings import get_settings

from ..backends import get_engine, get_store
from ..policies import effective_for_groups
from .base import READ, ResourceAPIHandler


async def report(handler: BaseHandler) -> dict[str, Any]:
    s = get_settings()
    group = orm.Group.find(handler.db, naming.PRIVILEGED_GROUP)
    members = {u.name for u in group.users} if group else set()
    hub_servers = {
        (spawner.user.name, spawner.name)
        for user in handler.users.values()
        for spawner in user.spawners.values()
        if spawner.active
    }
    containers = await get_engine().running_containers(s.platform_id)
    granted = (await asyncio.to_thread(effective_for_groups, [naming.PRIVILEGED_GROUP])).docker_socket
    rows = survey(containers, members, hub_servers, s.docker_socket, granted)
    return {
        "group": naming.PRIVILEGED_GROUP,
        "groupExists": group is not None,
        "socketGranted": granted,  # a GroupPolicy in force gives the group the socket (the seed)
        "members": sorted(members),
        "policy": s.privileged_drift_policy,
        "servers": [r.model_dump(mode="json") for r in rows],
        "drift": [r.model_dump(mode="json") for r in rows if r.drift],
        "limited": await asyncio.to_thread(limited_rows),
    }


def limited_rows() -> list[dict[str, Any]]:
    """Users with `limited` Docker access, or containers made through the proxy, as the
    DockerAccess watch last saw them (its status per user), by user name."""
    observed = get_store().observed_all(naming.DOCKER_ACCESS_KIND)
    rows = []
    for user, body in sorted(observed.items()):
        if body.get("level") != "limited" and not body.get("containerCount") and not body.get("socketOpen"):
            continue
        rows.append(
            {
                "user": user,
                "level": body.get("level", "none"),
                "socketOpen": bool(body.get("socketOpen")),
                "serverRunning": bool(body.get("serverRunning")),
                "containers": body.get("containerCount", 0),
                "running": body.get("running", 0),
                "memory": body.get("memory", 0),
                "cpus": body.get("cpus", 0.0),
                "quota": body.get("quota"),
                "stoppedSince": body.get("stoppedSince"),
                "phase": body.get("phase"),
            }
        )
    return rows


class PrivilegedAPIHandler(ResourceAPIHandler):
    """GET /hub/api/privileged."""

    async def get(self) -> None:
        self.require(READ)
        self.send(await report(self))


class PrivilegedPageHandler(BaseHandler):
    """GET /hub/privileged: the same table, for operators."""

    @web.authenticated
    async def get(self) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may see privileged access")
        self.finish(await self.render_template("privileged.html", report=await report(self)))


handlers = [
    (r"/api/privileged", PrivilegedAPIHandler),
    (r"/privileged", PrivilegedPageHandler),
]
