"""Roster (standing): the hub's people match the list (docs/roster.md).

One reconcile reads the hub twice (the users, the groups: one request per page each), then
writes only the difference: the missing users in one request per page, their approval and
one-time passwords in one database transaction, each named group's membership in one
POST and one DELETE. Re-applying an unchanged roster writes nothing. A person no longer
listed is removed step by step (`user_removal`), each step an event; the status says per
person what was done, and who is pending what.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from vocabulary import naming

from .. import in_force, user_removal
from ..accounts import Accounts, Enrolled
from ..api.roster import Person, Plan, RosterSpec, RosterStatus, plan
from ..context import Context
from ..result import Result
from ..store import StoredResource

KIND = "Roster"
# Users created per request: JupyterHub creates them one by one with the event loop held
# (about 10 ms each on SQLite), so a page holds the hub for about a second, not twenty.
PAGE = 100
KEEP_DID = 12  # the newest actions kept per person in the status
WAIT = 5.0  # seconds between looks at a removal's backup
Did = Callable[[str, str], None]  # (person, what was done to them)


async def reconcile(obj: StoredResource, ctx: Context) -> Result:
    spec = RosterSpec.model_validate(obj.spec)
    now = datetime.now(UTC)
    previous = RosterStatus.load(obj.status)
    status = RosterStatus(conditions=previous.conditions, last_change=previous.last_change)
    people = {p.name: p for p in previous.people}
    accounts = Accounts(ctx.store)

    users = await ctx.hub.list_users()
    groups = {name: set(g.get("users") or []) for name, g in (await ctx.hub.list_groups()).items()}
    managed = await asyncio.to_thread(accounts.of_roster, obj.name)
    todo = plan(spec, users, groups, managed)

    def did(name: str, what: str) -> None:
        person = people.setdefault(name, Person(name=name))
        person.did = [*person.did, what][-KEEP_DID:]
        person.time = now

    listed = {u.name: u.email for u in spec.users}
    enrolled = await create(obj, ctx, accounts, spec, todo.create, listed, did)
    changed = await memberships(obj, ctx, todo, did)
    await wake_watches(ctx, todo, changed)

    waiting = await remove(obj, ctx, accounts, spec, todo.removals, people, did, status)
    if todo.writes or enrolled.writes:
        status.last_change = now
    status.people = sorted(people.values(), key=lambda p: p.name)
    status.users, status.groups = len(spec.users), spec.groups()
    status.existing = len(set(listed) & (set(users) | set(todo.create)))
    unread = await asyncio.to_thread(accounts.unread_passwords, obj.name)
    status.pending = {**pending_removals(status.people), **({"passwordNotRead": unread} if unread else {})}
    report(status, waiting, now)
    return Result(status, requeue_after=WAIT if waiting else None)


async def create(
    obj: StoredResource,
    ctx: Context,
    accounts: Accounts,
    spec: RosterSpec,
    missing: list[str],
    listed: dict[str, str | None],
    did: Did,
) -> Enrolled:
    """The missing users (one request per page) and, meanwhile, everyone's record approved
    and, for `oneTime`, a one-time password for those with none or an expired one (one transaction, in a
    thread: bcrypt's work overlaps the hub's, NativeAuthenticator's records need no hub user)."""
    one_time, days = spec.passwords == "oneTime", ctx.settings.one_time_password_days
    enrolling = asyncio.ensure_future(asyncio.to_thread(accounts.enroll, obj.name, listed, one_time, days))
    try:
        for start in range(0, len(missing), PAGE):
            page = missing[start : start + PAGE]
            await ctx.hub.create_users(page)
            await ctx.event(KIND, obj.name, "UsersCreated", f"created {len(page)} users: {shown(page)}")
            for name in page:
                did(name, "created")
    finally:
        enrolled = await enrolling
    for names, what, reason in (
        (enrolled.approved, "approved", "UsersApproved"),
        (enrolled.passwords, "one-time password made", "PasswordsMade"),
        (enrolled.released, "listed again: login allowed", "UsersReleased"),
    ):
        if names:
            await ctx.event(KIND, obj.name, reason, f"{what}: {len(names)} users: {shown(names)}")
            for name in names:
                did(name, what)
    return enrolled


async def memberships(obj: StoredResource, ctx: Context, todo: Plan, did: Did) -> set[str]:
    """Each named group's membership: one POST and one DELETE at most; who changed."""
    for group in todo.create_groups:
        await ctx.hub.create_group(group)
        await ctx.event(KIND, obj.name, "GroupCreated", f"created hub group {group}")
    changed: set[str] = set()
    for group, names in todo.add.items():
        await ctx.hub.add_group_members(group, names)
        await ctx.event(KIND, obj.name, "MembersAdded", f"added to {group}: {shown(names)}")
        for name in names:
            did(name, f"added to {group}")
        changed.update(names)
    for group, names in todo.remove.items():
        await ctx.hub.remove_group_members(group, names)
        await ctx.event(KIND, obj.name, "MembersRemoved", f"removed from {group}: {shown(names)}")
        for name in names:
            did(name, f"removed from {group}")
        changed.update(names)
    return changed


async def remove(
    obj: StoredResource,
    ctx: Context,
    accounts: Accounts,
    spec: RosterSpec,
    names: list[str],
    people: dict[str, Person],
    did: Did,
    status: RosterStatus,
) -> list[str]:
    """Carry on every removal; the names still waiting (for a backup)."""
    waiting = []
    for name in names:
        person = people.setdefault(name, Person(name=name))

        async def record(step: str, backup: str | None, person: Person = person) -> None:
            person.step, person.backup = step, backup  # type: ignore[assignment]
            status.people = sorted(people.values(), key=lambda p: p.name)
            await ctx.progress(KIND, obj.name, status)

        removal = user_removal.Removal(KIND, obj.name, name, spec.removal)
        done: list[str] = []
        try:
            await user_removal.advance(ctx, accounts, removal, person.step, person.backup, record, done)
        except user_removal.BackingUp:
            waiting.append(name)
        finally:
            for what in done:
                did(name, what)
    return waiting


async def wake_watches(ctx: Context, todo: Plan, changed: set[str]) -> None:
    """Group policies and Docker access follow membership: the drift survey once, the
    Docker-access watch for the users of changed groups that a `limited` policy names (the
    others have nothing it would do), the privileged-access watch for docker-privileged."""
    if not changed:
        return
    ctx.enqueue((naming.SERVER_DRIFT_KIND, naming.SERVER_DRIFT_KEY))
    policies = await asyncio.to_thread(in_force.group_policies, ctx.store)
    limited = {g for p in policies if p.spec.docker_level == "limited" for g in p.spec.groups}
    for group, names in [*todo.add.items(), *todo.remove.items()]:
        for name in names:
            if group in limited:
                ctx.enqueue((naming.DOCKER_ACCESS_KIND, name))
            if group == naming.PRIVILEGED_GROUP:
                ctx.enqueue((naming.PRIVILEGED_ACCESS_KIND, name))


def pending_removals(people: list[Person]) -> dict[str, list[str]]:
    """Who is pending what: a removal's step -> names (done ones are not pending)."""
    found: dict[str, list[str]] = {}
    for p in people:
        if p.step and p.step != "done":
            found.setdefault(p.step, []).append(p.name)
    return found


def report(status: RosterStatus, waiting: list[str], now: datetime) -> None:
    status.set_condition("Stalled", "False", "Reconciled", "", now)
    if waiting:
        message = f"removals waiting for their backups: {shown(waiting)}"
        status.set_condition("Ready", "False", "RemovalsPending", message, now)
        status.phase = "Degraded"
    else:
        status.set_condition("Ready", "True", "RosterMatches", f"{status.existing} of {status.users} users", now)
        status.phase = "Ready"


def shown(names: list[str], limit: int = 20) -> str:
    """Names for an event: the first `limit`, then how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
