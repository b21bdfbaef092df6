"""UserRename: give a user a new name, with everything the platform keeps of them (a one-shot;
docs/users.md). Its spec, its status (the steps, each volume's move, what was rewritten,
what an admin must still change), its table."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import JobSpec, Username
from .volumes import DEADLINE_SECONDS

# JupyterHub's own scope for renaming a user (`PATCH /hub/api/users/<name>`): the same here.
SCOPE = "admin:users"

Step = Literal["copying", "records", "hub", "done"]
VolumeState = Literal["pending", "verified", "removed", "absent"]


class UserRenameSpec(JobSpec):
    user: Username  # the name now
    new_name: Username = Field(alias="newName")
    active_deadline_seconds: int = Field(DEADLINE_SECONDS, alias="activeDeadlineSeconds", ge=1)

    @model_validator(mode="after")
    def _different(self) -> UserRenameSpec:
        if self.user == self.new_name:
            raise ValueError("newName must differ from user")
        return self


class UserRename(Envelope):
    kind: Literal["UserRename"]
    spec: UserRenameSpec


class VolumeMove(StatusModel):
    """One per-user volume: copied to the new name's, checked, the old one removed."""

    volume: str  # the key (home, workspace, ...)
    source: str
    target: str
    state: VolumeState = "pending"
    files: int = 0
    bytes: int = 0
    # sha256 of the tree's listing (paths, types, modes, owners, sizes, each file's CRC-32, link
    # targets), the same on both sides
    checksum: str = ""


class MustChange(StatusModel):
    """A GitOps-owned GroupMembership naming the old name: its file is the admin's to change."""

    name: str
    group: str
    source: str = ""


class UserRenameStatus(Status):
    # Who and to what name are the spec's; how long, finishedAt - startedAt (not repeated here).
    step: Step | None = None
    volumes: list[VolumeMove] = []
    records: dict[str, int] = {}  # rows moved per table.column
    backups: list[str] = []  # VolumeBackups whose catalogue now names the new name
    memberships: list[str] = []  # GroupMemberships (API-owned) rewritten
    must_change: list[MustChange] = Field([], alias="mustChange")
    hold_until: AwareDatetime | None = Field(None, alias="holdUntil")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    # The request's own secret in the marker its helper writes into an old volume once every
    # copy is verified: a resumed helper trusts that marker, never a file a user made.
    token: str = ""


KIND = KindInfo(
    UserRename,
    UserRenameStatus,
    one_shot=True,
    scope=SCOPE,
    lane="slow",
    columns=(Column("USER", "spec.user"), Column("NEW NAME", "spec.newName"), Column("STEP", "status.step")),
    # a later deadline takes a failed rename up again, where it stopped (`hubctl rename-user --resume`)
    mutable=("suspend", "activeDeadlineSeconds"),
)
