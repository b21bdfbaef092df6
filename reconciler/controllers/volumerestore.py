"""VolumeRestore (one-shot): archives of a finished VolumeBackup into one user's volumes.

Refused while a server of the user runs (as a reset). The helper checks the sha256 of every
archive it is to restore before it touches any volume: a corrupt or missing archive fails
the restore with the volumes untouched. Then each volume is emptied and filled. The
status says `Running` before anything is checked, and the spawner waits while it does,
so a restore and a start cannot overlap. Restoring into another user than the one backed
up is the admin's (`sourceUser`); the self-service API only restores a user's own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from vocabulary import naming

from ..backup_specs import VolumeRestoreSpec
from ..backup_status import BackupArchive, VolumeBackupStatus, VolumeRestoreStatus
from ..checks import busy_servers, unknown_volume_keys
from ..clients.backups import HelperFailed, HelperRefused, Helpers
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
    try:
        await Helpers(ctx.engine, ctx.settings).restore(obj.name, wanted, volumes, spec.user)
    except HelperRefused as e:
        raise PermanentError(f"{e}: nothing was restored, the volumes are untouched", "ArchiveCorrupt") from None
    except HelperFailed as e:
        raise PermanentError(f"the restore of {what} failed part-way ({e})", "RestoreFailed") from None
    seconds = round(time.monotonic() - t0, 2)
    await ctx.event(KIND, obj.name, "Restored", f"restored {what} in {seconds} s")
    status.phase, status.step, status.restored_volumes = "Succeeded", "done", list(volumes)
    status.finished_at, status.seconds = datetime.now(UTC), seconds
    status.set_condition("Ready", "True", "Restored", f"restored {what}")
    return Result(status)


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
    # Every user the backup covered, whatever their outcome: one who failed or was skipped in
    # a backup of several is the source of their own restore (NotInBackup), never the one
    # other user whose archives happen to be there.
    users = sorted({u.user for u in found.users} | {a.user for a in found.archives})
    source = spec.source_user or (spec.user if spec.user in users or len(users) != 1 else users[0])
    status.source_user = source
    archives = [a for a in found.archives if a.user == source and (not spec.volumes or a.volume in spec.volumes)]
    missing = sorted(set(spec.volumes or []) - {a.volume for a in archives})
    if not archives or missing:
        lacking = ", ".join(missing) if missing else "any volume"
        raise PermanentError(f"backup {spec.backup} has no archive of {lacking} of {source}", "NotInBackup")
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
