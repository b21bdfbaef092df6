"""VolumeBackup (one-shot): the chosen volumes of one user, of the users a selector matches,
or of everyone, written as tar.gz archives with a manifest to the backup location.

One resource, one backup: a selector fans out per user inside it, each user with its own
outcome and archives in the status (a failed user fails the backup, the others' archives
are still listed and restorable). Users are backed up concurrently, at most
BACKUP_CONCURRENCY helper containers at a time. A running server is backed up as it is
(crash-consistent); with `consistent: true` its servers are stopped first and started
again after. Each user's progress is written before its side effects, so a reconciler
restarted mid-way redoes only the users not finished (an archive is written under a
`.part` name and renamed when whole, so a redo is safe).

Bounded: helpers are killed at the deadline (`activeDeadlineSeconds`, default
DEADLINE_SECONDS; then `Failed`, DeadlineExceeded) and stopped when the backup, or the
reset it was taken for, is deleted. A user's own backups (taken before their resets) run
one at a time per user, and a new one that succeeded prunes the oldest beyond
BACKUP_USER_MAX; they expire (ttlSecondsAfterFinished), and `finalize` deletes a backup's
archives when its TTL deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from vocabulary import naming

from .. import jobs, restarts, retention
from ..api.volumebackup import BEFORE_RESET, BackupArchive, UserBackup, VolumeBackupSpec, VolumeBackupStatus
from ..api.volumes import unknown_volume_keys
from ..clients.backups import HelperFailed, Helpers, Job, bound, location, user_slot
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "VolumeBackup"
Save = Callable[[], Awaitable[None]]


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = VolumeBackupSpec.model_validate(obj.spec)
    status = VolumeBackupStatus.load(obj.status)
    status.phase, status.observed_generation = "Running", obj.generation
    problem = unknown_volume_keys(spec.volumes, ctx.settings)
    if problem:
        raise PermanentError(problem, "UnknownVolume")
    if not status.users:
        users = await _users(ctx, spec)
        if not users:
            raise PermanentError("the selector matches no user", "NoUsers")
        status.users = [UserBackup(user=u) for u in users]
        status.started_at, status.location = datetime.now(UTC), location(ctx.settings)
    lock = asyncio.Lock()

    async def save() -> None:
        async with lock:  # progress of concurrent users, written in order
            await ctx.progress(KIND, obj.name, status)

    await save()
    deadline = jobs.deadline(spec, obj.created)
    job = Job(KIND, obj.name, deadline, lambda: _wanted(ctx, obj))
    own = spec.user if obj.labels.get(BEFORE_RESET) else None
    todo = [entry for entry in status.users if entry.outcome in ("Pending", "Running")]
    work = (_one(ctx, job, own, spec, status, e, save) for e in todo)
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    errors = [e for e in outcomes if isinstance(e, BaseException)]
    if errors:
        raise errors[0]  # the users not finished are redone on the retry
    _finish(status)
    if status.phase == "Failed" and deadline is not None and datetime.now(UTC) >= deadline:
        failed = "; ".join(f"{e.user}: {e.message}" for e in status.users if e.outcome == "Failed")
        message = f"not finished within activeDeadlineSeconds ({spec.active_deadline_seconds} s): {failed}"
        jobs.stall(status, True, "DeadlineExceeded", message, datetime.now(UTC))
        await ctx.event(KIND, obj.name, "DeadlineExceeded", message, type="Warning")
    if own is not None and status.phase == "Succeeded":
        await _prune_own(ctx, own, (obj.name, status.started_at or obj.created))
    return Result(status)


async def still_there(ctx: Context, obj: StoredResource) -> bool:
    """The request has not been deleted (nor replaced by a new one of the same name)."""
    found = await asyncio.to_thread(ctx.store.get, obj.kind, obj.name)
    return found is not None and found.created == obj.created


async def _wanted(ctx: Context, obj: StoredResource) -> bool:
    """Still wanted: the backup exists, and so does the reset it was taken for (if any)."""
    reset = obj.labels.get(BEFORE_RESET)
    if reset and await asyncio.to_thread(ctx.store.get, "VolumeReset", reset) is None:
        return False
    return await still_there(ctx, obj)


async def _prune_own(ctx: Context, user: str, this: tuple[str, datetime]) -> None:
    """The user's own backups beyond BACKUP_USER_MAX, oldest first, once `this` one (its
    success not yet written) succeeded."""
    objs = await asyncio.to_thread(ctx.store.list, KIND)
    own = [b for b in objs if b.labels.get(BEFORE_RESET) and b.spec.get("user") == user and b.name != this[0]]
    dated = {b.name: (b.name, VolumeBackupStatus.load(b.status).started_at or b.created) for b in own}
    succeeded = [this] + [dated[b.name] for b in own if b.status.get("phase") == "Succeeded"]
    failed = [dated[b.name] for b in own if b.status.get("phase") == "Failed"]
    decided = retention.plan(succeeded, failed, ctx.settings.backup_user_max, 0, 0)
    if not decided.delete:
        return
    await Helpers(ctx.engine, ctx.settings).delete(decided.delete)  # archives first: no orphan records
    for name in decided.delete:
        await asyncio.to_thread(ctx.store.delete, KIND, name, f"backups-of:{user}")
        why = f"{user} has more than {ctx.settings.backup_user_max} backups of their own (BACKUP_USER_MAX)"
        await ctx.event(KIND, name, "Pruned", why)


async def finalize(obj: StoredResource, ctx: Context) -> None:
    """Before its TTL deletes a backup: its archives go first (a user's own backups expire)."""
    removed = await Helpers(ctx.engine, ctx.settings).delete([obj.name])
    if removed.get("removed"):
        await ctx.event(KIND, obj.name, "ArchivesDeleted", f"archives of {obj.name} deleted: its TTL has passed")


def _finish(status: VolumeBackupStatus) -> VolumeBackupStatus:
    now = datetime.now(UTC)
    failed = [e for e in status.users if e.outcome == "Failed"]
    status.bytes = sum(a.bytes for a in status.archives)
    status.finished_at = now
    done = sum(e.outcome == "Succeeded" for e in status.users)
    summary = f"{done} of {len(status.users)} users backed up: {len(status.archives)} archives, {status.bytes} bytes"
    if failed:
        status.phase = "Failed"
        reasons = "; ".join(f"{e.user}: {e.message}" for e in failed)
        status.set_condition("Ready", "False", "UsersFailed", f"{summary}; failed: {reasons}", now)
    else:
        status.phase = "Succeeded"
        status.set_condition("Ready", "True", "BackedUp", summary, now)
    return status


async def _users(ctx: Context, spec: VolumeBackupSpec) -> list[str]:
    if spec.user is not None:
        return [spec.user]
    if spec.selector is None:
        return sorted(await ctx.hub.list_usernames())
    found = set(spec.selector.users)
    for group in spec.selector.groups:
        model = await ctx.hub.get_group(group)
        found |= set((model or {}).get("users", []))
    return sorted(found)


async def _one(
    ctx: Context,
    job: Job,
    own: str | None,
    spec: VolumeBackupSpec,
    status: VolumeBackupStatus,
    entry: UserBackup,
    save: Save,
) -> None:
    """Back up one user's volumes; its outcome in `entry`. A TemporaryError leaves it Running."""
    backup = job.name
    entry.outcome, entry.started_at, t0 = "Running", datetime.now(UTC), time.monotonic()
    await save()
    model = await ctx.hub.get_user(entry.user)
    if model is None:
        return await _end(entry, save, "Failed", "no such user")
    names = naming.user_volume_names(ctx.settings.volume_name_template, entry.user, spec.volumes)
    existing = await ctx.engine.existing_volumes(list(names.values()))
    present = {key: name for key, name in names.items() if name in existing}
    if not present:
        return await _end(entry, save, "Skipped", f"has none of the volumes {', '.join(spec.volumes)}")
    running = sorted(model.get("servers") or {})
    async with user_slot(own) if own else contextlib.nullcontext():  # one own backup per user at a time
        manifest = await _copy(ctx, job, spec, entry, save, present, running)
    if manifest is None:
        return
    archives = [BackupArchive(user=entry.user, **a) for a in manifest["archives"]]
    status.archives = [a for a in status.archives if a.user != entry.user] + archives
    how = "crash-consistent: the server was running" if running and not spec.consistent else "consistent"
    sizes = ", ".join(f"{a.volume} {a.bytes} bytes" for a in archives)
    message = f"{sizes} in {time.monotonic() - t0:.1f} s ({how})"
    await ctx.event(KIND, backup, "BackedUp", f"{entry.user}: {message}")
    await _restart(ctx, backup, entry, save)
    missing = sorted(set(spec.volumes) - set(present))
    if missing:
        message += f"; no {', '.join(missing)} volume"
    await _end(entry, save, "Succeeded", message)


async def _copy(
    ctx: Context,
    job: Job,
    spec: VolumeBackupSpec,
    entry: UserBackup,
    save: Save,
    present: dict[str, str],
    running: list[str],
) -> dict | None:
    """The helper's manifest (None: failed, and said so). A helper slot (BACKUP_CONCURRENCY)
    is taken before a consistent backup stops the servers, so they are down only while
    their data is copied, never while waiting for a slot."""
    backup = job.name
    async with bound(ctx.settings):
        if spec.consistent and (running or entry.stopped_servers):
            # Stopped before every copy, also when resumed: a run that recorded the list and
            # then crashed or timed out before the servers were down must not copy them live.
            stopping = sorted(set(entry.stopped_servers) | set(running))
            if stopping != entry.stopped_servers:  # progress first, then the side effect
                entry.stopped_servers = stopping
                await save()
                message = f"stopping the servers of {entry.user} for a consistent backup"
                await ctx.event(KIND, backup, "StoppingServers", message)
            await restarts.stop_all(ctx.hub, entry.user, stopping, float(ctx.settings.spawn_timeout))
        try:
            return await Helpers(ctx.engine, ctx.settings, job).backup(backup, entry.user, present, slot_held=True)
        except HelperFailed as e:
            failure = str(e)
    await _restart(ctx, backup, entry, save)
    await ctx.event(KIND, backup, "BackupFailed", f"{entry.user}: {failure}", type="Warning")
    await _end(entry, save, "Failed", failure)
    return None


async def _end(entry: UserBackup, save: Save, outcome: str, message: str) -> None:
    entry.outcome, entry.message, entry.finished_at = outcome, message, datetime.now(UTC)  # type: ignore[assignment]
    await save()


async def _restart(ctx: Context, backup: str, entry: UserBackup, save: Save) -> None:
    """Start again what a consistent backup stopped (once: the list is emptied after)."""
    for server in entry.stopped_servers:
        await restarts.start(ctx.hub, entry.user, server)
    if entry.stopped_servers:
        await ctx.event(KIND, backup, "ServersStarted", f"started the servers of {entry.user} again")
        entry.stopped_servers = []
        await save()
