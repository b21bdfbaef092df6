"""VolumeReset (one-shot): remove exactly the named per-user volumes of exactly one user.

Names come from the same template as the spawner's (`hub_config.naming`), so a reset can
neither miss a volume nor touch another user's. A volume that does not exist counts as
reset. Never while a server of the user runs: the reset is refused and says so. The
status says `Running` before anything is checked, and the spawner waits while it does, so
a reset and a start cannot overlap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub_config import naming

from ..clients.docker import VolumeInUse
from ..context import Context
from ..errors import PermanentError
from ..resources import VolumeResetSpec
from ..store import StoredResource

KIND = "VolumeReset"


def _waits_for(server: dict[str, Any], reset_created: datetime) -> bool:
    """A spawn requested after this reset was: the spawner waits for the reset to finish
    (it checks the store after `started` is set), so it is no reason to refuse."""
    started = server.get("started")
    if server.get("pending") != "spawn" or server.get("ready") or not started:
        return False
    return datetime.fromisoformat(started.replace("Z", "+00:00")) >= reset_created


async def reconcile(obj: StoredResource, ctx: Context) -> dict[str, Any]:
    spec = VolumeResetSpec.model_validate(obj.spec)
    settings = ctx.settings
    who = obj.labels.get("requested-by", obj.owner)
    status: dict[str, Any] = dict(obj.status)
    status.update(phase="Running", observedGeneration=obj.generation, user=spec.user)
    await ctx.progress(KIND, obj.name, status)  # from here on, spawns of this user wait

    unknown = [key for key in spec.volumes if key not in settings.user_volumes]
    if unknown:
        allowed = ", ".join(settings.user_volumes)
        raise PermanentError(f"not a per-user volume: {', '.join(unknown)} (resettable: {allowed})", "UnknownVolume")
    user = await ctx.hub.get_user(spec.user)
    if user is None:
        raise PermanentError(f"no such user: {spec.user}", reason="UnknownUser")
    active = sorted(
        name or "(default)"
        for name, server in (user.get("servers") or {}).items()
        if not _waits_for(server, obj.created)
    )
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

    removed: list[str] = []
    failed: list[dict[str, str]] = []
    for key in spec.volumes:
        name = naming.volume_name(settings.volume_name_template, spec.user, key)
        try:
            outcome = await ctx.engine.remove_volume(name)
        except VolumeInUse as e:
            failed.append({"volume": key, "name": name, "reason": f"in use: {e}"})
            continue
        removed.append(key)
        await ctx.event(
            KIND,
            obj.name,
            "VolumeRemoved" if outcome == "removed" else "VolumeAbsent",
            f"{name} ({key} of {spec.user}) {'removed' if outcome == 'removed' else 'did not exist'}"
            f" (requested by {who})",
        )
    status.update(
        phase="Failed" if failed else "Succeeded",
        resetVolumes=removed,
        failedVolumes=failed,
        finishedAt=datetime.now(UTC).isoformat(),
    )
    return status
