"""Quota (built-in watch, one key per user with a quota or a storage soft limit): the
GroupPolicy `quota` and `storage` of docs/usage.md#quotas, followed every
QUOTA_CHECK_SECONDS.

Each reconcile combines the user's policies in force (`quotas.combine_quota`,
`combine_storage`), reads their use in the window and their volumes' latest sizes from the
ledger (`quota_usage`), adds the operators' grants (`QuotaGrants/<user>`), and decides
(`quotas.decide`). Then:

- at 80 % and 95 % of a limit (and at 100 %), the user is told once per threshold per
  window in each running lab, the way DockerAccess tells them (the server's own token,
  `clients.lab`); the notice is recorded before it is sent, so a crash never sends it twice;
- at 100 % with `enforce: stop`, after the notice and QUOTA_STOP_GRACE_SECONDS, their
  running servers are stopped through the hub (`restarts.stop_all`, what ServerStop uses).
  Keep-alive does not hold it off; a stopped (or culled) server's clock stops with it;
- a volume past a `warnAt` of its soft limit: a notice with the sizes (again only after it
  fell below and crossed once more). Nothing is refused: storage limits are soft.

The hub refuses a spawn at 100 % itself (`hub_config/quota_check.py`, same functions).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import in_force, quota_usage, restarts
from ..api.quota import GRANTS_KIND, QuotaStatus
from ..clients import lab
from ..context import Context
from ..quotas import (
    QUOTA_KIND,
    EffectiveQuota,
    Grant,
    StorageSoftLimit,
    combine_quota,
    combine_storage,
    decide,
    live_grants,
    quota_notice,
    quota_notices_due,
    storage_limits_json,
    storage_notice,
    storage_notices_due,
    storage_states,
)
from ..result import Result

log = logging.getLogger("reconciler.quota")
KIND = QUOTA_KIND


async def names(ctx: Context) -> set[str]:
    """Members of groups whose policies give a quota or a storage limit, and users the watch
    already looked at (so one whose quota went away is cleared)."""
    policies = await asyncio.to_thread(in_force.group_policies, ctx.store)
    groups = {g for p in policies if p.spec.quota is not None or p.spec.storage for g in p.spec.groups}
    hub_groups = await ctx.hub.list_groups() if groups else {}
    members = {u for g in groups for u in (hub_groups.get(g) or {}).get("users", [])}
    observed = await asyncio.to_thread(ctx.store.observed_all, KIND)
    return members | {n for n, body in observed.items() if body.get("quota") or body.get("storage")}


def grants_of(body: dict[str, Any]) -> list[Grant]:
    return [Grant.load(g) for g in body.get("grants") or []]


def ready_labs(servers: dict[str, Any]) -> dict[str, str]:
    return {name: sv["url"] for name, sv in servers.items() if sv.get("ready") and sv.get("url")}


Notice = tuple[str, str, dict[str, Any]]  # (message, level, data)


async def reconcile(user: str, ctx: Context) -> Result:
    now = datetime.now(UTC)
    model = await ctx.hub.get_user(user)
    policies = await asyncio.to_thread(in_force.group_policies, ctx.store)
    groups = (model or {}).get("groups") or []
    quota = combine_quota(groups, policies) if model else None
    storage_limits = combine_storage(groups, policies) if model else {}
    previous = QuotaStatus.load(await ctx.observed(KIND, user))
    status = QuotaStatus(phase="Ready", checked=now, notified=previous.notified)
    if quota is None and not storage_limits:
        return Result(status)  # nothing to follow (the key drops out of `names`)
    servers: dict[str, Any] = (model or {}).get("servers") or {}
    labs = ready_labs(servers)
    tell: list[Notice] = []
    if quota is not None:
        tell += await follow_quota(ctx, user, quota, bool(labs), bool(servers), previous, status, now)
    if storage_limits:
        tell += await follow_storage(ctx, user, storage_limits, bool(labs), previous, status)
    if tell:
        await ctx.record_observed(KIND, user, status)  # recorded before sending: never told twice
        for message, level, data in tell:
            await notify(ctx, user, labs, message, level, data)
    requeue = ctx.settings.quota_check_seconds
    if status.stop_due is not None and now >= status.stop_due:
        await stop_servers(ctx, user, sorted(servers), status)
    elif status.stop_due is not None:
        requeue = min(requeue, max(1.0, (status.stop_due - now).total_seconds()))
    return Result(status, requeue)


async def follow_quota(
    ctx: Context,
    user: str,
    quota: EffectiveQuota,
    labs: bool,
    running: bool,
    previous: QuotaStatus,
    status: QuotaStatus,
    now: datetime,
) -> list[Notice]:
    """The decision in the status; the notices due (where a lab can show them: until then
    the home page does); with `enforce: stop` at 100 %, when the servers are stopped (a stop
    no longer needed, by a grant or use leaving the window, is dropped)."""
    grants = grants_of(await ctx.observed(GRANTS_KIND, user))
    usage = await asyncio.to_thread(quota_usage.user_usage, ctx.store, user, quota, now)
    decision = decide(usage, quota, live_grants(grants, quota.window, now), now)
    status.quota, status.limits = quota.as_dict(), [s.as_dict() for s in decision.limits]
    status.refused = decision.refused
    tell: list[Notice] = []
    for state, threshold in quota_notices_due(decision, status.notified, now) if labs else []:
        status.notified = {**status.notified, state.kind: {**status.notified.get(state.kind, {}), str(threshold): now}}
        data = {"quota": user, "kind": state.kind, "threshold": threshold}
        tell.append((quota_notice(state, threshold, quota.enforce), "error" if threshold >= 100 else "warning", data))
    if decision.refused and quota.enforce == "stop" and running:
        status.stop_due = previous.stop_due or now + timedelta(seconds=ctx.settings.quota_stop_grace_seconds)
    return tell


async def follow_storage(
    ctx: Context,
    user: str,
    limits: dict[str, StorageSoftLimit],
    labs: bool,
    previous: QuotaStatus,
    status: QuotaStatus,
) -> list[Notice]:
    """The user's volumes against their soft limits; the notices due."""
    rows = await asyncio.to_thread(quota_usage.user_storage, ctx.store, user)
    states = storage_states(rows, limits)
    status.storage = [s.as_dict() for s in states]
    status.storage_limits = storage_limits_json(limits)
    due, sent = storage_notices_due(states, previous.storage_notified) if labs else ([], previous.storage_notified)
    status.storage_notified = {k: v for k, v in sent.items() if any(s.key == k and s.crossed for s in states)}
    return [(storage_notice(s), "warning", {"storage": user, "volume": s.volume}) for s in due]


async def notify(ctx: Context, user: str, labs: dict[str, str], message: str, level: str, data: dict[str, Any]) -> None:
    """Tell the user in each running lab, with the server's own token (the broadcasts' way)."""
    tokens = await ctx.engine.server_tokens(ctx.settings.platform_id)
    targets = [
        lab.Target(user, name, lab.ingest_url(ctx.settings.proxy_url, url), token)
        for name, url in labs.items()
        if (token := tokens.get((user, name)))
    ]
    if not targets:
        await ctx.event(KIND, user, "NotNotified", f"no lab to tell: {message}", "Warning")
        return
    body = lab.payload(message, level, False, True, data)
    results = await lab.deliver_all(targets, body, limits=lab.Limits(concurrency=2, deadline=10))
    outcomes = ", ".join(f"{r.target.server or 'default'}: {r.outcome}" for r in results)
    await ctx.event(KIND, user, "Notified", f"{message} ({outcomes})")


async def stop_servers(ctx: Context, user: str, servers: list[str], status: QuotaStatus) -> None:
    """`enforce: stop`: the user's running servers, stopped through the hub."""
    full = ", ".join(f"{s['field']} {s['usedHours']:.2f}/{s['limitHours']:g} h" for s in status.limits if s.get("full"))
    await ctx.event(
        KIND,
        user,
        "Stopping",
        f"quota used up ({full}), enforce: stop: stopping {', '.join(s or 'default' for s in servers)}",
        "Warning",
    )
    await restarts.stop_all(ctx.hub, user, servers, ctx.settings.spawn_timeout + 30)
    status.stop_due = None
    await ctx.event(KIND, user, "Stopped", f"stopped {len(servers)} servers: quota used up ({full})")
