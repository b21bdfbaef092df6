"""Running servers against their policies: drift, effective policies, rollouts, bulk stops.

- `GET /api/servers`: each running server with its user, image, effective policy hash and
  a `drifted` flag with the difference (the drift survey's last pass; platform read scope).
  `hubctl get servers -o json` prints it.
- `GET /api/users/<name>/effective-policy`: how the user's groups' GroupPolicies combine
  (`hubctl get effective NAME`); the read scope, or the user themself.
- `POST /api/rollouts {"selector": {...}, ...}`: a RolloutRestart (owner `panel`), with the
  scope of requests; 202 and its URL.
- `POST /api/serverstops {"selector": {...}, "reason": ..., "warnBefore": ...}`: a ServerStop
  (owner `panel`), with the same scope; 202 and its URL.
- `GET /servers`: the page, with a button to roll out the drifted servers and a form to stop
  servers (a selector, a reason, a notice time).
- `GET /users/<name>/policy`: the admin's view of one user (JupyterHub's own admin page
  cannot be extended): groups, the policies that apply, what they combine to, the running
  server's drift. Same scope as the Servers page.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from reconciler.api import REGISTRY
from reconciler.api.fields import MESSAGE_MAX
from reconciler.effective import Effective, NamedGroupPolicy, allowed_images, policy_hash
from reconciler.quotas import combine_quota, combine_storage
from vocabulary import naming, scopes
from vocabulary.settings import get_settings

from ..backends import get_store
from ..policies import explained_for_groups
from .base import READ, ResourceAPIHandler


async def servers_report() -> dict[str, Any]:
    """The drift survey's last pass; on Swarm each server also names its node (docs/swarm.md)."""
    body = await asyncio.to_thread(get_store().observed, naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY)
    servers = body.get("servers", [])
    swarm = get_settings().swarm
    if swarm:
        placed = await asyncio.to_thread(get_store().observed_all, naming.PLACEMENT_KIND)
        servers = [s | {"node": placed.get(s["user"], {}).get("nodeName")} for s in servers]
    return {
        "lastSurvey": body.get("lastSurvey"),
        "servers": servers,
        "drifted": sum(1 for s in servers if s.get("drifted")),
        "swarm": swarm,
        "limits": hub_limits(),
    }


def hub_limits() -> dict[str, int]:
    """The hub's own limits as configured (0: none): servers starting at once, running at once."""
    s = get_settings()
    return {"concurrentSpawnLimit": s.concurrent_spawn_limit, "activeServerLimit": s.active_server_limit}


async def effective_report(db: Any, name: str) -> dict[str, Any]:
    """A user's groups, the policies that apply (highest priority first) and their combination."""
    user = orm.User.find(db, name)
    if user is None:
        raise web.HTTPError(404, f"no such user: {name}")
    groups = sorted(g.name for g in user.groups)
    found, eff = await asyncio.to_thread(explained_for_groups, groups)
    image = get_settings().notebook_image
    return {
        "user": name,
        "groups": groups,
        "hash": policy_hash(eff),
        "effective": eff.as_dict(),
        "allowedImages": allowed_images(eff, image),
        "defaultImage": eff.default_image or image,
        # The socket needs both: a policy giving it and membership of docker-privileged.
        "dockerSocket": eff.docker_socket and bool(scopes.SOCKET_GROUPS.intersection(groups)),
        "dockerAccess": docker_access(eff, groups),
        "dockerQuota": eff.docker_quota.as_dict() if eff.docker_quota else None,
        # Per member over a rolling window, and per volume kind (docs/usage.md#quotas).
        "quota": quota.as_dict() if (quota := combine_quota(groups, found)) else None,
        "storage": {
            k: {"softLimit": v.bytes, "warnAt": list(v.warn_at), "policy": v.policy}
            for k, v in combine_storage(groups, found).items()
        }
        or None,
        "applying": [explain(p, groups) for p in found],
    }


def docker_access(eff: Effective, groups: list[str]) -> str:
    """What the spawner gives: privileged needs membership too; limited not on Swarm."""
    if eff.docker_access == "privileged":
        return "privileged" if scopes.SOCKET_GROUPS.intersection(groups) else "none"
    if eff.docker_access == "limited" and get_settings().swarm:
        return "none"
    return eff.docker_access


def explain(p: NamedGroupPolicy, groups: list[str]) -> dict[str, Any]:
    """One applying policy: through which of the user's groups, and what it sets."""
    spec = p.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for shown_apart in ("groups", "priority"):
        spec.pop(shown_apart, None)
    return {"name": p.name, "priority": p.spec.priority, "via": sorted(set(p.spec.groups) & set(groups)), "sets": spec}


def docker_row(report: dict[str, Any]) -> str:
    q = report.get("dockerQuota")
    if report.get("dockerAccess") != "limited" or not q:
        return report.get("dockerAccess") or "none"
    gib = 1024**3
    return (
        f"limited: {q['containers']:g} containers, {q['memory'] / gib:g} GiB / {q['cpus']:g} CPUs each, "
        f"{q['totalMemory'] / gib:g} GiB / {q['totalCpus']:g} CPUs in all"
    )


def effective_rows(eff: dict[str, Any], report: dict[str, Any]) -> list[tuple[str, str]]:
    """The combined result as (field, value) rows for the page, every field named."""
    mounts = [
        f"{n} at {v['mount']}{' (read-only)' if v.get('readOnly') else ''}"
        for n, v in (eff.get("volumes") or {}).items()
    ]
    gpus = eff.get("gpuIds") or ([str(eff["gpuCount"])] if eff.get("gpuCount") else [])
    socket = "yes" if report["dockerSocket"] else "no"
    if eff.get("dockerSocket") and not report["dockerSocket"]:
        socket = "no: a policy gives it, but the user is not in docker-privileged"
    rows = [
        ("Memory", f"{eff['memory'] / 1024**2:g} MiB" if eff.get("memory") else "the platform's (DOCKER_MEM_LIMIT)"),
        ("CPUs", f"{eff['cpus']:g}" if eff.get("cpus") else "the platform's (DOCKER_CPU_LIMIT)"),
        ("GPUs", ", ".join(gpus) or "none"),
        ("Images", f"{', '.join(report['allowedImages'])} (default {report['defaultImage']})"),
        ("Volumes", ", ".join(mounts) or "none"),
        ("Environment", ", ".join(f"{k}={v}" for k, v in (eff.get("environment") or {}).items()) or "none"),
        ("Docker socket", socket),
        ("Docker access", docker_row(report)),
    ]
    if eff.get("withheld"):  # only socket-group policies decide what runs beside the socket
        rows.append(("Not applied beside the socket", f"images, volumes, environment of {', '.join(eff['withheld'])}"))
    return rows


class ServersAPIHandler(ResourceAPIHandler):
    """GET /hub/api/servers."""

    async def get(self) -> None:
        self.require(READ)
        self.send(await servers_report())


class EffectiveAPIHandler(ResourceAPIHandler):
    """GET /hub/api/users/<name>/effective-policy."""

    async def get(self, name: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "Missing or invalid credentials.")
        if READ not in self.expanded_scopes and self.current_user.name != name:
            raise web.HTTPError(403, f"Action is not authorized: needs the scope {READ}")
        self.send(await effective_report(self.db, name))


class RolloutAPIHandler(ResourceAPIHandler):
    """POST /hub/api/rollouts: a RolloutRestart from the panel."""

    async def post(self) -> None:
        self.require(REGISTRY["RolloutRestart"].scope)
        spec = self.json_object()
        name = naming.resource_name("rollout", self.current_user.name)
        await self.submit("RolloutRestart", name, spec)
        self.send({"name": name, "url": f"{self.hub.base_url}api/resources/rolloutrestart/{name}"}, 202)


class ServerStopAPIHandler(ResourceAPIHandler):
    """POST /hub/api/serverstops: a ServerStop from the panel."""

    async def post(self) -> None:
        self.require(REGISTRY["ServerStop"].scope)
        spec = self.json_object()
        name = naming.resource_name("stop", self.current_user.name)
        await self.submit("ServerStop", name, spec)
        self.send({"name": name, "url": f"{self.hub.base_url}api/resources/serverstop/{name}"}, 202)


class ServersPageHandler(BaseHandler):
    """GET /hub/servers: the running servers, their drift, a rollout button, a stop form."""

    @web.authenticated
    async def get(self) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may see the servers")
        can_roll = REGISTRY["RolloutRestart"].scope in self.expanded_scopes
        can_stop = REGISTRY["ServerStop"].scope in self.expanded_scopes
        counts = self.users.count_active_users()  # what JupyterHub compares with its limits
        now = {"active": counts["active"], "starting": counts["spawn_pending"] + counts["proxy_pending"]}
        html = await self.render_template(
            "servers.html",
            report=await servers_report(),
            can_roll=can_roll,
            can_stop=can_stop,
            max_length=MESSAGE_MAX,
            now=now,
        )
        self.finish(html)


class UserPolicyPageHandler(BaseHandler):
    """GET /hub/users/<name>/policy: what one user's server gets and whether it still does."""

    @web.authenticated
    async def get(self, name: str) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may see a user's policies")
        report = await effective_report(self.db, name)
        survey = await servers_report()
        servers = [s for s in survey["servers"] if s["user"] == name]
        rows = effective_rows(report["effective"], report)
        html = await self.render_template(
            "user-policy.html", report=report, rows=rows, servers=servers, last_survey=survey["lastSurvey"]
        )
        self.finish(html)


handlers = [
    (r"/api/servers", ServersAPIHandler),
    (r"/api/users/([^/]+)/effective-policy", EffectiveAPIHandler),
    (r"/api/rollouts", RolloutAPIHandler),
    (r"/api/serverstops", ServerStopAPIHandler),
    (r"/servers", ServersPageHandler),
    (r"/users/([^/]+)/policy", UserPolicyPageHandler),
]
