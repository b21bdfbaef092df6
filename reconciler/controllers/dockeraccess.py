"""DockerAccess (built-in watch, one key per user): `limited` Docker access follows the
user's GroupPolicies and their server, continuously (docs/docker-access.md).

Each reconcile combines the user's policies in force (`effective.combine`, as the spawner
does) and then:

- `limited` (and not on Swarm, where a lab on another node cannot reach the proxy): the
  platform's proxy holds a socket open for the user with the combined quota
  (`proxy.open`, idempotent; a changed quota applies at once, no restart);
- anything else: the socket is closed (`proxy.close`), and a user who had `limited` is
  told in their lab, once;
- the user's containers are those the proxy recorded they made (by id, never by label).
  While the user may not run them (server stopped, or access ended) they are stopped, and
  `DOCKER_LIMITED_GRACE_SECONDS` after that they are removed (and forgotten by the proxy);
  the key comes back at that time. Their volumes, networks and images stay.
- with `DOCKER_LIMITED_COUNTS_AS_ACTIVITY`, running containers are the server's activity.

The key is woken by a GroupMembership change of the user, a GroupPolicy giving `limited`,
the engine's events for the user's lab and for containers carrying their owner label (a
label only wakes: what is done is decided from the records), and every resync. The proxy's
audit events reach the same key through `proxy_port.AuditSink`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from vocabulary import naming

from .. import in_force
from ..api.dockeraccess import DockerAccessStatus, DockerContainer
from ..clients import lab
from ..context import Context
from ..docker_requests import Quota
from ..effective import DockerQuota, Effective, combine
from ..proxy_port import DockerProxyPort
from ..result import Result

log = logging.getLogger("reconciler.dockeraccess")
KIND = naming.DOCKER_ACCESS_KIND
LIVE_STATES = ("running", "paused", "restarting")


def to_quota(q: DockerQuota) -> Quota:
    """The combined policy quota as the request policy takes it."""
    return Quota(
        max_containers=q.max_containers,
        memory=q.memory,
        cpus=q.cpus,
        total_memory=q.total_memory,
        total_cpus=q.total_cpus,
        default_memory=q.default_memory,
        default_cpus=q.default_cpus,
        build_context=q.build_context,
    )


def describe(q: DockerQuota) -> str:
    gib = 1024**3
    return (
        f"{q.max_containers} containers, {q.memory / gib:g} GiB / {q.cpus:g} CPUs each, "
        f"{q.total_memory / gib:g} GiB / {q.total_cpus:g} CPUs in all, build context {q.build_context / gib:g} GiB"
    )


async def names(ctx: Context) -> set[str]:
    """Every user worth a look at a resync: members of groups whose policies give `limited`,
    users the proxy holds a socket for, and users with containers or a removal pending."""
    policies = await asyncio.to_thread(in_force.group_policies, ctx.store)
    limited_groups = {g for p in policies if p.spec.docker_level == "limited" for g in p.spec.groups}
    groups = await ctx.hub.list_groups() if limited_groups else {}
    members = {u for g in limited_groups for u in (groups.get(g) or {}).get("users", [])}
    observed = await asyncio.to_thread(ctx.store.observed_all, KIND)
    pending = {n for n, body in observed.items() if body.get("containerCount") or body.get("socketOpen")}
    opened = set(ctx.docker_proxy.open_users()) if ctx.docker_proxy else set()
    return members | pending | opened


def server_running(servers: dict[str, Any]) -> bool:
    return any(s.get("ready") or s.get("pending") == "spawn" for s in servers.values())


async def reconcile(user: str, ctx: Context) -> Result:
    s, now = ctx.settings, datetime.now(UTC)
    model = await ctx.hub.get_user(user)
    policies = await asyncio.to_thread(in_force.group_policies, ctx.store)
    eff = combine(model.get("groups") or [], policies) if model else Effective(policies=[])
    servers: dict[str, Any] = (model or {}).get("servers") or {}
    previous = DockerAccessStatus.load(await ctx.observed(KIND, user))
    status = DockerAccessStatus(
        phase="Ready",
        level=eff.docker_access,
        quota=eff.docker_quota.as_dict() if eff.docker_quota else None,
        server_running=server_running(servers),
        stopped_since=previous.stopped_since,
        told_ended=previous.told_ended,
    )
    wanted = eff.docker_access == "limited" and eff.docker_quota is not None and not s.swarm
    if eff.docker_access == "limited" and s.swarm:
        message = "limited Docker access is not given on the Swarm backend (the proxy runs on the manager only)"
        status.phase = "Degraded"
        status.set_condition("Ready", "False", "UnsupportedOnSwarm", message, now)
    proxy = ctx.docker_proxy
    if proxy is None:
        if wanted:
            status.phase = "Degraded"
            status.set_condition("Ready", "False", "NoProxy", "the Docker proxy does not run in this reconciler", now)
        return Result(status)
    await follow_level(ctx, proxy, user, eff, wanted, status)
    ended = not wanted and (previous.level == "limited" or previous.socket_open)
    if ended:  # the level as it is now, before the notice and the stops (seconds)
        await ctx.record_observed(KIND, user, status)
    if ended and not status.told_ended:
        status.told_ended = True
        await notify_ended(ctx, user, servers)
    requeue = await follow_containers(ctx, proxy, user, wanted and status.server_running, status, now)
    if s.docker_limited_counts_as_activity and wanted and status.running and status.server_running:
        up = [name for name, sv in servers.items() if sv.get("ready")]
        await ctx.hub.post_activity(user, up, now.isoformat().replace("+00:00", "Z"))
    return Result(status, requeue)


async def follow_level(
    ctx: Context, proxy: DockerProxyPort, user: str, eff: Effective, wanted: bool, status: DockerAccessStatus
) -> None:
    """The socket open with the user's quota, or closed."""
    before = proxy.open_users().get(user)
    if wanted and eff.docker_quota is not None:
        quota = to_quota(eff.docker_quota)
        await proxy.open(user, quota)
        status.told_ended = False
        if before is None:
            await ctx.event(KIND, user, "SocketOpened", f"limited Docker access: {describe(eff.docker_quota)}")
        elif dataclasses.replace(before, publish_addresses=quota.publish_addresses) != quota:
            await ctx.event(KIND, user, "QuotaChanged", f"now {describe(eff.docker_quota)}")
    elif before is not None:
        await proxy.close(user)
        await ctx.event(KIND, user, "SocketClosed", f"Docker access is {eff.docker_access} now: socket closed")
    status.socket_open = wanted


async def follow_containers(
    ctx: Context, proxy: DockerProxyPort, user: str, may_run: bool, status: DockerAccessStatus, now: datetime
) -> float | None:
    """Stop the user's containers while they may not run them, remove them after the grace
    period; the status's counts. When to come back (the removal), or None."""
    owned = [o for o in await proxy.owned(user) if o.kind == "container"]
    found = await ctx.engine.inspect_containers([o.id for o in owned])
    if gone := [o.id for o in owned if o.id not in found]:
        await proxy.forget(user, gone)  # removed by the user or by hand: nothing to keep
    rows = [row(o.id, o.name, found[o.id]) for o in owned if o.id in found]
    requeue = None
    if may_run or not rows:
        status.stopped_since = None
    else:
        status.stopped_since = status.stopped_since or now
        why = "their server stopped" if status.level == "limited" else "their limited Docker access ended"
        if live := [r for r in rows if r.state in LIVE_STATES]:
            # At once, not one after another: each may take the engine's stop timeout.
            await asyncio.gather(*(ctx.engine.stop_container(r.id) for r in live))
            for r in live:
                r.state = "exited"
            names = ", ".join(r.name for r in live)
            await ctx.event(KIND, user, "ContainersStopped", f"stopped {len(live)} containers ({names}): {why}")
        due = status.stopped_since + timedelta(seconds=ctx.settings.docker_limited_grace_seconds)
        if now >= due:
            for r in rows:
                await ctx.engine.remove_container(r.id)
            await proxy.forget(user, [r.id for r in rows])
            names = ", ".join(r.name for r in rows)
            await ctx.event(KIND, user, "ContainersRemoved", f"removed {len(rows)} containers ({names}): {why}")
            rows, status.stopped_since = [], None
        else:
            requeue = max(1.0, (due - now).total_seconds())
    status.containers = rows
    status.container_count = len(rows)
    status.running = sum(1 for r in rows if r.state in LIVE_STATES)
    status.memory = sum(r.memory for r in rows)
    status.cpus = round(sum(r.cpus for r in rows), 3)
    return requeue


def row(cid: str, name: str, info: dict[str, Any]) -> DockerContainer:
    host = info.get("HostConfig") or {}
    return DockerContainer(
        id=cid,
        name=(info.get("Name") or name or cid[:12]).lstrip("/"),
        state=(info.get("State") or {}).get("Status", "unknown"),
        memory=int(host.get("Memory") or 0),
        cpus=(host.get("NanoCpus") or 0) / 1e9,
    )


async def notify_ended(ctx: Context, user: str, servers: dict[str, Any]) -> None:
    """Tell the user in each running lab, with the server's own token (the broadcasts' way)."""
    ready = {name: sv["url"] for name, sv in servers.items() if sv.get("ready") and sv.get("url")}
    if not ready:
        return
    tokens = await ctx.engine.server_tokens(ctx.settings.platform_id)
    minutes = ctx.settings.docker_limited_grace_seconds / 60
    message = (
        "Your limited Docker access has ended (your group policies no longer give it): the Docker socket "
        f"in your lab is closed and your containers are stopped; they are removed in {minutes:g} minutes."
    )
    targets = [
        lab.Target(user, name, lab.ingest_url(ctx.settings.proxy_url, url), token)
        for name, url in ready.items()
        if (token := tokens.get((user, name)))
    ]
    if not targets:
        return
    body = lab.payload(message, "warning", False, True, {"dockerAccess": user})
    results = await lab.deliver_all(targets, body, limits=lab.Limits(concurrency=2, deadline=10))
    outcomes = ", ".join(f"{r.target.server or 'default'}: {r.outcome}" for r in results)
    await ctx.event(KIND, user, "Notified", f"told in the lab that limited Docker access ended ({outcomes})")
