"""BackupSchedule (standing): a VolumeBackup at each cron firing, and retention after it.

Calendar time is APScheduler's (`schedules.py`), as for cron broadcasts: the key is woken at
each firing (missed firings collapse into one, run only within `startingDeadlineSeconds`).
A firing records a VolumeBackup named `<schedule>-<YYYYMMDD-HHMMSS>`, labelled with the
schedule; the schedule follows it and, once it has finished, records each user's outcome.
Only after a run that Succeeded are the schedule's old backups pruned by its retention
(`retention.plan`): archives first (through the helper container), then the resource.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from vocabulary.api import API_VERSION

from .. import retention
from ..api import parse_resource
from ..api.backupschedule import BackupScheduleSpec, BackupScheduleStatus, ScheduleRun
from ..api.common import TERMINAL_PHASES
from ..api.volumebackup import VolumeBackupStatus
from ..clients.backups import Helpers
from ..context import Context
from ..result import Result
from ..store import StoredResource

KIND = "BackupSchedule"
LABEL = "jupyterhub-ds/backup-schedule"
FOLLOW = 2.0  # seconds between looks at a run under way
RUNS_KEPT = 10


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = BackupScheduleSpec.model_validate(obj.spec)
    status = BackupScheduleStatus.load(obj.status)
    key = (KIND, obj.name)
    missed = ctx.schedules.take_missed(key)
    if missed is not None and (status.last_scheduled is None or missed > status.last_scheduled):
        message = f"firing at {missed.isoformat()} missed (past startingDeadlineSeconds); no backup taken"
        await ctx.event(KIND, obj.name, "MissedSchedule", message, type="Warning")
        status.last_scheduled = missed
    if status.current_run is not None:
        await _follow(ctx, obj, spec, status)
    if status.current_run is None:
        firing = ctx.schedules.take_due(key)
        if firing is not None and (status.last_scheduled is None or firing > status.last_scheduled):
            await _start_run(ctx, obj, spec, status, firing)
    after = status.last_scheduled or obj.created
    status.next_run = ctx.schedules.ensure(
        key, cron=spec.schedule, at=None, after=after, grace=spec.starting_deadline_seconds
    )
    status.phase, status.observed_generation = "Ready", obj.generation
    last = status.runs[0] if status.runs else None
    summary = f"next run {status.next_run:%Y-%m-%d %H:%M} UTC" if status.next_run else "no next run"
    if last is not None:
        summary += f"; last run {last.backup}: {last.phase}"
    status.set_condition("Ready", "True", "Scheduled", summary)
    status.set_condition("Stalled", "False", "Scheduled", "")
    return Result(status, requeue_after=FOLLOW if status.current_run else None)


async def _start_run(
    ctx: Context, obj: StoredResource, spec: BackupScheduleSpec, status: BackupScheduleStatus, firing: datetime
) -> None:
    name = f"{obj.name[:46].rstrip('-')}-{firing.astimezone(UTC):%Y%m%d-%H%M%S}"
    backup_spec: dict = {"volumes": spec.volumes, "consistent": spec.consistent}
    if spec.selector is None:
        backup_spec["allUsers"] = True
    else:
        backup_spec["selector"] = spec.selector.model_dump(by_alias=True)
    doc = {
        "apiVersion": API_VERSION,
        "kind": "VolumeBackup",
        "metadata": {"name": name, "labels": {LABEL: obj.name}},
        "spec": backup_spec,
    }
    status.current_run = ScheduleRun(backup=name, scheduled_for=firing)
    status.last_scheduled = firing
    await ctx.progress(KIND, obj.name, status)  # the firing is taken once, even across a crash
    await ctx.apply(parse_resource(doc), actor=f"schedule:{obj.name}")
    await ctx.event(KIND, obj.name, "BackupStarted", f"firing at {firing.isoformat()}: backup {name}")


async def _follow(ctx: Context, obj: StoredResource, spec: BackupScheduleSpec, status: BackupScheduleStatus) -> None:
    """The run's backup, once finished: each user's outcome, and a prune after a success."""
    run = status.current_run
    assert run is not None
    backup = await asyncio.to_thread(ctx.store.get, "VolumeBackup", run.backup)
    if backup is None:
        run.phase = "Failed"
        run.users = {"*": "the backup was deleted before it finished"}
    else:
        found = VolumeBackupStatus.load(backup.status)
        if found.phase not in TERMINAL_PHASES:
            return
        run.phase = found.phase
        run.users = {u.user: u.outcome + (f": {u.message}" if u.outcome == "Failed" else "") for u in found.users}
    status.runs = [run, *status.runs][:RUNS_KEPT]
    status.current_run = None
    await ctx.event(KIND, obj.name, "RunFinished", f"backup {run.backup}: {run.phase}")
    if run.phase == "Succeeded":
        await prune(ctx, obj.name, spec, status)


def _dated(obj: StoredResource) -> tuple[str, datetime]:
    found = VolumeBackupStatus.load(obj.status)
    return obj.name, found.started_at or obj.created


async def prune(ctx: Context, schedule: str, spec: BackupScheduleSpec, status: BackupScheduleStatus) -> None:
    """Delete what retention does not keep among this schedule's finished backups."""
    mine = [b for b in await asyncio.to_thread(ctx.store.list, "VolumeBackup") if b.labels.get(LABEL) == schedule]
    succeeded = [_dated(b) for b in mine if b.status.get("phase") == "Succeeded"]
    failed = [_dated(b) for b in mine if b.status.get("phase") == "Failed"]
    r = spec.retention
    decided = retention.plan(succeeded, failed, r.keep_last, r.keep_daily, r.keep_weekly)
    status.kept, status.pruned = decided.keep, decided.delete
    if not decided.delete:
        return
    await Helpers(ctx.engine, ctx.settings).delete(decided.delete)  # archives first: no orphan records
    for name in decided.delete:
        await asyncio.to_thread(ctx.store.delete, "VolumeBackup", name, f"schedule:{schedule}")
    await ctx.event(KIND, schedule, "Pruned", f"deleted {', '.join(decided.delete)}; kept {', '.join(decided.keep)}")
