"""UserRename (one-shot): give a user a new name with everything the platform keeps of them
(docs/users.md).

Refused while a server of the user runs, while a request for them is unfinished, or if
the new name is taken or held; the status says `Running` before anything is checked and
the spawner waits while it does, so a start cannot slip in. Then, each step written before
its side effect, so a reconciler restarted mid-way resumes where it was:

1. `copying`: the old name is held (no sign-in, no sign-up) and the new one reserved; one
   helper copies every volume to the new name's (`cp -a`) and checks each copy by a
   checksum of the whole tree; only then are the old volumes removed.
2. `records`: the backups' catalogue, the API-owned GroupMemberships naming the old name,
   and every per-user row of the platform's tables (`user_records.USER_COLUMNS`).
3. `hub`: JupyterHub's own rename (groups, roles and tokens follow the user's id), then
   NativeAuthenticator's record (the password stays).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from vocabulary import naming
from vocabulary.api import API_VERSION

from .. import jobs, renames, user_records
from ..accounts import REMOVED, REMOVING, Accounts
from ..api import parse_resource
from ..api.userrename import UserRenameSpec, UserRenameStatus, VolumeMove
from ..clients.backups import HelperFailed, HelperRefused, Job
from ..clients.volume_copy import committed_volumes, move_volumes
from ..context import Context
from ..errors import PermanentError
from ..result import Result
from ..store import StoredResource

KIND = "UserRename"
# Kinds whose unfinished requests for the user forbid a rename (they name the old name).
REQUEST_KINDS = ("VolumeReset", "VolumeRestore", "VolumeBackup", "ServerRestart")


HELD_UNTIL_DONE = datetime(9999, 1, 1, tzinfo=UTC)  # released when the rename ends, by an admin otherwise


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = UserRenameSpec.model_validate(obj.spec)
    old, new = spec.user, spec.new_name
    status = UserRenameStatus.load(obj.status)
    status.phase, status.observed_generation = "Running", obj.generation
    if status.step is None:
        await ctx.progress(KIND, obj.name, status)  # from here on, spawns of the old name wait
        await _check(ctx, obj, spec, status)
        status.step, status.started_at = "copying", datetime.now(UTC)
        # Until the request's deadline: a rename that dies unfinished does not hold the names longer.
        await _hold(ctx, obj, spec, until=jobs.deadline(spec, obj.created) or datetime.now(UTC) + timedelta(days=1))
        await ctx.progress(KIND, obj.name, status)
        await ctx.event(KIND, obj.name, "Renaming", f"renaming {old} to {new} (requested by {_who(obj)})")
    if status.step == "copying":
        try:
            await _move_volumes(ctx, obj, spec, status)
        except PermanentError:
            await _undo_copy(ctx, obj, spec, status)
            raise
        status.step = "records"
        await ctx.progress(KIND, obj.name, status)
    if status.step == "records":
        await _move_records(ctx, obj, spec, status)
        status.step = "hub"
        await ctx.progress(KIND, obj.name, status)
    if status.step == "hub":
        await _rename_in_hub(ctx, obj, spec)
    finished = datetime.now(UTC)
    status.hold_until = user_records.hold_until(finished, ctx.settings.rename_hold_days)
    await _hold(ctx, obj, spec, until=status.hold_until, reserve_new=False)
    await asyncio.to_thread(user_records.release, ctx.store, new)
    status.phase, status.step, status.finished_at = "Succeeded", "done", finished
    took = (finished - (status.started_at or finished)).total_seconds()
    message = f"{old} is now {new} ({took:.1f} s); {old} is held until {status.hold_until:%Y-%m-%d %H:%M} UTC"
    if status.must_change:
        files = ", ".join(f"{m.name} ({m.source or 'GitOps'})" for m in status.must_change)
        message += f"; change the GitOps GroupMemberships naming {old}: {files}"
    await ctx.event(KIND, obj.name, "Renamed", message)
    return Result(status)


def _who(obj: StoredResource) -> str:
    return obj.labels.get("requested-by", obj.owner)


async def _check(ctx: Context, obj: StoredResource, spec: UserRenameSpec, status: UserRenameStatus) -> None:
    old, new, s = spec.user, spec.new_name, ctx.settings
    old_user = await ctx.hub.get_user(old)
    moves = renames.volume_moves(s.volume_name_template, s.user_volumes, old, new, set())
    targets = [m.target for m in moves]
    open_requests = []
    for kind in REQUEST_KINDS:
        found = await asyncio.to_thread(ctx.store.open_requests, kind, old)
        open_requests += [f"{kind}/{r.name}" for r in found if r.status.get("phase") not in ("Succeeded", "Failed")]
    found = renames.Found(
        old=old,
        new=new,
        admin=s.admin,
        old_user=old_user,
        new_in_hub=await ctx.hub.user_exists(new),
        new_signed_up=await asyncio.to_thread(user_records.signed_up, ctx.store, new),
        new_held=await asyncio.to_thread(user_records.held, ctx.store, new, None, old),
        containers=tuple(c["Names"][0].lstrip("/") for c in await ctx.engine.user_containers(s.platform_id, old)),
        open_requests=tuple(open_requests),
        new_volumes=tuple(await ctx.engine.existing_volumes(targets)),
        created=obj.created,
        rostered=tuple(await asyncio.to_thread(_rostered, ctx, (old, new))),
        new_removed=await asyncio.to_thread(Accounts(ctx.store).state, new) in (REMOVING, REMOVED),
        new_backups=tuple(await asyncio.to_thread(_backups_of, ctx, new)),
    )
    problems = renames.problems(found)
    if problems:
        reason = "ServerRunning" if any("running server" in p for p in problems) else "Refused"
        raise PermanentError("; ".join(problems) + "; nothing was changed", reason)
    existing = set(await ctx.engine.existing_volumes([m.source for m in moves]))
    status.volumes = renames.volume_moves(s.volume_name_template, s.user_volumes, old, new, existing)


def _backups_of(ctx: Context, name: str) -> list[str]:
    """The VolumeBackups whose catalogue lists archives of `name`."""
    backups = ctx.store.list("VolumeBackup")
    return [b.name for b in backups if any(a.get("user") == name for a in b.status.get("archives", []))]


def _rostered(ctx: Context, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, roster) for each of `names` a Roster lists now."""
    accounts = Accounts(ctx.store)
    return [(name, roster) for name in names if (roster := accounts.listed_by(name))]


async def _hold(
    ctx: Context,
    obj: StoredResource,
    spec: UserRenameSpec,
    until: datetime,
    reserve_new: bool = True,
    reserve_until: datetime | None = None,
) -> None:
    """The old name held (sign-in and sign-up refused) and, while the rename runs, the new one."""
    body = {"renamedTo": spec.new_name, "rename": obj.name}
    await asyncio.to_thread(user_records.hold, ctx.store, spec.user, body, until)
    if not reserve_new:
        return
    reserve = {"renamedFrom": spec.user, "rename": obj.name}
    deadline = reserve_until or jobs.deadline(spec, obj.created) or until
    await asyncio.to_thread(user_records.hold, ctx.store, spec.new_name, reserve, deadline)


async def _move_volumes(ctx: Context, obj: StoredResource, spec: UserRenameSpec, status: UserRenameStatus) -> None:
    todo = [m for m in status.volumes if m.state == "pending"]
    if todo:
        missing = set(m.source for m in todo) - set(await ctx.engine.existing_volumes([m.source for m in todo]))
        if missing:  # mounting it would make an empty one, and "copy" that over the new volume
            raise PermanentError(f"the volumes {', '.join(sorted(missing))} are gone; nothing was copied", "Gone")
        labels = naming.object_labels(ctx.settings.platform_id, spec.new_name)
        for m in todo:  # beside the old ones (on Swarm: on the old name's node, where the helper runs)
            await ctx.engine.ensure_volume(m.target, labels | {naming.LABEL_VOLUME: m.volume}, beside=spec.user)
        if not status.token:
            status.token = secrets.token_hex(16)
        # The helper empties the originals as soon as every copy is verified: from its start
        # both names are held until the rename ends (or is undone), or a rename that dies
        # unseen after that point would let a stranger sign up as the new name and mount the
        # volumes.
        await _hold(ctx, obj, spec, until=HELD_UNTIL_DONE, reserve_until=HELD_UNTIL_DONE)
        await ctx.progress(KIND, obj.name, status)  # the token, before the helper can use it
        job = Job(KIND, obj.name, jobs.deadline(spec, obj.created), lambda: _still_there(ctx, obj))
        moves = {m.volume: (m.source, m.target) for m in todo}
        try:
            moved = await move_volumes(ctx.engine, ctx.settings, job, spec.user, moves, status.token)
        except HelperRefused as e:  # refused before any original was touched
            raise PermanentError(f"moving the volumes failed: {e}; nothing was removed", "CopyFailed") from None
        except HelperFailed as e:  # the originals are whole, or every copy is verified: the survey says which
            raise PermanentError(f"moving the volumes failed: {e}", "CopyFailed") from None
        by_key = {c["volume"]: c for c in moved["copied"]}
        for m in todo:
            c = by_key[m.volume]
            m.state, m.files, m.bytes, m.checksum = "verified", c["files"], c["bytes"], c["checksum"]
        await ctx.progress(KIND, obj.name, status)
        sizes = ", ".join(f"{m.volume} {m.bytes} bytes in {m.files} entries" for m in todo)
        took = moved.get("seconds", {})
        timing = (
            f"copy {took.get('copy')} s, checks {took.get('verify')} s more, originals emptied in {took.get('clear')} s"
        )
        resumed = [c["volume"] for c in moved["copied"] if c.get("resumed")]
        again = f"; verified by an earlier helper: {', '.join(resumed)}" if resumed else ""
        message = f"copied and verified (checksum of each tree): {sizes}; {timing}{again}"
        await ctx.event(KIND, obj.name, "VolumesCopied", message)
    verified = [m for m in status.volumes if m.state == "verified"]
    if verified:  # emptied by the helper: each removal is quick
        await asyncio.gather(*(_remove_old(ctx, obj, m) for m in verified))
        await ctx.progress(KIND, obj.name, status)


async def _undo_copy(ctx: Context, obj: StoredResource, spec: UserRenameSpec, status: UserRenameStatus) -> None:
    """Moving failed: if no original was touched (no old volume carries this request's
    marker), the new volumes go and both names are free; otherwise every copy was verified
    and the rename can only go on (re-applied, it resumes)."""
    if any(m.state in ("verified", "removed") for m in status.volumes):
        return  # an original is gone already: the rename can only go on (a retry resumes it)
    pending = [m for m in status.volumes if m.state == "pending"]
    moves = {m.volume: (m.source, m.target) for m in pending}
    if pending and status.token:
        try:
            committed = await committed_volumes(ctx.engine, ctx.settings, obj.name, spec.user, moves, status.token)
        except (HelperFailed, PermanentError) as e:  # not known: nothing is undone, both names stay held
            await ctx.event(KIND, obj.name, "CannotUndo", f"could not tell whether an original was emptied: {e}")
            return
        if committed:
            message = (
                f"every copy was verified and the originals of {', '.join(committed)} were being emptied: "
                f"the rename can only go on; re-apply it (with a later activeDeadlineSeconds if that passed) to "
                f"finish it; {spec.user} and {spec.new_name} stay held until then"
            )
            await ctx.event(KIND, obj.name, "CannotUndo", message, type="Warning")
            return
    for m in pending:
        await ctx.engine.remove_volume(m.target)
    await asyncio.to_thread(user_records.release, ctx.store, spec.user)
    await asyncio.to_thread(user_records.release, ctx.store, spec.new_name)
    await ctx.event(KIND, obj.name, "CopyUndone", f"the partial copies were removed; {spec.user} is unchanged")


async def _remove_old(ctx: Context, obj: StoredResource, move: VolumeMove) -> None:
    await ctx.engine.remove_volume(move.source)  # already gone (a resumed rename) is done
    move.state = "removed"
    await ctx.event(KIND, obj.name, "VolumeMoved", f"{move.source} -> {move.target} ({move.volume}); old removed")


async def _still_there(ctx: Context, obj: StoredResource) -> bool:
    found = await asyncio.to_thread(ctx.store.get, obj.kind, obj.name)
    return found is not None and found.created == obj.created


async def _move_records(ctx: Context, obj: StoredResource, spec: UserRenameSpec, status: UserRenameStatus) -> None:
    """Backups' catalogue, GroupMemberships, the per-user rows: each is a no-op the second time."""
    old, new, actor = spec.user, spec.new_name, f"userrename:{obj.name}"
    for backup in await asyncio.to_thread(ctx.store.list, "VolumeBackup"):
        body = renames.renamed_backup_status(backup.status, old, new)
        if body is not None:
            await asyncio.to_thread(ctx.store.write_status, backup.kind, backup.name, body)
            status.backups = sorted({*status.backups, backup.name})
    rewrite, must = renames.membership_plan(await asyncio.to_thread(ctx.store.list, "GroupMembership"), old, new)
    for gm, new_spec in rewrite:
        doc = {"apiVersion": API_VERSION, "kind": gm.kind, "metadata": {"name": gm.name, "labels": gm.labels}}
        resource = parse_resource({**doc, "spec": new_spec})
        await asyncio.to_thread(ctx.store.apply, [resource], gm.owner, actor=actor)
        status.memberships = sorted({*status.memberships, gm.name})
    status.must_change = must or status.must_change
    moved = await asyncio.to_thread(user_records.move, ctx.store, old, new)
    status.records = {k: status.records.get(k, 0) + v for k, v in moved.items()}
    await ctx.event(
        KIND,
        obj.name,
        "RecordsMoved",
        f"backups {len(status.backups)}, group memberships {len(status.memberships)}, rows "
        + ", ".join(f"{k} {v}" for k, v in status.records.items()),
    )


async def _rename_in_hub(ctx: Context, obj: StoredResource, spec: UserRenameSpec) -> None:
    old, new = spec.user, spec.new_name
    if await ctx.hub.user_exists(old):
        await ctx.hub.rename_user(old, new)
    elif not await ctx.hub.user_exists(new):
        raise PermanentError(f"neither {old} nor {new} is a hub user any more", "UnknownUser")
    moved = await asyncio.to_thread(user_records.move, ctx.store, old, new, (user_records.NATIVE_RECORD,))
    await ctx.event(
        KIND, obj.name, "HubUserRenamed", f"hub user {old} is now {new}; sign-in record moved: {sum(moved.values())}"
    )
