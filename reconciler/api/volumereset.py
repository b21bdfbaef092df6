"""VolumeReset: empty a user's volumes, optionally backed up first (a one-shot;
docs/reconciliation.md). Its spec, its status, its table; the checks it shares with the
hub are in `volumes.py`."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, StrictBool, field_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import JobSpec, Username, VolumeKey
from .volumes import volume_list


class VolumeResetSpec(JobSpec):
    user: Username
    volumes: list[VolumeKey] = Field(json_schema_extra={"minItems": 1, "uniqueItems": True})
    # Back the volumes up (a VolumeBackup) before removing them; nothing is removed if it fails.
    backup_first: StrictBool = Field(False, alias="backupFirst")

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        return volume_list(value)


class VolumeReset(Envelope):
    kind: Literal["VolumeReset"]
    spec: VolumeResetSpec


class FailedVolume(StatusModel):
    volume: str
    name: str
    reason: str


class VolumeResetStatus(Status):
    user: str | None = None
    backup: str | None = None  # the VolumeBackup taken first (`backupFirst`)
    reset_volumes: list[str] = Field([], alias="resetVolumes")
    failed_volumes: list[FailedVolume] = Field([], alias="failedVolumes")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


KIND = KindInfo(
    VolumeReset,
    VolumeResetStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    columns=(Column("USER", "spec.user"), Column("VOLUMES", "spec.volumes")),
)
