"""IdleCullPolicy (standing): stop the idle servers of the users it governs, warned first.

One pass reads the hub's active servers once (shared by every policy reconciled within two
seconds, so a pass over all policies costs one listing), decides per server (`culling`),
sends the due notices through the delivery core in one batch, and stops due servers through
the hub's REST API (never by removing containers). It comes back at the next notice or
deadline among its servers, and at least every JUPYTERHUB_IDLE_CULLER_INTERVAL seconds.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import aiohttp
from prometheus_client import Counter

from .. import culling
from ..api.idlecullpolicy import CullAction, CulledServer, IdleCullPolicySpec, IdleCullPolicyStatus
from ..clients import lab
from ..clients.hub import NotFound
from ..clients.lab import Limits, Target, deliver_all
from ..context import Context
from ..culling import Decision
from ..errors import PermanentError, TemporaryError
from ..in_force import IDLE_CULL_POLICY, idle_cull_policies
from ..result import Result
from ..store import Store, StoredResource

KIND = IDLE_CULL_POLICY
SEED_NAME = "idle-culler"
RECENT_ACTIONS = 20
MIN_REQUEUE = 1.0
ACTIONS = Counter("jhds_idle_cull_actions_total", "Idle-culling notices and stops by policy", ["policy", "action"])
log = logging.getLogger("reconciler.idlecull")


def busy_users(store: Store) -> dict[str, str]:
    """Users whose servers are left alone now: an open request for them, or an unfinished
    RolloutRestart holding one of their servers."""
    rollouts = [(r.name, r.status) for r in store.list("RolloutRestart") if r.finished is None]
    return culling.rollout_held(rollouts) | store.open_request_subjects(culling.BUSY_KINDS)


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = IdleCullPolicySpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    previous = IdleCullPolicyStatus.load(obj.status)
    users = await ctx.active_users()
    in_force = await asyncio.to_thread(idle_cull_policies, ctx.store)
    keeps = await asyncio.to_thread(ctx.store.observed_all, culling.KEEP_ALIVE_KIND)
    busy = await asyncio.to_thread(busy_users, ctx.store)
    before = {(e.user, e.server): e for e in previous.servers}

    decisions: list[Decision] = []
    for server in culling.servers_from_users(users):
        if server.pending == "stop":  # on its way out already
            continue
        governing = culling.winner(server.user, server.groups, in_force)
        if governing is None or governing.name != obj.name:
            continue
        pending = f"{busy[server.user]} is pending" if server.user in busy else None
        keep = culling.keep_until(keeps.get(server.user), now)
        decisions.append(culling.decide(server, spec, before.get((server.user, server.server)), keep, pending, now))

    recent = list(previous.recent)
    await _warn(ctx, obj.name, [d for d in decisions if d.action == "warn"], recent)
    for d in decisions:
        if d.action == "stop":
            await _stop(ctx, obj.name, d, recent)
        elif d.action in ("would-stop", "skip") and _newly(d, before):
            await _report(ctx, obj.name, d, recent)

    status = IdleCullPolicyStatus(
        conditions=previous.conditions,
        last_pass=now,
        servers=[d.entry for d in decisions],
        recent=recent[-RECENT_ACTIONS:],
    )
    counts = {state: sum(d.entry.state == state for d in decisions) for state in ("Warned", "Stopped", "WouldStop")}
    summary = f"governs {len(decisions)} running servers: {counts['Warned']} warned, {counts['Stopped']} stopped"
    if spec.dry_run:
        summary += f", {counts['WouldStop']} would be stopped (dry run)"
    status.phase = "Ready"
    status.set_condition("Ready", "True", "Reconciled", summary, now)
    status.set_condition("Stalled", "False", "Reconciled", "", now)
    status.set_condition("DryRun", "True" if spec.dry_run else "False", "Spec", "", now)
    return Result(status, _requeue(decisions, ctx.settings.idle_culler_interval, now))


def _newly(d: Decision, before: dict[tuple[str, str], CulledServer]) -> bool:
    """Not reported yet for this deadline."""
    old = before.get((d.server.user, d.server.server))
    return old is None or old.state != d.entry.state or old.deadline != d.entry.deadline


def _requeue(decisions: list[Decision], interval: float, now: datetime) -> float:
    wakes = [(d.wake_at - now).total_seconds() for d in decisions if d.wake_at is not None]
    return max(MIN_REQUEUE, min([interval, *wakes]))


def _record(recent: list[CullAction], d: Decision, action: str, reason: str) -> None:
    recent.append(
        CullAction(time=datetime.now(UTC), user=d.server.user, server=d.server.server, action=action, reason=reason)
    )


def _label(d: Decision) -> str:
    return f"{d.server.user}/{d.server.server}" if d.server.server else f"{d.server.user}'s server"


async def _warn(ctx: Context, policy: str, due: list[Decision], recent: list[CullAction]) -> None:
    """The due notices through the delivery core (each server has its own deadline, so its
    own message). Each is recorded, delivered or not: a deadline gets one notice, and the
    stop does not wait for a lab that cannot hear."""
    if not due:
        return
    s = ctx.settings
    tokens = await ctx.engine.server_tokens(s.platform_id)
    home = f"{s.public_url.rstrip('/')}/hub/home"
    limits = Limits(concurrency=1, attempt_timeout=s.broadcast_attempt_timeout, deadline=s.broadcast_deadline)
    bound = asyncio.Semaphore(s.broadcast_concurrency)

    async def send(d: Decision, session: aiohttp.ClientSession) -> lab.Result:
        url = lab.ingest_url(s.proxy_url, d.server.url)
        target = Target(d.server.user, d.server.server, url, tokens.get((d.server.user, d.server.server), ""))
        data = {"idleCullPolicy": policy, "deadline": d.entry.deadline.isoformat() if d.entry.deadline else None}
        body = lab.payload(culling.notice(d.entry, datetime.now(UTC), home), "warning", False, True, data)
        async with bound:
            (result,) = await deliver_all([target], body, limits=limits, session=session)
        return result

    async with lab.new_session(s.broadcast_concurrency) as session:  # one connection pool for the pass
        results = await asyncio.gather(*(send(d, session) for d in due))
    done = datetime.now(UTC)  # after the notice's request: activity up to here (+ grace) is ours
    for d, result in zip(due, results, strict=True):
        entry = d.entry
        entry.warned_at, entry.warned_for, entry.state = done, entry.deadline, "Warned"
        entry.activity_at_warning = entry.last_activity
        outcome = "delivered" if result.outcome == "delivered" else f"not delivered ({result.error or result.outcome})"
        entry.message = f"notice {outcome}"
        reason = f"stops at {entry.deadline:%H:%M:%S} UTC ({entry.reason}); notice {outcome}"
        _record(recent, d, "Warned", reason)
        ACTIONS.labels(policy, "warned").inc()
        await ctx.event(KIND, policy, "Warned", f"{_label(d)}: {reason}")


async def _stop(ctx: Context, policy: str, d: Decision, recent: list[CullAction]) -> None:
    idle = f"idle {d.entry.idle_seconds} s" if d.entry.reason == "idle" else "past maxAge"
    try:
        await ctx.hub.stop_server(d.server.user, d.server.server)
    except (PermanentError, TemporaryError) as e:
        d.entry.state, d.entry.message = "Skipped", f"stop failed: {e}"
        _record(recent, d, "Skipped", str(e))
        await ctx.event(KIND, policy, "StopFailed", f"{_label(d)}: {e}", type="Warning")
        return
    except NotFound:  # gone already, which is what was wanted
        pass
    d.entry.message = f"stopped ({idle})"
    _record(recent, d, "Stopped", idle)
    ACTIONS.labels(policy, "stopped").inc()
    await ctx.event(KIND, policy, "Stopped", f"stopped {_label(d)} ({idle}, deadline {d.entry.deadline:%H:%M:%S} UTC)")


async def _report(ctx: Context, policy: str, d: Decision, recent: list[CullAction]) -> None:
    """A dry run's would-be stop, or a due server left alone: said once per deadline."""
    action = "WouldStop" if d.action == "would-stop" else "Skipped"
    _record(recent, d, action, d.entry.message)
    ACTIONS.labels(policy, "would-stop" if action == "WouldStop" else "skipped").inc()
    await ctx.event(KIND, policy, action, f"{_label(d)}: {d.entry.message} (idle {d.entry.idle_seconds} s)")
