"""Every record of the platform's keyed by a username, in one list, and the hold on a
renamed user's old name (docs/users.md).

A rename moves each row of `USER_COLUMNS` from the old name to the new in one transaction.
A table added later that is keyed by username (the usage ledger's, say) is one more line
here; a table not there yet (an older database) is skipped. NativeAuthenticator's record
(`NATIVE_RECORD`) is moved apart from them, after the hub's own user has its new name: the
other way round, the new name could sign in before the hub knew it and JupyterHub would
create an empty user of that name.

Requests already finished (VolumeReset, ServerRestart, ...) keep the old name in their spec
and subject: they are the record of what was done to whom, then. A VolumeBackup's
catalogue of archives is not history but an index the user restores from: the rename
rewrites it (`renames.renamed_backup_status`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, and_, delete, inspect, select, update

from vocabulary import naming

from .api.quota import GRANTS_KIND
from .culling import KEEP_ALIVE_KIND
from .quotas import QUOTA_KIND
from .store import Store
from .tables import USERS_INFO

# The old name of a renamed user, and the new name while its rename runs: refused at sign-up
# and sign-in until `until` (jhds_observed, one row per name).
HOLD_KIND = "RenameHold"


@dataclass(frozen=True)
class UserColumn:
    table: str
    column: str
    kinds: tuple[str, ...] = ()  # only rows of these kinds (jhds_observed's `Kind/<user>` keys)
    key: bool = False  # part of the primary key: a stale row of the new name is removed first


USER_COLUMNS: tuple[UserColumn, ...] = (
    # Placement (Swarm node of the volumes), keep-alive, the two per-user watches' status.
    UserColumn(
        "jhds_observed",
        "name",
        (
            naming.PLACEMENT_KIND,
            KEEP_ALIVE_KIND,
            naming.PRIVILEGED_ACCESS_KIND,
            naming.DOCKER_ACCESS_KIND,
            QUOTA_KIND,
            GRANTS_KIND,
        ),
        key=True,
    ),
    UserColumn("jhds_accounts", "username", key=True),  # a Roster's record of them (one no Roster lists now)
    UserColumn("jhds_docker_objects", "user"),  # what they made through the Docker proxy
    UserColumn("jhds_events", "subject"),  # their history follows them
    # Their usage (docs/usage.md): a quota counts what they used under the old name too.
    UserColumn("jhds_usage_sessions", "user"),
    UserColumn("jhds_usage_hourly", "user", key=True),
    UserColumn("jhds_usage_daily", "user", key=True),
    UserColumn("jhds_usage_storage", "user"),
)
NATIVE_RECORD = UserColumn(USERS_INFO.name, USERS_INFO.c.username.name)


def move(store: Store, old: str, new: str, columns: tuple[UserColumn, ...] = USER_COLUMNS) -> dict[str, int]:
    """Rows moved per `table.column`, all in one transaction; again (a resumed rename) moves none."""
    moved: dict[str, int] = {}
    with store.session() as s:
        tables = set(inspect(s.connection()).get_table_names())
        meta = MetaData()
        for c in columns:
            if c.table not in tables:
                continue
            table = Table(c.table, meta, autoload_with=s.connection())
            column = table.c[c.column]
            scope = table.c.kind.in_(c.kinds) if c.kinds else None

            def where(name: str, column: Any = column, scope: Any = scope) -> Any:
                return and_(column == name, scope) if scope is not None else column == name

            # A stale row of the new name goes only while the old name still has rows to move:
            # a resumed rename (the move committed, its progress not) must keep what it moved.
            if c.key and s.execute(select(column).where(where(old)).limit(1)).first() is not None:
                s.execute(delete(table).where(where(new)))
            moved[f"{c.table}.{c.column}"] = s.execute(update(table).where(where(old)).values({c.column: new})).rowcount
    return moved


def hold(store: Store, name: str, body: dict[str, Any], until: datetime) -> None:
    store.write_observed(HOLD_KIND, name, {**body, "until": until.isoformat()})


def release(store: Store, name: str) -> None:
    store.forget_observed(HOLD_KIND, [name])


def held(
    store: Store,
    name: str,
    now: datetime | None = None,
    renamed_to: str | None = None,
    admins: Collection[str] = (),
) -> bool:
    """Whether `name` may not sign in or be signed up now (a rename's old or coming name).
    With `renamed_to`: not held for a rename back by the user it was renamed to (an undo).

    An old name stays held past its `until` while anything the platform knows still names it
    (`still_named`; `admins`: the hub's admin_users): whoever signed up as it would inherit
    that group's membership or the admin's rights. The UserRename's events say so, once per
    change of what names it (`_say_still_named`)."""
    body = store.observed(HOLD_KIND, name)
    if not body.get("until") or (renamed_to is not None and body.get("renamedTo") == renamed_to):
        return False
    if datetime.fromisoformat(body["until"]) > (now or datetime.now(UTC)):
        return True
    if "renamedTo" not in body:  # a coming name's reservation: it ends with its rename
        return False
    named = still_named(store, name, admins)
    if named != body.get("stillNamedBy", []):
        _say_still_named(store, name, body, named)
    return bool(named)


def still_named(store: Store, name: str, admins: Collection[str] = ()) -> list[str]:
    """What still names `name`: GroupMemberships (any owner), Rosters, the hub's admin list."""
    named = [f"GroupMembership/{g.name}" for g in store.list("GroupMembership") if name in g.spec.get("members", [])]
    rosters = store.list("Roster")
    named += [f"Roster/{r.name}" for r in rosters if any(u.get("name") == name for u in r.spec.get("users", []))]
    return named + (["the hub's admin_users (JUPYTERHUB_ADMIN)"] if name in admins else [])


def _say_still_named(store: Store, name: str, body: dict[str, Any], named: list[str]) -> None:
    """Record what holds the name past RENAME_HOLD_DAYS (or that nothing does now) in the hold
    and as an event of the rename that made it."""
    store.write_observed(HOLD_KIND, name, {**body, "stillNamedBy": named})
    rename = str(body.get("rename") or name)
    if named:
        message = (
            f"{name}'s hold (RENAME_HOLD_DAYS) has ended, but it stays held (no sign-in, no sign-up) "
            f"while {', '.join(named)} still name it: change them to free it"
        )
        store.add_event("UserRename", rename, "NameStillHeld", message, "Warning", "rename-hold")
    else:
        store.add_event("UserRename", rename, "NameReleased", f"{name} is free: nothing names it any more")


def hold_until(finished: datetime, days: float) -> datetime:
    return finished + timedelta(days=days)


def signed_up(store: Store, name: str) -> bool:
    """NativeAuthenticator has a record of `name` (its `users_info`, in the hub's database)."""
    with store.session() as s:
        if not inspect(s.connection()).has_table(USERS_INFO.name):  # no hub has run on it yet
            return False
        column = USERS_INFO.c.username
        return s.execute(select(column).where(column == name).limit(1)).first() is not None
