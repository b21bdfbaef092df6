"""VolumeRestore (one-shot): archives of a finished VolumeBackup into one user's volumes.

Refused while a server of the user runs (as a reset). The helper checks the sha256 of every
archive it is to restore before it touches any volume: a corrupt or missing archive fails
the restore with the volumes untouched. Then each volume is emptied and filled. The
status says `Running` before anything is checked, and the spawner waits while it does,
so a restore and a start cannot overlap. Restoring into another user than the one backed
up is the hub admins' (`sourceUser`, checked where the request is applied); the source is
never implied. One restore helper per user at a time; it is killed at the request's
deadline and stopped when the request is deleted (`clients.backups.Job`). Restored files
lose their setuid and setgid bits.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from vocabulary import naming

from .. import jobs
from ..api.volumebackup import BackupArchive, VolumeBackupStatus
from ..api.volumerestore import VolumeRestoreSpec, VolumeRestoreStatus
from ..api.volumes import busy_servers, unknown_volume_keys
from ..clients.backups import HelperDeadline, HelperFailed, HelperRefused, Helpers, HelperStopped, Job, user_slot
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "VolumeRestore"


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = VolumeRestoreSpec.model_validate(obj.spec)
    status = VolumeRestoreStatus.load(obj.status)
    status.phase, status.observed_generation = "Running", obj.generation
    status.user, status.backup = spec.user, spec.backup
    status.step, status.started_at = status.step or "checking", status.started_at or datetime.now(UTC)
    await ctx.progress(KIND, obj.name, status)  # from here on, spawns of this user wait
    t0 = time.monotonic()

    archives = await _archives(ctx, spec, status)
    await _refuse_if_running(ctx, spec.user, obj)
    volumes = {a.volume: naming.volume_name(ctx.settings.volume_name_template, spec.user, a.volume) for a in archives}
    labels = naming.object_labels(ctx.settings.platform_id, spec.user)
    for key, name in volumes.items():
        await ctx.engine.ensure_volume(name, labels | {naming.LABEL_VOLUME: key})
    status.step = "restoring"
    await ctx.progress(KIND, obj.name, status)
    what = f"{', '.join(volumes)} of {spec.user} from backup {spec.backup}"
    await ctx.event(KIND, obj.name, "Restoring", f"restoring {what} (requested by {_who(obj)})")
    wanted = [a.model_dump(include={"volume", "path", "sha256"}) for a in archives]
    job = Job(KIND, obj.name, jobs.deadline(spec, obj.created), lambda: still_there(ctx, obj))
    try:
        async with user_slot(spec.user):  # a cancelled and recreated restore never runs beside the old one
            done = await Helpers(ctx.engine, ctx.settings, job).restore(obj.name, wanted, volumes, spec.user)
    except HelperRefused as e:
        raise PermanentError(f"{e}: nothing was restored, the volumes are untouched", "ArchiveCorrupt") from None
    except HelperDeadline as e:
        message = f"the restore of {what} was {e}; the volumes may be partly restored"
        raise PermanentError(message, "DeadlineExceeded") from None
    except HelperStopped as e:
        raise PermanentError(f"the restore of {what} was {e}", "Deleted") from None
    except HelperFailed as e:
        raise PermanentError(f"the restore of {what} failed part-way ({e})", "RestoreFailed") from None
    seconds = round(time.monotonic() - t0, 2)
    cleared = done.get("setIdCleared", 0)
    note = f"; setuid/setgid taken off {cleared} files" if cleared else ""
    await ctx.event(KIND, obj.name, "Restored", f"restored {what} in {seconds} s{note}")
    status.phase, status.step, status.restored_volumes = "Succeeded", "done", list(volumes)
    status.finished_at, status.seconds = datetime.now(UTC), seconds
    status.set_condition("Ready", "True", "Restored", f"restored {what}")
    return Result(status)


async def still_there(ctx: Context, obj: StoredResource) -> bool:
    """The request has not been deleted (nor replaced by a new one of the same name)."""
    found = await asyncio.to_thread(ctx.store.get, obj.kind, obj.name)
    return found is not None and found.created == obj.created


def _who(obj: StoredResource) -> str:
    return obj.labels.get("requested-by", obj.owner)


async def _archives(ctx: Context, spec: VolumeRestoreSpec, status: VolumeRestoreStatus) -> list[BackupArchive]:
    """The archives to restore: of the source user, the volumes asked for (default: all)."""
    if spec.volumes:
        problem = unknown_volume_keys(spec.volumes, ctx.settings)
        if problem:
            raise PermanentError(problem, "UnknownVolume")
    backup = await asyncio.to_thread(ctx.store.get, "VolumeBackup", spec.backup)
    if backup is None:
        raise PermanentError(f"no such backup: {spec.backup}", "NoSuchBackup")
    found = VolumeBackupStatus.load(backup.status)
    if found.phase not in ("Succeeded", "Failed"):
        raise PermanentError(f"backup {spec.backup} has not finished (phase {found.phase or 'Pending'})", "NotFinished")
    # Never another user's archives unless `sourceUser` names them (a hub admin's request):
    # not even the one user of a backup of someone else.
    source = spec.source
    status.source_user = source
    archives = [a for a in found.archives if a.user == source and (not spec.volumes or a.volume in spec.volumes)]
    missing = sorted(set(spec.volumes or []) - {a.volume for a in archives})
    if not archives or missing:
        lacking = ", ".join(missing) if missing else "any volume"
        hint = "" if spec.cross_user else " (a hub admin may restore another user's with sourceUser)"
        raise PermanentError(f"backup {spec.backup} has no archive of {lacking} of {source}{hint}", "NotInBackup")
    return archives


async def _refuse_if_running(ctx: Context, user: str, obj: StoredResource) -> None:
    model = await ctx.hub.get_user(user)
    if model is None:
        raise PermanentError(f"no such user: {user}", reason="UnknownUser")
    active = busy_servers(model.get("servers") or {}, obj.created)
    containers = [c["Names"][0].lstrip("/") for c in await ctx.engine.user_containers(ctx.settings.platform_id, user)]
    if active or containers:
        running = ", ".join(active + containers)
        raise PermanentError(
            f"{user} has a running server ({running}): stop it first; nothing was restored", "ServerRunning"
        )
