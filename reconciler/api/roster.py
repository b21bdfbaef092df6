"""Roster: the people of a hub as desired state (standing; docs/roster.md). Its spec, its
status (what it did to each person, who is pending what), its table, and its rules of
applying: a group has one manager (a Roster or a GroupMembership), a person one Roster."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel, StatusTable
from .fields import GroupName, SpecModel, Username, unique

Removal = Literal["keep", "backup", "delete"]
Passwords = Literal["oneTime", "none"]
EMAIL_PATTERN = r"^[A-Za-z0-9.+_-]+@[A-Za-z0-9._-]+\.[A-Za-z]+$"  # NativeAuthenticator's own check


class RosterUser(SpecModel):
    name: Username
    groups: list[GroupName] = []
    display_name: str | None = Field(None, alias="displayName", max_length=255)
    email: str | None = Field(None, pattern=EMAIL_PATTERN, max_length=128)

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, value: list[str]) -> list[str]:
        return unique(value)


class RosterSpec(SpecModel):
    users: list[RosterUser] = []
    # What happens to the volumes of a person removed from the list (docs/roster.md).
    removal: Removal = "keep"
    passwords: Passwords = "oneTime"

    @field_validator("users")
    @classmethod
    def _unique_names(cls, value: list[RosterUser]) -> list[RosterUser]:
        unique([u.name for u in value])
        return value

    def groups(self) -> list[str]:
        """The hub groups whose membership this roster manages."""
        return sorted({g for u in self.users for g in u.groups})


class Roster(Envelope):
    kind: Literal["Roster"]
    spec: RosterSpec


RemovalStep = Literal["refusing", "stopping", "deleting", "backingUp", "removingVolumes", "done"]


class Person(StatusModel):
    """One person the roster acted on: what it did (in order), and a removal's step."""

    name: str
    did: list[str] = []
    step: RemovalStep | None = None  # a removal under way (or done)
    backup: str | None = None  # the VolumeBackup of a `removal: backup`
    time: AwareDatetime | None = None


class RosterStatus(Status):
    users: int = 0  # listed
    existing: int = 0  # listed and in the hub
    groups: list[str] = []
    # Who is pending what: a removal step (or `password` not yet read) -> names.
    pending: dict[str, list[str]] = {}
    people: list[Person] = []
    last_change: AwareDatetime | None = Field(None, alias="lastChange")


def group_managers(spec: RosterSpec | dict[str, Any]) -> list[str]:
    """The groups a Roster manages (spec as a model or as stored): the cross-kind rule."""
    if isinstance(spec, RosterSpec):
        return spec.groups()
    users = spec.get("users") or []
    return sorted({g for u in users if isinstance(u, dict) for g in u.get("groups") or []})


def one_roster_per_person(spec: RosterSpec, others: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Two Rosters listing one person would fight over them (one removing what the other
    creates): the second is refused."""
    mine = {u.name for u in spec.users}
    for name, other in others:
        shared = sorted(mine & {u.get("name") for u in other.get("users") or [] if isinstance(u, dict)})
        if shared:
            more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
            return f"{', '.join(shared[:3])}{more} already listed by roster/{name} (a person has one roster)"
    return None


KIND = KindInfo(
    Roster,
    RosterStatus,
    one_shot=False,
    scope=scopes.ADMIN_USERS,  # it creates and removes accounts (and their volumes)
    lane="slow",  # a removal may back up volumes
    columns=(
        Column("USERS", lambda it: len(it["spec"].get("users") or [])),
        Column("REMOVAL", "spec.removal"),
        Column("PASSWORDS", "spec.passwords"),
    ),
    conflict=one_roster_per_person,
    groups=group_managers,
    details=(
        StatusTable(
            "people",
            "People",
            (Column("NAME", "name"), Column("STEP", "step"), Column("BACKUP", "backup"), Column("DID", "did")),
        ),
    ),
)


@dataclass(frozen=True)
class Plan:
    """What applying a roster changes in the hub, from what the hub has (the diff)."""

    create: list[str]
    create_groups: list[str]
    add: dict[str, list[str]]  # group -> names
    remove: dict[str, list[str]]
    removals: list[str]  # people the roster managed and no longer lists

    @property
    def writes(self) -> int:
        return len(self.create) + len(self.create_groups) + len(self.add) + len(self.remove) + len(self.removals)


def plan(spec: RosterSpec, users: Collection[str], groups: dict[str, set[str]], managed: dict[str, str]) -> Plan:
    """The diff of the roster against the hub: `users` the hub's names, `groups` its groups'
    members, `managed` the people this roster manages or removed ({name: state})."""
    listed = {u.name for u in spec.users}
    wanted: dict[str, set[str]] = {g: set() for g in spec.groups()}
    for u in spec.users:
        for g in u.groups:
            wanted[g].add(u.name)
    add, remove = {}, {}
    for g, members in sorted(wanted.items()):
        current = groups.get(g, set())
        if missing := sorted(members - current):
            add[g] = missing
        # The roster manages these groups: a member it does not list goes, unless the roster
        # removes them anyway (their deletion takes them out of every group).
        if extra := sorted(current - members - (set(managed) - listed)):
            remove[g] = extra
    return Plan(
        create=sorted(listed - set(users)),
        create_groups=sorted(set(wanted) - set(groups)),
        add=add,
        remove=remove,
        removals=sorted(n for n, state in managed.items() if n not in listed and state != "removed"),
    )
