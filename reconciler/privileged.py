"""Privileged access that converges: the Docker socket follows `docker-privileged` membership.

`survey` (pure) compares each running user container's real mounts, as the engine reports
them, with membership. `PrivilegedWatch` runs it on every resync, on every membership
change and on container events, and acts on drift by the policy:

- `restart` (default): a container that has the socket while its user is not a member is
  restarted through the hub (a ServerRestart resource), after a notification telling the
  user why; it comes back without the socket;
- `stop`: the server is stopped;
- `report`: nothing is changed.

A member whose container lacks the socket is reported (it gets it at its next start); it
is restarted only with `PRIVILEGED_RESTART_ON_GRANT=true`. A container with the platform's
labels that the hub does not know as that user's server is stopped (restart/stop) or
reported. Every drift and action is an event of kind `PrivilegedAccess`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub_config import naming

from .context import Context
from .controllers.broadcast import ingest_url, payload
from .delivery import Limits, Target, deliver_all
from .manifests import parse_manifests
from .resources import BroadcastSpec

log = logging.getLogger("reconciler.privileged")
EVENT_KIND = "PrivilegedAccess"
EVENT_NAME = naming.PRIVILEGED_GROUP
SOCKET_IN_CONTAINER = "/var/run/docker.sock"
Drift = Literal["socket-without-membership", "membership-without-socket"]


@dataclass(frozen=True)
class Row:
    user: str
    server: str
    container: str
    container_id: str
    has_socket: bool
    member: bool
    hub_server: bool  # the hub knows this container as the user's running server
    drift: Drift | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def has_socket(mounts: list[dict[str, Any]], socket_path: str) -> bool:
    """From the engine's mounts, not from labels: is the engine socket inside?"""
    return any(m.get("Destination") == SOCKET_IN_CONTAINER or m.get("Source") == socket_path for m in mounts or [])


def survey(
    containers: list[dict[str, Any]], members: set[str], hub_servers: set[tuple[str, str]], socket_path: str
) -> list[Row]:
    """One row per running platform container: who has the socket, who should, the drift."""
    rows = []
    for c in containers:
        labels = c.get("Labels") or {}
        user = labels.get(naming.LABEL_USER)
        if user is None:
            continue
        server = labels.get(naming.LABEL_SERVER, "")
        socket = has_socket(c.get("Mounts") or [], socket_path)
        member = user in members
        drift: Drift | None = None
        if socket and not member:
            drift = "socket-without-membership"
        elif member and not socket:
            drift = "membership-without-socket"
        rows.append(
            Row(
                user=user,
                server=server,
                container=(c.get("Names") or ["?"])[0].lstrip("/"),
                container_id=c["Id"],
                has_socket=socket,
                member=member,
                hub_server=(user, server) in hub_servers,
                drift=drift,
            )
        )
    return sorted(rows, key=lambda r: (r.user, r.server, r.container))


async def gather(ctx: Context) -> tuple[list[Row], dict[tuple[str, str], str]]:
    """Read the world: the group (created if missing), running servers, containers.
    Also returns each hub server's base URL (to reach its lab)."""
    group = await ctx.hub.get_group(naming.PRIVILEGED_GROUP)
    if group is None:  # the built-in group was deleted: back it comes (members: GitOps/store's)
        group = await ctx.hub.create_group(naming.PRIVILEGED_GROUP) or {"users": []}
        await ctx.event(
            EVENT_KIND, EVENT_NAME, "GroupRecreated", f"recreated the built-in group {naming.PRIVILEGED_GROUP}"
        )
    members = set(group.get("users", []))
    users = await ctx.hub.paginated("users?state=active")
    urls = {(u["name"], name): server["url"] for u in users for name, server in (u.get("servers") or {}).items()}
    containers = await ctx.engine.running_containers(ctx.settings.platform_id)
    return survey(containers, members, set(urls), ctx.settings.docker_socket), urls


def restart_name(row: Row) -> str:
    digest = hashlib.sha256(f"{row.user}/{row.server}/{row.container_id}".encode()).hexdigest()[:10]
    slug = naming.escape_name(row.user).strip("-")[:30].rstrip("-") or "user"
    return f"revoke-{slug}-{digest}"


class PrivilegedWatch:
    def __init__(self, ctx: Context, policy: str, restart_on_grant: bool, interval: float):
        self.ctx = ctx
        self.policy = policy
        self.restart_on_grant = restart_on_grant
        self.interval = interval
        self.wake = asyncio.Event()
        self._acted: set[str] = set()  # container ids already reported or acted on
        self._urls: dict[tuple[str, str], str] = {}  # the hub's base URL of each running server

    async def notify(self, row: Row, message: str) -> None:
        """Tell the user why, through the broadcast machinery (their lab, their token)."""
        tokens = await self.ctx.engine.server_tokens(self.ctx.settings.platform_id)
        token = tokens.get((row.user, row.server))
        server_url = self._urls.get((row.user, row.server))
        if not token or not server_url:
            return
        target = Target(row.user, row.server, ingest_url(self.ctx.settings.proxy_url, server_url), token)
        spec = BroadcastSpec.model_validate({"message": message, "type": "warning", "autoClose": False})
        limits = Limits(concurrency=1, deadline=10)
        (result,) = await deliver_all([target], payload(EVENT_KIND, spec), limits=limits)
        log.info("privileged: told %s/%s: %s", row.user, row.server, result.outcome)

    async def act(self, row: Row) -> None:
        ctx, where = self.ctx, f"{row.user}/{row.server or ''} in {row.container}"
        if row.drift == "membership-without-socket":
            if not self.restart_on_grant or not row.hub_server:
                await ctx.event(
                    EVENT_KIND,
                    EVENT_NAME,
                    "GrantPending",
                    f"{where}: member of {naming.PRIVILEGED_GROUP}, gets the socket at its next start",
                )
                return
        else:
            await ctx.event(
                EVENT_KIND,
                EVENT_NAME,
                "PrivilegedDrift",
                f"{where} has the Docker socket but {row.user} is not in {naming.PRIVILEGED_GROUP}",
                type="Warning",
            )
        if self.policy == "report":
            return
        if not row.hub_server:
            await ctx.engine.stop_container(row.container_id)
            await ctx.event(
                EVENT_KIND,
                EVENT_NAME,
                "ContainerStopped",
                f"stopped {row.container}: not a server the hub knows, with the wrong mounts",
                type="Warning",
            )
            return
        if self.policy == "stop":
            await ctx.hub.stop_server(row.user, row.server)
            await ctx.event(EVENT_KIND, EVENT_NAME, "ServerStopped", f"stopped {where} (policy: stop)", type="Warning")
            return
        if row.drift == "socket-without-membership":
            await self.notify(
                row,
                "Your server restarts now: your Docker access was revoked "
                f"(you are no longer in {naming.PRIVILEGED_GROUP}). Your files are kept.",
            )
        doc = {
            "apiVersion": "jupyterhub-ds/v1",
            "kind": "ServerRestart",
            "metadata": {"name": restart_name(row), "labels": {"requested-by": "privileged-access"}},
            "spec": {"user": row.user, "server": row.server},
        }
        (result,) = await asyncio.to_thread(
            self.ctx.store.apply, parse_manifests(json.dumps(doc)), "api", actor="reconciler:privileged-access"
        )
        if result.action == "unchanged":
            return  # that restart was asked for already
        await ctx.event(
            EVENT_KIND,
            EVENT_NAME,
            "RestartRequested",
            f"restarting {where} through the hub so its mounts follow membership ({restart_name(row)})",
        )

    async def check(self) -> list[Row]:
        rows, self._urls = await gather(self.ctx)
        live = {r.container_id for r in rows}
        self._acted &= live  # forget containers that are gone
        for row in rows:
            if row.drift and row.container_id not in self._acted:
                self._acted.add(row.container_id)
                try:
                    await self.act(row)
                except Exception:
                    self._acted.discard(row.container_id)  # try again at the next check
                    raise
        return rows

    async def run(self, stop: asyncio.Event) -> None:
        log.info("privileged: watching (policy %s, restart on grant: %s)", self.policy, self.restart_on_grant)
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.check()
            except Exception as e:  # the engine or hub away: the next wake-up tries again
                log.warning("privileged: check failed: %s", e)
            waiter = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
