"""GroupMembership (standing): a hub group's members match the list.

Adds missing members (and creates the group); with `prune: true` also removes members not
listed. A listed user that does not exist is reported in a condition and added once it
exists (at a later resync), never retried in a tight loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub_config import naming

from ..context import Context
from ..resources import Condition, GroupMembershipSpec, set_condition
from ..store import StoredResource

KIND = "GroupMembership"


async def reconcile(obj: StoredResource, ctx: Context) -> dict[str, Any]:
    spec = GroupMembershipSpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    status: dict[str, Any] = {k: v for k, v in obj.status.items() if k in ("lastChange",)}

    group = await ctx.group(spec.group)
    if group is None:
        group = await ctx.hub.create_group(spec.group) or {"name": spec.group, "users": []}
        await ctx.event(KIND, obj.name, "GroupCreated", f"created hub group {spec.group}")

    current = set(group.get("users", []))
    desired = set(spec.members)
    missing = desired - current
    existing = await ctx.existing_users(missing) if missing else set()
    unknown = sorted(missing - existing)
    to_add = sorted(existing)
    to_remove = sorted(current - desired) if spec.prune else []

    if to_add:
        await ctx.hub.add_group_members(spec.group, to_add)
        await ctx.event(KIND, obj.name, "MembersAdded", f"added to {spec.group}: {', '.join(to_add)}")
    # Members the group has but the spec does not list, while the spec did not change: someone
    # added them by hand. With prune they go, and the conflict is said, not fought silently.
    conflicts = to_remove if obj.status.get("observedGeneration") == obj.generation else []
    if to_remove:
        await ctx.hub.remove_group_members(spec.group, to_remove)
        await ctx.event(KIND, obj.name, "MembersRemoved", f"removed from {spec.group}: {', '.join(to_remove)}")
    if conflicts:
        await ctx.event(
            KIND,
            obj.name,
            "Conflict",
            f"{', '.join(conflicts)} added to {spec.group} outside this resource; removed (prune: true)",
            type="Warning",
        )
    members = sorted((current | set(to_add)) - set(to_remove))
    if to_add or to_remove:
        ctx.remember_group(spec.group, members)
        if spec.group == naming.PRIVILEGED_GROUP and ctx.on_privileged_change is not None:
            ctx.on_privileged_change()  # the socket follows membership now, not at the next resync
        status["lastChange"] = {"time": now.isoformat(), "added": to_add, "removed": to_remove}

    conditions = [Condition.model_validate(c) for c in obj.status.get("conditions", [])]
    conditions = set_condition(conditions, "Stalled", "False", "Reconciled", "", now)
    if conflicts:
        message = f"added by hand and removed: {', '.join(conflicts)}"
        conditions = set_condition(conditions, "Conflict", "True", "UnlistedMembers", message, now)
    else:
        conditions = set_condition(conditions, "Conflict", "False", "NoConflict", "", now)
    if unknown:
        message = f"no such user: {', '.join(unknown)} (added once they exist)"
        if obj.status.get("unknownUsers") != unknown:
            await ctx.event(KIND, obj.name, "UnknownUsers", message, type="Warning")
        conditions = set_condition(conditions, "Ready", "False", "UnknownUsers", message, now)
    else:
        conditions = set_condition(
            conditions, "Ready", "True", "MembersMatch", f"{spec.group} has {len(members)} members", now
        )
    unmanaged = sorted(current - desired) if not spec.prune else []
    status.update(
        phase="Ready" if not unknown else "Degraded",
        group=spec.group,
        members=members,
        unknownUsers=unknown,
        unmanagedMembers=unmanaged,
        conditions=conditions,
    )
    return status
