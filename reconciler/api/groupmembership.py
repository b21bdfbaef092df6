"""GroupMembership: who is in a hub group (standing; docs/reconciliation.md). Its spec, its
status, its table, and its rule of applying: one GroupMembership manages a group."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field, StrictBool, field_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import GroupName, SpecModel, Username, unique


class GroupMembershipSpec(SpecModel):
    group: GroupName
    members: list[Username] = []
    prune: StrictBool = False
    suspend: StrictBool = False

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        return unique(value)


class GroupMembership(Envelope):
    kind: Literal["GroupMembership"]
    spec: GroupMembershipSpec


class MembershipChange(StatusModel):
    time: AwareDatetime
    added: list[str] = []
    removed: list[str] = []


class GroupMembershipStatus(Status):
    group: str | None = None
    members: list[str] = []
    unknown_users: list[str] = Field([], alias="unknownUsers")
    # Protected groups: listed names that did not exist, never granted for this generation.
    refused_users: list[str] = Field([], alias="refusedUsers")
    unmanaged_members: list[str] = Field([], alias="unmanagedMembers")
    last_change: MembershipChange | None = Field(None, alias="lastChange")


def one_manager(spec: GroupMembershipSpec, others: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Two GroupMemberships of one group would undo each other's work: the second is refused."""
    for name, other in others:
        if other.get("group") == spec.group:
            return f"group {spec.group!r} is already managed by groupmembership/{name}"
    return None


KIND = KindInfo(
    GroupMembership,
    GroupMembershipStatus,
    one_shot=False,
    scope=scopes.WRITE_GROUPS,
    columns=(Column("GROUP", "spec.group"), Column("MEMBERS", lambda it: len(it["spec"].get("members") or []))),
    conflict=one_manager,
    groups=lambda spec: [spec.group if isinstance(spec, GroupMembershipSpec) else spec.get("group")],
)
