"""VolumeRestore: the archives of one backup into one user's volumes, emptied first (a
one-shot; docs/backups.md). Its spec, its status, its table."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status
from .fields import JobSpec, Name, Username, VolumeKey
from .volumes import DEADLINE_SECONDS, volume_list


class VolumeRestoreSpec(JobSpec):
    """Archives of one backup into one user's volumes (emptied first)."""

    backup: Name
    user: Username
    # Whose archives; default: `user`. Another user's is for hub admins (`cross_user`).
    source_user: Username | None = Field(None, alias="sourceUser")
    volumes: list[VolumeKey] | None = Field(None, json_schema_extra={"minItems": 1, "uniqueItems": True})
    active_deadline_seconds: int = Field(DEADLINE_SECONDS, alias="activeDeadlineSeconds", ge=1)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else volume_list(value)

    @property
    def source(self) -> str:
        """Whose archives: `sourceUser`, else the user restored into (never implied)."""
        return self.source_user or self.user

    @property
    def cross_user(self) -> bool:
        """Another user's archives into this user's volumes: for hub admins only."""
        return self.source != self.user


class VolumeRestore(Envelope):
    kind: Literal["VolumeRestore"]
    spec: VolumeRestoreSpec


class VolumeRestoreStatus(Status):
    user: str | None = None
    source_user: str | None = Field(None, alias="sourceUser")
    backup: str | None = None
    step: Literal["checking", "restoring", "done"] | None = None
    restored_volumes: list[str] = Field([], alias="restoredVolumes")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    seconds: float | None = None


KIND = KindInfo(
    VolumeRestore,
    VolumeRestoreStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    lane="slow",
    columns=(Column("USER", "spec.user"), Column("BACKUP", "spec.backup"), Column("STEP", "status.step")),
)
