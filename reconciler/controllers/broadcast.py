"""Broadcast (one-shot, or recurring with a schedule): a notice to every selected lab.

Without a schedule it runs once, at once. With `schedule.at` or `schedule.cron`, calendar
time is APScheduler's (`reconciler/schedules.py`): the key is woken at each firing and
this controller takes the firing and runs it (`reconciler/broadcast_runs.py`). As a Kubernetes
CronJob: a firing missed by more than `startingDeadlineSeconds` (the reconciler was down
or frozen) is recorded as missed, not run late; missed firings collapse into one;
`concurrencyPolicy: Forbid` skips a firing that came while the previous run was still
delivering (`Allow` runs it right after). With `validFor`, servers that start (or labs
that were unreachable) within that window after a run still get it, once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..api.broadcast import BroadcastSpec, BroadcastStatus
from ..broadcast_runs import (
    deliver_to_late_joiners,
    finish_run,
    resume_run,
    run_delivery,
    start_run,
    window_end,
)
from ..context import Context
from ..result import Result
from ..store import StoredResource

KIND = "Broadcast"
LATE_JOINER_POLL = 5.0  # seconds between looks for late joiners while `validFor` lasts


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = BroadcastSpec.model_validate(obj.spec)
    status = BroadcastStatus.load(obj.status)
    await record_missed(ctx, obj, spec, status)
    if status.current_run is None:
        firing = take_firing(ctx, obj, spec, status)
        if firing is None:
            if window_end(spec, status):
                await deliver_to_late_joiners(ctx, obj, spec, status)
            return scheduled(ctx, obj, spec, status)
        if overlaps_previous_run(spec, status, firing):
            message = f"firing at {firing.isoformat()} skipped: the previous run was still delivering (Forbid)"
            await ctx.event(KIND, obj.name, "SkippedConcurrent", message, type="Warning")
            status.last_scheduled = firing
            return scheduled(ctx, obj, spec, status)
        targets = await start_run(ctx, obj, spec, status, firing)
    else:
        targets = await resume_run(ctx, obj, status.current_run.id)
    assert status.current_run is not None
    await run_delivery(ctx, obj, spec, status.current_run.id, targets)
    await finish_run(ctx, obj, spec, status)
    return scheduled(ctx, obj, spec, status)


def take_firing(ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus) -> datetime | None:
    """The time of a run that is due now, if any: creation for an unscheduled broadcast that
    has not run; else the scheduler's latest firing not acted on yet."""
    if spec.schedule is None:
        return obj.created if status.last_scheduled is None else None
    firing = ctx.schedules.take_due((KIND, obj.name))
    if firing is None or (status.last_scheduled is not None and firing <= status.last_scheduled):
        return None
    return firing


def overlaps_previous_run(spec: BroadcastSpec, status: BroadcastStatus, firing: datetime) -> bool:
    if spec.concurrency_policy != "Forbid" or not status.runs:
        return False
    previous = status.runs[0]
    return (
        previous.finished_at is not None
        and firing < previous.finished_at
        and firing > (previous.scheduled_for or firing)
    )


async def record_missed(ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus) -> None:
    """A firing APScheduler found past `startingDeadlineSeconds`: an event, and it counts as
    scheduled (a one-time broadcast whose time was missed is over)."""
    missed = ctx.schedules.take_missed((KIND, obj.name))
    if missed is None or (status.last_scheduled is not None and missed <= status.last_scheduled):
        return
    late = (datetime.now(UTC) - missed).total_seconds()
    message = (
        f"firing at {missed.isoformat()} missed: {late:.0f} s late, past startingDeadlineSeconds "
        f"({spec.starting_deadline_seconds} s); not sent"
    )
    await ctx.event(KIND, obj.name, "MissedSchedule", message, type="Warning")
    status.last_scheduled = missed
    if spec.schedule is not None and spec.schedule.at is not None:
        status.set_condition("Delivered", "False", "MissedSchedule", message)


def scheduled(ctx: Context, obj: StoredResource, spec: BroadcastSpec, status: BroadcastStatus) -> Result:
    """Completed when no run is left, else Scheduled with the next firing; back while late
    joiners may still come (`validFor`)."""
    key = (KIND, obj.name)
    status.valid_until = window_end(spec, status)
    requeue = LATE_JOINER_POLL if status.valid_until else None
    once = spec.schedule is None or spec.schedule.at is not None
    if once and status.last_scheduled is not None:
        ctx.schedules.remove(key)
        status.phase, status.next_run = "Active" if status.valid_until else "Completed", None
        return Result(status, requeue_after=requeue)
    assert spec.schedule is not None
    after = status.last_scheduled or obj.created  # (an `at` fires at its time, whatever `after` is)
    status.next_run = ctx.schedules.ensure(
        key, cron=spec.schedule.cron, at=spec.schedule.at, after=after, grace=spec.starting_deadline_seconds
    )
    status.phase = "Scheduled" if status.next_run else "Completed"
    return Result(status, requeue_after=requeue)
