"""RolloutRestart (one-shot): restart the servers a selector picks, a few at a time.

1. The targets are chosen once (the drifted servers of the last drift survey, members of
   groups, listed users, or everyone running) and written to the status.
2. Each user is told in JupyterLab, `warnBefore` ahead (one notice to all, then the wait:
   the wait is a requeue, not a sleep, so a restarted reconciler resumes it).
3. At most `maxUnavailable` servers are down at once: a batch is stopped and started
   through the hub and must be ready again before the next begins. A server used within
   `skipActiveWithin` is put last; if it is still in use when only such servers are left,
   it is skipped (`whenActive: Skip`) or waited for (`Wait`, until `activeDeadlineSeconds`).

Each server's state and step is written before each side effect, so a crash resumes where
it was: a server found `Restarting` is started if it is down, and waited for. A server that
does not come back within the spawn timeout is a failed attempt of the whole rollout
(retried with backoff; past `backoffLimit` the rollout is Failed, that server `Restarting`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from vocabulary import naming

from .. import restarts
from ..api.rolloutrestart import RolloutRestartSpec, RolloutRestartStatus, RolloutServer
from ..clients import lab
from ..context import Context
from ..culling import as_utc
from ..result import Result
from ..store import StoredResource

KIND = "RolloutRestart"
WAIT_ACTIVE = 5.0  # how often a `Wait` rollout looks again at servers in use
DONE_STATES = ("Restarted", "Skipped", "Gone")


def _label(s: RolloutServer) -> str:
    return f"{s.user}/{s.server}" if s.server else f"{s.user}'s server"


async def targets(ctx: Context, spec: RolloutRestartSpec) -> list[tuple[str, str]]:
    """(user, server) of the running servers the selector picks, in name order."""
    survey = await ctx.observed(naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY) if spec.selector.drifted else {}
    return spec.selector.pick([] if spec.selector.drifted else await ctx.active_users(max_age=0), survey)


async def _servers(ctx: Context) -> dict[tuple[str, str], dict[str, Any]]:
    return {(u["name"], n): s for u in await ctx.active_users(max_age=0) for n, s in (u.get("servers") or {}).items()}


NOTICE_GRACE = timedelta(seconds=3)


def is_active(server: Mapping[str, Any] | None, within: int, now: datetime, t: RolloutServer) -> bool:
    """Used within `within` seconds, not counting our own notice: its request through the
    proxy is activity too, stamped between sending and a moment after it was done."""
    last = as_utc((server or {}).get("last_activity"))
    if not within or last is None or now - last >= timedelta(seconds=within):
        return False
    ours = t.warned_at is not None and t.notice_done_at is not None
    return not (ours and t.warned_at <= last <= t.notice_done_at + NOTICE_GRACE)


async def warn(ctx: Context, status: RolloutRestartStatus, spec: RolloutRestartSpec, name: str) -> None:
    """One notice to every target's lab (delivered or not: the rollout does not wait for a
    lab that cannot hear)."""
    s = ctx.settings
    tokens = await ctx.engine.server_tokens(s.platform_id)
    running = await _servers(ctx)
    minutes = max(1, round(spec.warn_before / 60))
    message = (
        f"Your server restarts in about {minutes} min to apply the platform's updated settings "
        "(image, limits, group policy). Save your work; your files are kept."
    )
    jobs = [
        lab.Target(t.user, t.server, lab.ingest_url(s.proxy_url, running[(t.user, t.server)]["url"]), tok)
        for t in status.servers
        if (t.user, t.server) in running and (tok := tokens.get((t.user, t.server)))
    ]
    body = lab.payload(message, "warning", False, True, {"rolloutRestart": name})
    sent = datetime.now(UTC)
    limits = lab.Limits(concurrency=s.broadcast_concurrency, attempt_timeout=s.broadcast_attempt_timeout, deadline=30)
    results = await lab.deliver_all(jobs, body, limits=limits) if jobs else []
    outcome = {(r.target.user, r.target.server): r.outcome for r in results}
    status.warned_at = datetime.now(UTC)
    for t in status.servers:
        t.state, t.warned_at, t.notice_done_at = "Warned", sent, status.warned_at
        t.message = f"notice {outcome.get((t.user, t.server), 'not delivered (no token)')}"
    delivered = sum(o == "delivered" for o in outcome.values())
    await ctx.event(KIND, name, "Warned", f"{delivered} of {len(status.servers)} labs told: restart in {minutes} min")


async def restart(ctx: Context, status: RolloutRestartStatus, t: RolloutServer, name: str) -> None:
    """Stop, then start one server through the hub; the step is recorded before each."""

    async def record(step: restarts.Step) -> None:
        if step == "stopping":
            t.state, t.started_at = "Restarting", datetime.now(UTC)
        t.step = step
        await ctx.progress(KIND, name, status)

    await restarts.restart(ctx.hub, t.user, t.server, float(ctx.settings.spawn_timeout), t.step, record)
    t.state, t.step, t.finished_at = "Restarted", None, datetime.now(UTC)
    seconds = (t.finished_at - (t.started_at or t.finished_at)).total_seconds()
    t.message = f"restarted in {seconds:.1f} s"
    await ctx.progress(KIND, name, status)
    await ctx.event(KIND, name, "Restarted", f"{_label(t)} restarted and ready in {seconds:.1f} s")


def next_batch(
    status: RolloutRestartStatus, spec: RolloutRestartSpec, running: Mapping[tuple[str, str], Any], now: datetime
) -> tuple[list[RolloutServer], list[RolloutServer]]:
    """(the next servers to restart, at most maxUnavailable; those left because in use).
    A server already Restarting (a resumed pass) comes first."""
    left = [t for t in status.servers if t.state not in DONE_STATES]
    within = spec.skip_active_within
    busy = [t for t in left if t.step is None and is_active(running.get((t.user, t.server)), within, now, t)]
    ready = [t for t in left if t not in busy]
    ready.sort(key=lambda t: t.step is None)
    return ready[: spec.max_unavailable], busy


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = RolloutRestartSpec.model_validate(obj.spec)
    status = RolloutRestartStatus.load(obj.status)
    status.phase, status.observed_generation = "Running", obj.generation
    if status.started_at is None:
        status.started_at = datetime.now(UTC)
        status.servers = [RolloutServer(user=u, server=s) for u, s in await targets(ctx, spec)]
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, "Started", f"{len(status.servers)} servers to restart")
    if spec.warn_before and status.warned_at is None and status.servers:
        await warn(ctx, status, spec, obj.name)
        await ctx.progress(KIND, obj.name, status)
    if status.warned_at is not None:
        remaining = (status.warned_at + timedelta(seconds=spec.warn_before) - datetime.now(UTC)).total_seconds()
        if remaining > 0:
            return Result(status, remaining)
    return await _roll(ctx, obj.name, spec, status)


async def _roll(ctx: Context, name: str, spec: RolloutRestartSpec, status: RolloutRestartStatus) -> Result:
    while True:
        now = datetime.now(UTC)
        running = await _servers(ctx)
        for t in status.servers:
            if t.state not in DONE_STATES and t.step is None and (t.user, t.server) not in running:
                t.state, t.message = "Gone", "not running any more: nothing to restart"
        batch, busy = next_batch(status, spec, running, now)
        for t in busy:
            if t.state != "Deferred":
                t.state, t.message = "Deferred", f"in use within the last {spec.skip_active_within} s: put last"
                await ctx.event(KIND, name, "Deferred", f"{_label(t)} is in use: put last")
        if not batch and busy and spec.when_active == "Wait":
            await ctx.progress(KIND, name, status)
            return Result(status, WAIT_ACTIVE)
        if not batch:
            for t in busy:
                t.state, t.message = "Skipped", f"still in use (within {spec.skip_active_within} s): not restarted"
                await ctx.event(KIND, name, "Skipped", f"{_label(t)} is in use: skipped")
            break
        await asyncio.gather(*(restart(ctx, status, t, name) for t in batch))
    return _finish(status)


def _finish(status: RolloutRestartStatus) -> Result:
    now = datetime.now(UTC)
    status.restarted = sum(t.state == "Restarted" for t in status.servers)
    status.skipped = sum(t.state in ("Skipped", "Gone") for t in status.servers)
    status.phase, status.finished_at = "Succeeded", now
    message = f"{status.restarted} restarted, {status.skipped} skipped"
    status.set_condition("Complete", "True", "Finished", message, now)
    return Result(status)
