"""VolumeReset (one-shot): remove exactly the named per-user volumes of exactly one user.

Names come from the same template as the spawner's (`vocabulary.naming`), so a reset can
neither miss a volume nor touch another user's. A volume that does not exist counts as
reset. Never while a server of the user runs: the reset is refused and says so. The
status says `Running` before anything is checked, and the spawner waits while it does, so
a reset and a start cannot overlap. With `backupFirst`, a VolumeBackup of the volumes is
recorded and must succeed before anything is removed (the reset follows it, requeued).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from vocabulary import naming
from vocabulary.api import API_VERSION

from .. import jobs
from ..api import parse_resource
from ..api.volumebackup import BEFORE_RESET
from ..api.volumereset import FailedVolume, VolumeResetSpec, VolumeResetStatus
from ..api.volumes import busy_servers, unknown_volume_keys
from ..clients.docker import VolumeInUse
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "VolumeReset"
BACKUP_POLL = 1.0  # seconds between looks at the backup taken first


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = VolumeResetSpec.model_validate(obj.spec)
    settings = ctx.settings
    who = obj.labels.get("requested-by", obj.owner)
    status = VolumeResetStatus.load(obj.status)
    status.phase, status.observed_generation, status.user = "Running", obj.generation, spec.user
    await ctx.progress(KIND, obj.name, status)  # from here on, spawns of this user wait

    problem = unknown_volume_keys(spec.volumes, settings)
    if problem:
        raise PermanentError(problem, "UnknownVolume")
    user = await ctx.hub.get_user(spec.user)
    if user is None:
        raise PermanentError(f"no such user: {spec.user}", reason="UnknownUser")
    active = busy_servers(user.get("servers") or {}, obj.created)
    if active:
        raise PermanentError(
            f"{spec.user} has a running server ({', '.join(active)}): stop it first; nothing was removed",
            reason="ServerRunning",
        )
    running = [c["Names"][0].lstrip("/") for c in await ctx.engine.user_containers(settings.platform_id, spec.user)]
    if running:
        raise PermanentError(
            f"containers of {spec.user} exist ({', '.join(running)}): stop them first; nothing was removed",
            reason="ServerRunning",
        )
    if spec.backup_first and not await _backed_up(ctx, obj, spec, status):
        return Result(status, requeue_after=BACKUP_POLL)

    removed: list[str] = []
    failed: list[FailedVolume] = []
    for key in spec.volumes:
        name = naming.volume_name(settings.volume_name_template, spec.user, key)
        try:
            outcome = await ctx.engine.remove_volume(name)
        except VolumeInUse as e:
            failed.append(FailedVolume(volume=key, name=name, reason=f"in use: {e}"))
            continue
        removed.append(key)
        await ctx.event(
            KIND,
            obj.name,
            "VolumeRemoved" if outcome == "removed" else "VolumeAbsent",
            f"{name} ({key} of {spec.user}) {'removed' if outcome == 'removed' else 'did not exist'}"
            f" (requested by {who})",
        )
    status.phase = "Failed" if failed else "Succeeded"
    status.reset_volumes, status.failed_volumes, status.finished_at = removed, failed, datetime.now(UTC)
    return Result(status)


async def _backed_up(ctx: Context, obj: StoredResource, spec: VolumeResetSpec, status: VolumeResetStatus) -> bool:
    """`backupFirst`: record a VolumeBackup of the volumes (once), and say whether it has
    succeeded; a failed backup fails the reset with nothing removed."""
    name = status.backup or f"{obj.name[:59].rstrip('-')}-bk"
    backup = await asyncio.to_thread(ctx.store.get, "VolumeBackup", name)
    if backup is None:
        if status.backup is not None:
            raise PermanentError(f"the backup taken first ({name}) was deleted; nothing was removed", "BackupFailed")
        # The user's own backup: it expires (BACKUP_USER_TTL_SECONDS), and ends by the
        # reset's own deadline, which is what the user waits on.
        backup_spec = {
            "user": spec.user,
            "volumes": spec.volumes,
            "ttlSecondsAfterFinished": ctx.settings.backup_user_ttl_seconds,
        }
        deadline = jobs.deadline(spec, obj.created)
        if deadline is not None:
            left = int((deadline - datetime.now(UTC)).total_seconds())
            backup_spec["activeDeadlineSeconds"] = max(1, left)
        doc = {
            "apiVersion": API_VERSION,
            "kind": "VolumeBackup",
            "metadata": {"name": name, "labels": {BEFORE_RESET: obj.name}},
            "spec": backup_spec,
        }
        status.backup = name
        await ctx.progress(KIND, obj.name, status)
        await ctx.apply(parse_resource(doc), actor=f"volumereset:{obj.name}")
        await ctx.event(
            KIND, obj.name, "BackingUp", f"backing up {', '.join(spec.volumes)} of {spec.user} first: {name}"
        )
        return False
    phase = backup.status.get("phase")
    if phase == "Failed":
        reason = next((c.get("message", "") for c in backup.status.get("conditions", []) if c["type"] == "Ready"), "")
        raise PermanentError(f"the backup taken first ({name}) failed: {reason}; nothing was removed", "BackupFailed")
    return phase == "Succeeded"
