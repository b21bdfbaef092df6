"""PrivilegedAccess (built-in watch, one key per user): the Docker socket follows membership
of `docker-privileged`.

`survey` (pure) compares a user's running containers' real mounts, as the engine reports
them, with membership. The loop reconciles a user's key when the engine says one of their
containers started or stopped, when a GroupMembership changed their membership, and at
every resync (for every member and every user with a running container). Drift is acted on
by the policy (`PRIVILEGED_DRIFT_POLICY`):

- `restart` (default): a container that has the socket while its user is not a member is
  restarted through the hub, after a notice in JupyterLab telling the user why; it comes
  back without the socket. The restart is the platform's own, carried out by this key
  (not a ServerRestart resource): no user can cancel it, nobody can take its name first,
  and it is never handed to another key to wait behind other work. Each reconcile does
  one step (stop, then start, then ready) recorded in the key's status before its side
  effect, and comes back `restarts.POLL` seconds later (or at the container's engine event): it
  never waits for the server inside a reconcile (only for the hub's answer to one
  request), and a restarted reconciler resumes it;
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
import logging
from datetime import UTC, datetime
from typing import Any

from vocabulary import naming

from .. import restarts
from ..api.privilegedaccess import PlatformRestart, PrivilegedAccessStatus, PrivilegedServer
from ..clients import lab
from ..context import Context
from ..in_force import socket_granted
from ..privileged_survey import survey
from ..result import Result

log = logging.getLogger("reconciler.privileged")
KIND = naming.PRIVILEGED_ACCESS_KIND
MAX_STARTS = 3  # start requests per restart; past them the server stays stopped (socket gone)


async def members_of_group(ctx: Context, *, cached: bool) -> set[str]:
    """The built-in group's members (from a resync pass's snapshot when `cached`); the group
    is recreated if it was deleted (its members come back from the GroupMembership that
    declares them)."""
    group = await ctx.group(naming.PRIVILEGED_GROUP, cached=cached)
    if group is None:
        group = await ctx.hub.create_group(naming.PRIVILEGED_GROUP) or {"users": []}
        ctx.remember_group(naming.PRIVILEGED_GROUP, [])
        await ctx.event(KIND, naming.PRIVILEGED_GROUP, "GroupRecreated", "recreated the built-in group")
    return set(group.get("users", []))


async def names(ctx: Context) -> set[str]:
    """Every user worth a look at a resync: members, users with a running container, and
    users with a restart under way (a restarted reconciler resumes it from the store)."""
    members = await members_of_group(ctx, cached=False)  # live: whom to look at is never stale
    containers = await ctx.engine.running_containers(ctx.settings.platform_id)
    observed = await asyncio.to_thread(ctx.store.observed_all, KIND)
    restarting = {name for name, body in observed.items() if body.get("restarts")}
    return members | restarting | {u for c in containers if (u := (c.get("Labels") or {}).get(naming.LABEL_USER))}


async def reconcile(user: str, ctx: Context) -> Result:
    members = await members_of_group(ctx, cached=ctx.woken_by_resync((KIND, user)))
    model = await ctx.hub.get_user(user) or {}
    hub_servers = model.get("servers") or {}
    urls = {(user, name): server["url"] for name, server in hub_servers.items()}
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
        restarts=previous.restarts,
    )
    for row in rows:
        if any(r.server == row.server for r in status.restarts):
            continue  # one restart of a server at a time: its new container is judged after it
        if row.drift and row.container_id not in status.handled:
            restart = await act(ctx, row, urls.get((row.user, row.server)))
            status.handled = sorted({*status.handled, row.container_id})
            status.restarts += [restart] if restart else []
            await ctx.record_observed(KIND, user, status)  # handled once, even if we die next
    running = {c["Id"] for c in containers}
    for restart in list(status.restarts):
        if await advance(ctx, user, restart, hub_servers.get(restart.server), running, status):
            status.restarts = [r for r in status.restarts if r is not restart]
    # A restart under way is looked at again as often as any restart waits (engine events wake it sooner).
    return Result(status, restarts.POLL if status.restarts else None)


async def act(ctx: Context, row: PrivilegedServer, server_url: str | None) -> PlatformRestart | None:
    """Report one container's drift and act on it by the policy; a restart to carry out
    (recorded by the caller before its first side effect), or None."""
    policy, where = ctx.settings.privileged_drift_policy, f"{row.user}/{row.server or ''} in {row.container}"
    if row.drift == "membership-without-socket":
        if not ctx.settings.privileged_restart_on_grant or not row.hub_server:
            message = f"{where}: member of {naming.PRIVILEGED_GROUP}, gets the socket at its next start"
            await ctx.event(KIND, row.user, "GrantPending", message)
            return None
    else:
        message = f"{where} has the Docker socket but {row.user} is not in {naming.PRIVILEGED_GROUP}"
        await ctx.event(KIND, row.user, "PrivilegedDrift", message, type="Warning")
    if policy == "report":
        return None
    if not row.hub_server:
        await ctx.engine.stop_container(row.container_id)
        message = f"stopped {row.container}: not a server the hub knows, with the wrong mounts"
        await ctx.event(KIND, row.user, "ContainerStopped", message, type="Warning")
        return None
    if policy == "stop":
        await ctx.hub.stop_server(row.user, row.server)
        await ctx.event(KIND, row.user, "ServerStopped", f"stopped {where} (policy: stop)", type="Warning")
        return None
    revoke = row.drift == "socket-without-membership"
    if revoke and server_url:
        await notify(ctx, row, server_url)
    message = f"restarting {where} through the hub so its mounts follow membership (the platform's own restart)"
    await ctx.event(KIND, row.user, "RestartRequested", message)
    return PlatformRestart(
        server=row.server,
        container_id=row.container_id,
        reason="revoke" if revoke else "grant",
        started_at=datetime.now(UTC),
    )


async def advance(
    ctx: Context,
    user: str,
    r: PlatformRestart,
    server: dict[str, Any] | None,
    running: set[str],
    status: PrivilegedAccessStatus,
) -> bool:
    """One step of a platform restart; True once it is over. `server` is the hub's model of
    it now, `running` the user's running container ids. The old container stopped is what
    matters (the socket goes with it); the start brings the user's server back."""
    if r.step == "stopping":
        if r.container_id in running:  # the old container still runs: (again) ask for its stop
            if server is None:  # the hub forgot it meanwhile: the container itself is stopped
                await ctx.engine.stop_container(r.container_id)
            elif server.get("pending") != "stop":
                await ctx.hub.stop_server(user, r.server)
            return False
        if server is not None:  # still stopping, or started again already (by its user)
            return server.get("pending") != "stop" and await _finished(ctx, user, r, "started again by its user")
        r.step = "starting"
    elif server is not None:
        return bool(server.get("ready")) and await _finished(ctx, user, r, "back")
    if r.starts >= MAX_STARTS:
        message = f"{restarts.label(user, r.server)} did not start again after {r.starts} tries; it stays stopped"
        await ctx.event(KIND, user, "RestartFailed", message, type="Warning")
        return True
    r.starts += 1
    await ctx.record_observed(KIND, user, status)  # before the start: a crash resumes here
    await restarts.start(ctx.hub, user, r.server)
    return False


async def _finished(ctx: Context, user: str, r: PlatformRestart, how: str) -> bool:
    seconds = (datetime.now(UTC) - r.started_at).total_seconds()
    message = f"{restarts.label(user, r.server)} {how} in {seconds:.1f} s, with the mounts its membership gives"
    await ctx.event(KIND, user, "ServerRestarted", message)
    return True


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
