"""The rules of a rename as plain functions (docs/users.md): whether it may start, which
volumes move where, which GroupMemberships the platform rewrites and which an admin must,
and a backup's catalogue under the new name. The UserRename controller and the unit tests
call them with what they found."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vocabulary import naming

from .api.userrename import MustChange, VolumeMove
from .api.volumes import busy_servers
from .stored import StoredResource

# Who may have their GroupMembership rewritten by the platform: what GitOps owns is its file's.
PLATFORM_OWNED = ("api", "cli", "panel")


NATIVE_USERNAME_MAX = 128  # NativeAuthenticator's users_info.username (the hub allows 255)


@dataclass(frozen=True)
class Found:
    """What the controller looked up before a rename starts."""

    old: str
    new: str
    admin: str  # the platform's admin account (JUPYTERHUB_ADMIN)
    old_user: Mapping[str, Any] | None  # the hub's model of the old name, None: no such user
    new_in_hub: bool
    new_signed_up: bool  # NativeAuthenticator has a record of the new name
    new_held: bool  # the new name is an earlier rename's old name, still held
    containers: tuple[str, ...] = ()  # the old name's containers on the engine
    open_requests: tuple[str, ...] = ()  # "Kind/name" of unfinished requests for the old name
    new_volumes: tuple[str, ...] = ()  # volumes already under the new name's volume names
    created: datetime | None = None  # when the rename was recorded
    rostered: tuple[tuple[str, str], ...] = ()  # (name, Roster) of the old or new name a Roster lists
    new_removed: bool = False  # the platform removed an account of the new name (refused for good)
    new_backups: tuple[str, ...] = ()  # VolumeBackups whose catalogue holds archives of the new name


def problems(found: Found) -> list[str]:
    """Why the rename may not start (nothing was changed), or [] if it may."""
    f, out = found, []
    if f.old_user is None:
        return [f"no such user: {f.old}"]
    if f.admin in (f.old, f.new):
        out.append(f"the admin account ({f.admin}) is made from JUPYTERHUB_ADMIN: it is not renamed, nor renamed to")
    if f.new_in_hub or f.new_signed_up:
        out.append(f"the name {f.new} is taken")
    elif f.new_held:
        out.append(f"the name {f.new} was renamed away from and is held (RENAME_HOLD_DAYS), or is still named")
    servers = busy_servers(f.old_user.get("servers") or {}, f.created)
    if servers or f.containers:
        running = ", ".join([*servers, *f.containers])
        out.append(f"{f.old} has a running server ({running}): stop it first")
    if f.open_requests:
        out.append(f"requests for {f.old} are not finished: {', '.join(f.open_requests)}")
    if f.new_volumes:
        out.append(f"volumes of the name {f.new} already exist ({', '.join(f.new_volumes)}): remove them first")
    for name, roster in f.rostered:
        # The roster's spec names the person: it would make the old name again, or fight over the new.
        out.append(f"{name} is listed by Roster {roster}: a Roster's people are not renamed (edit the roster instead)")
    if len(f.new) > NATIVE_USERNAME_MAX:
        out.append(f"the name {f.new} is longer than NativeAuthenticator keeps ({NATIVE_USERNAME_MAX} characters)")
    if f.new_backups:
        # the renamed user could restore a stranger's archives
        out.append(f"backups of an earlier {f.new} exist ({', '.join(f.new_backups)}): delete them first")
    if f.new_removed:
        out.append(f"the name {f.new} belonged to an account the platform removed: it is refused for good")
    return out


def volume_moves(template: str, keys: Iterable[str], old: str, new: str, existing: set[str]) -> list[VolumeMove]:
    """One move per configured volume key, by the platform's own naming (never by labels);
    a key whose volume the old name does not have is `absent` (nothing to copy)."""
    moves = []
    for key in keys:
        source, target = naming.volume_name(template, old, key), naming.volume_name(template, new, key)
        moves.append(
            VolumeMove(volume=key, source=source, target=target, state="pending" if source in existing else "absent")
        )
    return moves


def membership_plan(
    objs: Iterable[StoredResource], old: str, new: str
) -> tuple[list[tuple[StoredResource, dict[str, Any]]], list[MustChange]]:
    """GroupMemberships naming the old name: the platform-owned ones with their new spec, and
    the GitOps-owned ones, whose manifest file the admin must change (a sync would put the
    old name back)."""
    rewrite, must = [], []
    for obj in objs:
        members = obj.spec.get("members") or []
        if obj.kind != "GroupMembership" or old not in members:
            continue
        if obj.owner in PLATFORM_OWNED:
            renamed = list(dict.fromkeys(new if m == old else m for m in members))
            rewrite.append((obj, {**obj.spec, "members": renamed}))
        else:
            must.append(MustChange(name=obj.name, group=str(obj.spec.get("group", "")), source=obj.source or ""))
    return rewrite, must


def renamed_backup_status(status: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
    """A VolumeBackup's status with the old name's archives and outcome under the new name,
    or None if it holds none of them. The archives stay where they are (their paths are
    recorded): only who they belong to changes."""
    named = [a for a in status.get("archives", []) if a.get("user") == old]
    named += [u for u in status.get("users", []) if u.get("user") == old]
    if not named:
        return None
    body = copy.deepcopy(dict(status))
    for entry in [*body.get("archives", []), *body.get("users", [])]:
        if entry.get("user") == old:
            entry["user"] = new
    return body
