"""PrivilegedAccess (built-in watch, one key per user): the Docker socket follows membership
of `docker-privileged`.

`survey` (pure) compares a user's running containers' real mounts, as the engine reports
them, with membership. The loop reconciles a user's key when the engine says one of their
containers started or stopped, when a GroupMembership changed their membership, and at
every resync (for every member and every user with a running container). Drift is acted on
by the policy (`PRIVILEGED_DRIFT_POLICY`):

- `restart` (default): a container that has the socket while its user is not a member is
  restarted through the hub (a ServerRestart resource), after a notice in JupyterLab
  telling the user why; it comes back without the socket;
- `stop`: the server is stopped;
- `report`: nothing is changed.

A member whose container lacks the socket is reported (it gets it at its next start); it
is restarted only with `PRIVILEGED_RESTART_ON_GRANT=true`. That side asks the GroupPolicies
too (the built-in `docker-privileged` policy gives the socket): while no policy in force
gives it, a member's server without it is no drift, and is never restarted for it. A container is that user's
server only if the hub lists the server and the spawner recorded this container's id for
it (labels can be copied); any other container with the platform's labels is stopped
(restart/stop) or reported. Each container's drift is handled once: the container ids are kept in the key's
status in the store, so a restarted reconciler does not act twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from vocabulary import naming
from vocabulary.api import API_VERSION

from ..clients import lab
from ..context import Context
from ..resources import parse_resource
from ..result import Result
from ..status import PrivilegedAccessStatus, PrivilegedServer
from .grouppolicy import socket_granted

log = logging.getLogger("reconciler.privileged")
KIND = naming.PRIVILEGED_ACCESS_KIND
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


async def members_of_group(ctx: Context) -> set[str]:
    """The built-in group's members; the group is recreated if it was deleted (its members
    come back from the GroupMembership that declares them)."""
    group = await ctx.group(naming.PRIVILEGED_GROUP)
    if group is None:
        group = await ctx.hub.create_group(naming.PRIVILEGED_GROUP) or {"users": []}
        ctx.remember_group(naming.PRIVILEGED_GROUP, [])
        await ctx.event(KIND, naming.PRIVILEGED_GROUP, "GroupRecreated", "recreated the built-in group")
    return set(group.get("users", []))


async def names(ctx: Context) -> set[str]:
    """Every user worth a look at a resync: members, and users with a running container."""
    members = await members_of_group(ctx)
    containers = await ctx.engine.running_containers(ctx.settings.platform_id)
    return members | {u for c in containers if (u := (c.get("Labels") or {}).get(naming.LABEL_USER))}


async def reconcile(user: str, ctx: Context) -> Result:
    members = await members_of_group(ctx)
    model = await ctx.hub.get_user(user) or {}
    urls = {(user, name): server["url"] for name, server in (model.get("servers") or {}).items()}
    containers = [
        c for c in await ctx.engine.user_containers(ctx.settings.platform_id, user) if c["State"] == "running"
    ]
    granted = await asyncio.to_thread(socket_granted, ctx.store)
    owned = await asyncio.to_thread(ctx.store.observed_all, naming.OWNED_KIND)
    rows = survey(containers, members & {user}, set(urls), ctx.settings.docker_socket, granted, owned)
    previous = PrivilegedAccessStatus.load(await ctx.observed(KIND, user))
    status = PrivilegedAccessStatus(
        phase="Drift" if any(r.drift for r in rows) else "Ready",
        servers=rows,
        handled=sorted(set(previous.handled) & {r.container_id for r in rows}),  # forget what is gone
    )
    for row in rows:
        if row.drift and row.container_id not in status.handled:
            await act(ctx, row, urls.get((row.user, row.server)))
            status.handled = sorted({*status.handled, row.container_id})
            await ctx.record_observed(KIND, user, status)  # handled once, even if we die next
    return Result(status)


async def act(ctx: Context, row: PrivilegedServer, server_url: str | None) -> None:
    """Report one container's drift and act on it by the policy."""
    policy, where = ctx.settings.privileged_drift_policy, f"{row.user}/{row.server or ''} in {row.container}"
    if row.drift == "membership-without-socket":
        if not ctx.settings.privileged_restart_on_grant or not row.hub_server:
            message = f"{where}: member of {naming.PRIVILEGED_GROUP}, gets the socket at its next start"
            await ctx.event(KIND, row.user, "GrantPending", message)
            return
    else:
        message = f"{where} has the Docker socket but {row.user} is not in {naming.PRIVILEGED_GROUP}"
        await ctx.event(KIND, row.user, "PrivilegedDrift", message, type="Warning")
    if policy == "report":
        return
    if not row.hub_server:
        await ctx.engine.stop_container(row.container_id)
        message = f"stopped {row.container}: not a server the hub knows, with the wrong mounts"
        await ctx.event(KIND, row.user, "ContainerStopped", message, type="Warning")
        return
    if policy == "stop":
        await ctx.hub.stop_server(row.user, row.server)
        await ctx.event(KIND, row.user, "ServerStopped", f"stopped {where} (policy: stop)", type="Warning")
        return
    if row.drift == "socket-without-membership" and server_url:
        await notify(ctx, row, server_url)
    await request_restart(ctx, row, where)


async def notify(ctx: Context, row: PrivilegedServer, server_url: str) -> None:
    """Tell the user why, in their lab, with their server's own token."""
    token = (await ctx.engine.server_tokens(ctx.settings.platform_id)).get((row.user, row.server))
    if not token:
        return
    message = (
        "Your server restarts now: your Docker access was revoked "
        f"(you are no longer in {naming.PRIVILEGED_GROUP}). Your files are kept."
    )
    target = lab.Target(row.user, row.server, lab.ingest_url(ctx.settings.proxy_url, server_url), token)
    body = lab.payload(message, "warning", False, True, {"privilegedAccess": row.user})
    (result,) = await lab.deliver_all([target], body, limits=lab.Limits(concurrency=1, deadline=10))
    log.info("privileged: told %s/%s: %s", row.user, row.server, result.outcome)


def restart_name(row: PrivilegedServer) -> str:
    digest = hashlib.sha256(f"{row.user}/{row.server}/{row.container_id}".encode()).hexdigest()[:10]
    return f"revoke-{naming.slug(row.user)}-{digest}"


async def request_restart(ctx: Context, row: PrivilegedServer, where: str) -> None:
    """A ServerRestart through the hub, so the mounts follow membership (idempotent by name)."""
    resource = parse_resource(
        {
            "apiVersion": API_VERSION,
            "kind": "ServerRestart",
            "metadata": {"name": restart_name(row), "labels": {"requested-by": "privileged-access"}},
            "spec": {"user": row.user, "server": row.server},
        }
    )
    if await ctx.apply(resource, actor="reconciler:privileged-access") == "unchanged":
        return  # that restart was asked for already
    message = f"restarting {where} through the hub so its mounts follow membership ({restart_name(row)})"
    await ctx.event(KIND, row.user, "RestartRequested", message)
