"""A broadcast's runs: who gets it (targets), sending (the delivery core), the ledger, the
run's record in the status, and late joiners within `validFor`. The Broadcast controller's
helpers, kept below the controllers so that no controller imports another.

A run takes its targets when it starts: the ready servers (default and named) of the
selected users, as the hub's REST API reports them (a constant number of requests, however
many targets). Each lab is addressed through the proxy at its own base URL, with its own
server token (read from its container), so no credential is minted and none is shared.
Outcomes go to the delivery ledger as they happen; a restarted run resends only what is
not final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from .api.broadcast import BroadcastRun, BroadcastSpec, BroadcastStatus
from .clients import lab
from .clients.lab import Limits, Result, Target, deliver_all
from .context import Context
from .deliveries import PENDING
from .store import StoredResource

KIND = "Broadcast"
log = logging.getLogger("reconciler.broadcast")


def payload(name: str, spec: BroadcastSpec) -> dict[str, Any]:
    return lab.payload(spec.message, spec.type, spec.auto_close, spec.dismiss_button, {"broadcast": name})


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
            url = lab.ingest_url(ctx.settings.proxy_url, server["url"])
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


async def start_run(
    ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus, due: datetime
) -> list[Target]:
    """Take the targets of a new run and record it (ledger rows, status) before sending."""
    now = datetime.now(UTC)
    run = now.strftime("%Y%m%dT%H%M%S.%fZ")
    targets = await select_targets(spec, ctx)
    status.current_run = BroadcastRun(id=run, scheduled_for=due, started_at=now, total=len(targets))
    status.phase, status.last_scheduled, status.next_run = "Delivering", due, None
    await asyncio.to_thread(ctx.deliveries.start_run, obj.name, run, [(t.user, t.server, t.url) for t in targets])
    await ctx.progress(KIND, obj.name, status)
    await ctx.event(KIND, obj.name, "Delivering", f"run {run}: {len(targets)} running server(s)")
    return targets


async def resume_run(ctx: Context, obj: StoredResource, run: str) -> list[Target]:
    """After a restart: only what has no final outcome yet is sent again."""
    rows = await asyncio.to_thread(ctx.deliveries.rows, obj.name, run)
    open_rows = [r for r in rows if r["outcome"] == PENDING]
    tokens = await ctx.engine.server_tokens(ctx.settings.platform_id)
    targets = [Target(r["user"], r["server"], r["url"], tokens.get((r["user"], r["server"]), "")) for r in open_rows]
    await ctx.event(KIND, obj.name, "Resuming", f"run {run}: {len(targets)} of {len(rows)} not delivered yet")
    return targets


async def finish_run(ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus) -> None:
    """Counts from the ledger into the status, one event, the Delivered condition."""
    current = status.current_run
    assert current is not None
    counts = await asyncio.to_thread(ctx.deliveries.counts, obj.name, current.id)
    finished = datetime.now(UTC)
    delivered, total = counts["delivered"], counts["total"]
    all_in = delivered == total
    outcome = "Succeeded" if all_in else "Failed"
    summary = current.model_copy(update={"finished_at": finished, "counts": counts, "outcome": outcome})
    runs = [summary, *status.runs]
    status.runs = keep_history(spec, runs)
    dropped = [r.id for r in runs if r not in status.runs]
    if dropped:  # their per-server records go with them
        await asyncio.to_thread(ctx.deliveries.forget_runs, obj.name, dropped)
    status.counts, status.current_run = counts, None
    message = f"run {current.id}: {delivered}/{total} delivered"
    if total - delivered:
        message += f", {counts['failed']} failed, {counts['timeout']} timed out"
    await ctx.event(KIND, obj.name, "Delivered", message, type="Normal" if all_in else "Warning")
    status.set_condition(
        "Delivered", "True" if all_in else "False", "AllDelivered" if all_in else "SomeNotDelivered", message, finished
    )


def keep_history(spec: BroadcastSpec, runs: list[BroadcastRun]) -> list[BroadcastRun]:
    """The newest runs, at most the history limits of successful and failed ones (CronJob's)."""
    kept, ok, failed = [], 0, 0
    for run in runs:
        if run.outcome == "Failed":
            failed += 1
            if failed <= spec.failed_runs_history_limit:
                kept.append(run)
        else:
            ok += 1
            if ok <= max(1, spec.successful_runs_history_limit):
                kept.append(run)
    return kept


def window_end(spec: BroadcastSpec, status: BroadcastStatus) -> datetime | None:
    """Until when late joiners of the last run still get it (`validFor`), if that is later than now."""
    if spec.valid_for is None or not status.runs or status.runs[0].started_at is None:
        return None
    end = status.runs[0].started_at + timedelta(seconds=spec.valid_for)
    return end if end > datetime.now(UTC) else None


async def deliver_to_late_joiners(
    ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus
) -> None:
    """Servers that started since the last run, or whose lab could not be reached then,
    get it now: each (user, server) once per run."""
    run = status.runs[0]
    rows = {(r["user"], r["server"]): r for r in await asyncio.to_thread(ctx.deliveries.rows, obj.name, run.id)}

    def owed(t: Target) -> bool:
        row = rows.get((t.user, t.server))
        return row is None or (row["outcome"] in ("timeout", "failed") and row["httpStatus"] is None)

    late = [t for t in await select_targets(spec, ctx) if owed(t)]
    if not late:
        return
    await asyncio.to_thread(ctx.deliveries.start_run, obj.name, run.id, [(t.user, t.server, t.url) for t in late])
    await ctx.event(KIND, obj.name, "LateDelivery", f"run {run.id}: {len(late)} server(s) started or came back since")
    await run_delivery(ctx, obj, spec, run.id, late)
    run.counts = status.counts = await asyncio.to_thread(ctx.deliveries.counts, obj.name, run.id)
