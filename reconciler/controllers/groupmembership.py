"""GroupMembership (standing): a hub group's members match the list.

Adds missing members (and creates the group); with `prune: true` also removes members not
listed. A listed user that does not exist is reported in a condition and added once it
exists (at a later resync), never retried in a tight loop.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vocabulary import naming, scopes

from ..api.groupmembership import GroupMembershipSpec, GroupMembershipStatus, MembershipChange
from ..context import Context
from ..result import Result
from ..store import StoredResource

KIND = "GroupMembership"


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = GroupMembershipSpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    previous = GroupMembershipStatus.load(obj.status)
    status = GroupMembershipStatus(conditions=previous.conditions, last_change=previous.last_change)

    cached = ctx.woken_by_resync(obj.key)  # the pass's snapshot will do; woken by a change: live
    group = await ctx.group(spec.group, cached=cached)
    if group is None:
        group = await ctx.hub.create_group(spec.group) or {"name": spec.group, "users": []}
        await ctx.event(KIND, obj.name, "GroupCreated", f"created hub group {spec.group}")

    current = set(group.get("users", []))
    # A protected group never waits for a name to exist: whoever signed up under it later
    # would get the grant. Refused names stay refused until the spec changes.
    protected = spec.group in scopes.PROTECTED_GROUPS
    refused = set(previous.refused_users) if protected and previous.observed_generation == obj.generation else set()
    desired = set(spec.members) - refused
    missing = desired - current
    existing = await ctx.existing_users(missing, cached=cached) if missing else set()
    unknown = sorted(missing - existing)
    if protected and unknown:
        message = (
            f"not granted {spec.group} to names with no account: {', '.join(unknown)} (apply again once they exist)"
        )
        await ctx.event(KIND, obj.name, "UnknownUsersRefused", message, type="Warning")
        refused |= set(unknown)
        desired -= set(unknown)
        unknown = []
    status.refused_users = sorted(refused)
    to_add = sorted(existing)
    to_remove = sorted(current - desired) if spec.prune else []

    if to_add:
        await ctx.hub.add_group_members(spec.group, to_add)
        await ctx.event(KIND, obj.name, "MembersAdded", f"added to {spec.group}: {', '.join(to_add)}")
    # Members the group has but the spec does not list, while the spec did not change: someone
    # added them by hand. With prune they go, and the conflict is said, not fought silently.
    conflicts = to_remove if previous.observed_generation == obj.generation else []
    if to_remove:
        await ctx.hub.remove_group_members(spec.group, to_remove)
        await ctx.event(KIND, obj.name, "MembersRemoved", f"removed from {spec.group}: {', '.join(to_remove)}")
    if conflicts:
        message = f"{', '.join(conflicts)} added to {spec.group} outside this resource; removed (prune: true)"
        await ctx.event(KIND, obj.name, "Conflict", message, type="Warning")
    members = sorted((current | set(to_add)) - set(to_remove))
    if to_add or to_remove:
        ctx.remember_group(spec.group, members)
        wake_docker_access(ctx, spec.group, [*to_add, *to_remove])
        ctx.enqueue((naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY))  # group policies follow membership
        status.last_change = MembershipChange(time=now, added=to_add, removed=to_remove)

    ready = f"{spec.group} has {len(members)} members"
    await report(obj, ctx, status, conflicts, unknown, previous.unknown_users, ready, now)
    status.phase = "Ready" if not unknown and not status.refused_users else "Degraded"
    status.group, status.members, status.unknown_users = spec.group, members, unknown
    status.unmanaged_members = sorted(current - desired) if not spec.prune else []
    return Result(status)


def wake_docker_access(ctx: Context, group: str, users: list[str]) -> None:
    """Docker access follows membership now, not at the next resync: the socket (only
    docker-privileged's), and `limited` (any group's policy may give it)."""
    for user in users:
        if group == naming.PRIVILEGED_GROUP:
            ctx.enqueue((naming.PRIVILEGED_ACCESS_KIND, user))
        ctx.enqueue((naming.DOCKER_ACCESS_KIND, user))


async def report(
    obj: StoredResource,
    ctx: Context,
    status: GroupMembershipStatus,
    conflicts: list[str],
    unknown: list[str],
    unknown_before: list[str],
    ready: str,
    now: datetime,
) -> None:
    """The conditions: Conflict (members added by hand and pruned), Ready (or unknown users)."""
    status.set_condition("Stalled", "False", "Reconciled", "", now)
    if conflicts:
        message = f"added by hand and removed: {', '.join(conflicts)}"
        status.set_condition("Conflict", "True", "UnlistedMembers", message, now)
    else:
        status.set_condition("Conflict", "False", "NoConflict", "", now)
    if status.refused_users:
        names = ", ".join(status.refused_users)
        message = f"refused, no such user when applied: {names} (granted only by a changed spec, once they exist)"
        status.set_condition("Ready", "False", "UnknownUsersRefused", message, now)
    elif unknown:
        message = f"no such user: {', '.join(unknown)} (added once they exist)"
        if unknown_before != unknown:
            await ctx.event(KIND, obj.name, "UnknownUsers", message, type="Warning")
        status.set_condition("Ready", "False", "UnknownUsers", message, now)
    else:
        status.set_condition("Ready", "True", "MembersMatch", ready, now)
