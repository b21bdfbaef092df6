"""The hub's side of GroupPolicy `maxActiveServers`: count, at a start, the servers of each
capped group's members from the hub's own memory, and refuse the start when a group is full
(`reconciler.server_caps` holds the rule and the message; docs/policies.md).

What counts: a server that is ready, stopping, or starting and already admitted here. The
check and the admission happen with no await between them, so two members starting at once
on the hub's single event loop are told apart: the first is admitted and counted, the second
refused, never both refused (each counting the other's pending start) nor both admitted.
"""

from __future__ import annotations

import weakref
from typing import Any

from jupyterhub import orm

from reconciler.server_caps import GroupCap, cap_refusal

from . import refusals
from .refusals import SpawnRefused

# Spawners whose start passed the check and may still be pending (weak: a deleted server goes).
_admitted: weakref.WeakSet[Any] = weakref.WeakSet()


def counts(spawner: Any) -> bool:
    """Whether `spawner` holds a slot: ready, stopping, or starting and admitted."""
    pending = spawner.pending
    if pending == "spawn":
        return spawner in _admitted
    return bool(pending) or spawner.ready


def running_by_group(caps: list[GroupCap], me: Any, db: Any, users: Any) -> dict[str, list[str]]:
    """Per capped group, the servers of its members that hold a slot, `me` left out."""
    out: dict[str, list[str]] = {}
    for cap in caps:
        group = orm.Group.find(db, cap.group)
        holders: list[str] = []
        for member in group.users if group is not None else []:
            if member.id not in users:  # not in the hub's memory: no server of theirs is active
                continue
            for name, spawner in users[member.id].spawners.items():
                if spawner is not me and counts(spawner):
                    holders.append(f"{member.name}/{name}" if name else member.name)
        out[cap.group] = holders
    return out


def release(spawner: Any) -> None:
    """The start failed or the server stops: its next start is admitted afresh (until then a
    pending start of it holds no slot)."""
    _admitted.discard(spawner)


def admit(spawner: Any, caps: list[GroupCap]) -> None:
    """Refuse the start if one of its user's capped groups is full, else count it from now."""
    _admitted.discard(spawner)
    if not caps:
        return
    users = spawner.user.settings.get("users")
    if users is None:  # not inside a hub (a script): nothing to count against
        return
    problem = cap_refusal(caps, running_by_group(caps, spawner, spawner.user.db, users))
    if problem:
        raise SpawnRefused(problem, reason=refusals.GROUP_SERVER_LIMIT, status_code=429)
    _admitted.add(spawner)
