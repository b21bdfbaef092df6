"""Removing a person with care, one step at a time (the Roster, `hubctl delete user` and the
REST endpoint share it; docs/roster.md#removal):

1. `refusing`: their login and sign-up are refused (the platform's record says removing,
   NativeAuthenticator's is un-approved);
2. `stopping`: their servers are stopped;
3. `backingUp` (`removal: backup`): a VolumeBackup of every per-user volume, the existing
   backup machinery, waited for; the backup must have succeeded with an archive (and its
   sha256) for every volume that exists, else the volumes are kept and it says so;
4. `deleting`: the hub user is deleted, which revokes their tokens and login cookies;
5. `removingVolumes` (`backup`, `delete`): their volumes removed, never while a container
   of theirs runs; `keep` names the volumes kept;
6. `done`.

Each step is recorded (`record(step)`) before its side effect and is an event, so a
reconciler restarted half-way resumes from the step it recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vocabulary import naming

from . import engines, restarts
from .accounts import REMOVED, REMOVING, Accounts
from .api import parse_resource
from .context import Context
from .errors import TemporaryError


class BackingUp(TemporaryError):
    """The removal waits for its backup: come back later (not a failure)."""


Record = Callable[[str, str | None], Awaitable[None]]  # (step, backup name) -> progress written
BACKUP_LABEL = "jupyterhub-ds/removal-of"


@dataclass
class Removal:
    """Who removes whom: the resource the events are written under, the person, the choice."""

    kind: str
    name: str
    user: str
    removal: str  # keep | backup | delete
    actor: str | None = None


async def advance(
    ctx: Context, accounts: Accounts, r: Removal, step: str | None, backup: str | None, record: Record, did: list[str]
) -> None:
    """Carry the removal on from `step` to `done`, or raise TemporaryError to be called again
    (a backup under way). What was done, in words, is appended to `did` as it is done (so an
    exception loses none of it)."""
    if step in (None, "refusing"):
        await record("refusing", backup)
        await asyncio.to_thread(accounts.set_state, [r.user], REMOVING, r.name)
        did.append(await say(ctx, r, "LoginRefused", f"{r.user}: login and sign-up refused"))
        step = "stopping"
    if step == "stopping":
        await record("stopping", backup)
        if await stop(ctx, r.user):
            did.append(await say(ctx, r, "ServerStopped", f"{r.user}: servers stopped"))
        step = "backingUp" if r.removal == "backup" else "deleting"
    if step == "backingUp":
        backup = backup or naming.resource_name("removal", r.user)
        await record("backingUp", backup)
        outcome, verified = await backed_up(ctx, r, backup)
        did.append(outcome)
        backup = backup if verified else None  # no verified backup: the volumes are kept
        step = "deleting"
    if step == "deleting":
        await record("deleting", backup)
        await stop(ctx, r.user)  # started again meanwhile (a cookie still valid): the hub refuses to delete it
        if await ctx.hub.delete_user(r.user):
            message = f"{r.user}: deleted from the hub (tokens and login cookies revoked)"
            did.append(await say(ctx, r, "SignedOut", message))
        step = "removingVolumes"
    if step == "removingVolumes":
        await record("removingVolumes", backup)
        did.append(await volumes(ctx, r, backup))
        await asyncio.to_thread(accounts.set_state, [r.user], REMOVED, r.name)
        await record("done", backup)


async def say(ctx: Context, r: Removal, reason: str, message: str, type: str = "Normal") -> str:
    await ctx.event(r.kind, r.name, reason, message, type=type, actor=r.actor)
    return message.removeprefix(f"{r.user}: ")


async def stop(ctx: Context, user: str) -> bool:
    """Stop the user's servers (and wait); whether any ran."""
    model = await ctx.hub.get_user(user)
    servers = sorted((model or {}).get("servers") or {})
    if servers:
        await restarts.stop_all(ctx.hub, user, servers, float(ctx.settings.spawn_timeout))
    return bool(servers)


async def backed_up(ctx: Context, r: Removal, backup: str) -> tuple[str, bool]:
    """Request the backup (once) and wait for it: what it gave, in words, and whether it is
    verified (else the volumes are kept)."""
    found = await asyncio.to_thread(ctx.store.get, "VolumeBackup", backup)
    if found is None:
        present = await engines.present_volumes(ctx.engine, ctx.settings, r.user)
        if not present:
            return await say(ctx, r, "NothingToBackUp", f"{r.user}: no volumes to back up"), True
        body = {
            "apiVersion": "jupyterhub-ds/v1",
            "kind": "VolumeBackup",
            "metadata": {"name": backup, "labels": {BACKUP_LABEL: naming.slug(r.user, 63)}},
            "spec": {"user": r.user, "volumes": sorted(present)},
        }
        await ctx.apply(parse_resource(body), f"{r.kind.lower()}/{r.name}")
        await say(ctx, r, "BackupRequested", f"{r.user}: backing up {', '.join(sorted(present))} in {backup}")
        raise BackingUp(f"waiting for the backup {backup} of {r.user}")
    phase = (found.status or {}).get("phase")
    if phase not in ("Succeeded", "Failed"):
        raise BackingUp(f"waiting for the backup {backup} of {r.user}")
    archives = [a for a in (found.status or {}).get("archives") or [] if a.get("user") == r.user]
    wanted = set(found.spec.get("volumes") or [])
    verified = phase == "Succeeded" and wanted <= {a["volume"] for a in archives if a.get("sha256")}
    if not verified:
        message = f"{r.user}: backup {backup} {phase.lower()} or incomplete: volumes kept"
        return await say(ctx, r, "BackupFailed", message, type="Warning"), False
    sums = ", ".join(f"{a['volume']} sha256 {a['sha256'][:12]}" for a in archives)
    return await say(ctx, r, "BackedUp", f"{r.user}: backed up in {backup} ({sums})"), True


async def volumes(ctx: Context, r: Removal, backup: str | None) -> str:
    """Keep or remove the user's volumes per `r.removal`: the event names them."""
    present = await engines.present_volumes(ctx.engine, ctx.settings, r.user)
    if not present:
        return await say(ctx, r, "NoVolumes", f"{r.user}: had no volumes")
    listed = ", ".join(sorted(present.values()))
    if r.removal == "keep" or (r.removal == "backup" and backup is None):
        return await say(ctx, r, "VolumesKept", f"{r.user}: volumes kept: {listed}")
    containers = await ctx.engine.user_containers(ctx.settings.platform_id, r.user)
    if any(c.get("State") == "running" for c in containers):
        raise TemporaryError(f"a container of {r.user} runs: their volumes are not removed")
    for name in present.values():
        await ctx.engine.remove_volume(name)
    return await say(ctx, r, "VolumesRemoved", f"{r.user}: volumes removed: {listed}")
