"""UserRemoval: delete one person with care (a one-shot; docs/roster.md#delete-with-care):
signed out, servers stopped, login refused, volumes kept, backed up then removed, or
removed. What `hubctl delete user` and `DELETE /hub/api/users/<name>/account` record."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status
from .fields import JobSpec, Username

Removal = Literal["keep", "backup", "delete"]


class UserRemovalSpec(JobSpec):
    user: Username
    removal: Removal = "keep"


class UserRemoval(Envelope):
    kind: Literal["UserRemoval"]
    spec: UserRemovalSpec


class UserRemovalStatus(Status):
    user: str | None = None
    step: Literal["refusing", "stopping", "deleting", "backingUp", "removingVolumes", "done"] | None = None
    backup: str | None = None
    did: list[str] = []
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


KIND = KindInfo(
    UserRemoval,
    UserRemovalStatus,
    one_shot=True,
    scope=scopes.ADMIN_USERS,
    lane="slow",  # may back up volumes
    columns=(Column("USER", "spec.user"), Column("REMOVAL", "spec.removal"), Column("STEP", "status.step")),
)
