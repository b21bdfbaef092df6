"""Broadcast (one-shot, or recurring with a schedule): a notice to every selected lab.

A run takes its targets when it starts: the ready servers (default and named) of the
selected users, as the hub's REST API reports them (a constant number of requests, however
many targets). Each lab is addressed through the proxy at its own base URL, with its own
server token (read from its container), so no credential is minted and none is shared.
Outcomes go to the delivery ledger as they happen; a restarted run resends only what is
not final. `at` fires once; `cron` fires at each match, every firing a run of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from ..context import Context
from ..deliveries import PENDING
from ..delivery import Limits, Result, Target, deliver_all
from ..resources import BroadcastSpec, Condition, next_cron_time, set_condition
from ..store import StoredResource

KIND = "Broadcast"
INGEST = "jupyterlab-notifications-extension/ingest"
RECENT_RUNS = 10
log = logging.getLogger("reconciler.broadcast")


def payload(name: str, spec: BroadcastSpec) -> dict[str, Any]:
    actions = (
        [{"label": "Dismiss", "caption": "Dismiss this notification", "displayType": "default"}]
        if spec.dismiss_button
        else []
    )
    return {
        "message": spec.message,
        "type": spec.type,
        "autoClose": spec.auto_close,
        "actions": actions,
        "data": {"broadcast": name},
        "immediate": True,
    }


def next_due(spec: BroadcastSpec, status: dict[str, Any], created: datetime) -> datetime | None:
    """When the next run is due (maybe in the past: run now); None: no run any more."""
    last = status.get("lastScheduled")
    if spec.schedule is None:
        return None if last else created
    if spec.schedule.at is not None:
        return None if last else spec.schedule.at
    after = datetime.fromisoformat(last) if last else created
    return next_cron_time(spec.schedule.cron, after)


def ingest_url(proxy_url: str, server_url: str) -> str:
    """A lab's ingest endpoint, through the proxy, from the server's own base URL (as the
    hub reports it, e.g. `/user/alice/` or `/jupyterhub/user/alice/gpu/`)."""
    return proxy_url + server_url.rstrip("/") + "/" + INGEST


async def select_targets(spec: BroadcastSpec, ctx: Context) -> list[Target]:
    users = {u["name"]: u for u in await ctx.hub.paginated("users?state=ready")}
    if spec.targets is not None:
        wanted = set(spec.targets.users)
        if spec.targets.groups:
            groups = await ctx.hub.list_groups()
            for group in spec.targets.groups:
                wanted |= set((groups.get(group) or {}).get("users", []))
        users = {n: u for n, u in users.items() if n in wanted}
    tokens = await ctx.engine.server_tokens(ctx.settings.platform_id)
    targets = []
    for username, user in sorted(users.items()):
        for server_name, server in sorted((user.get("servers") or {}).items()):
            if not server.get("ready"):
                continue
            url = ingest_url(ctx.settings.proxy_url, server["url"])
            targets.append(Target(username, server_name, url, tokens.get((username, server_name), "")))
    return targets


async def run_delivery(ctx: Context, obj: StoredResource, spec: BroadcastSpec, run: str, targets: list[Target]) -> None:
    """Send to `targets`, writing each outcome to the ledger within a fraction of a second."""
    ledger = ctx.deliveries
    pending: list[Result] = []
    preview = spec.message[:40]

    async def on_result(result: Result) -> None:
        t = result.target
        log.info(
            "broadcast/%s %s/%s %r: %s in %d ms%s",
            obj.name,
            t.user,
            t.server,
            preview,
            result.outcome,
            result.ms,
            f" ({result.error})" if result.error else "",
        )
        pending.append(result)

    async def flush_every(seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            batch, pending[:] = list(pending), []
            await asyncio.to_thread(ledger.record, obj.name, run, batch)

    no_token = [t for t in targets if not t.token]
    for t in no_token:
        await on_result(Result(t, "failed", error="no credential: the server's container has no API token"))
    s = ctx.settings
    limits = Limits(s.broadcast_concurrency, s.broadcast_attempt_timeout, s.broadcast_deadline)
    flusher = asyncio.create_task(flush_every(0.2))
    try:
        await deliver_all([t for t in targets if t.token], payload(obj.name, spec), on_result, limits)
    finally:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await asyncio.to_thread(ledger.record, obj.name, run, list(pending))


async def reconcile(obj: StoredResource, ctx: Context) -> dict[str, Any]:
    spec = BroadcastSpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    status: dict[str, Any] = dict(obj.status)
    status["observedGeneration"] = obj.generation
    conditions = [Condition.model_validate(c) for c in status.get("conditions", [])]
    current = status.get("currentRun")

    if current is None:
        due = next_due(spec, status, obj.created)
        if due is None:
            status["phase"] = "Completed"
            return status
        if due > now:
            status.update(phase="Scheduled", nextRun=due.isoformat(), requeueAfter=(due - now).total_seconds())
            return status
        run = now.strftime("%Y%m%dT%H%M%S.%fZ")
        targets = await select_targets(spec, ctx)
        current = {"id": run, "scheduledFor": due.isoformat(), "startedAt": now.isoformat(), "total": len(targets)}
        status.update(phase="Delivering", currentRun=current, lastScheduled=due.isoformat())
        status.pop("nextRun", None)
        await asyncio.to_thread(ctx.deliveries.start_run, obj.name, run, [(t.user, t.server, t.url) for t in targets])
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, "Delivering", f"run {run}: {len(targets)} running server(s)")
    else:
        # Resuming after a restart: only what has no final outcome yet is sent again.
        run = current["id"]
        rows = await asyncio.to_thread(ctx.deliveries.rows, obj.name, run)
        open_rows = [r for r in rows if r["outcome"] == PENDING]
        tokens = await ctx.engine.server_tokens(ctx.settings.platform_id)
        targets = [
            Target(r["user"], r["server"], r["url"], tokens.get((r["user"], r["server"]), "")) for r in open_rows
        ]
        await ctx.event(KIND, obj.name, "Resuming", f"run {run}: {len(targets)} of {len(rows)} not delivered yet")

    await run_delivery(ctx, obj, spec, run, targets)

    counts = await asyncio.to_thread(ctx.deliveries.counts, obj.name, run)
    finished = datetime.now(UTC)
    summary = {**current, "finishedAt": finished.isoformat(), "counts": counts}
    status["runs"] = [summary, *status.get("runs", [])][:RECENT_RUNS]
    status["counts"] = counts
    status["currentRun"] = None
    delivered, total = counts["delivered"], counts["total"]
    message = f"run {run}: {delivered}/{total} delivered"
    if total - delivered:
        message += f", {counts['failed']} failed, {counts['timeout']} timed out"
    await ctx.event(KIND, obj.name, "Delivered", message, type="Normal" if delivered == total else "Warning")
    conditions = set_condition(
        conditions,
        "Delivered",
        "True" if delivered == total else "False",
        "AllDelivered" if delivered == total else "SomeNotDelivered",
        message,
        finished,
    )
    status["conditions"] = conditions
    due = next_due(spec, status, obj.created)
    if due is None:
        status["phase"] = "Completed"
    else:
        status.update(
            phase="Scheduled", nextRun=due.isoformat(), requeueAfter=max(0.0, (due - finished).total_seconds())
        )
    return status
