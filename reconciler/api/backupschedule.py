"""BackupSchedule: VolumeBackups on a cron schedule, pruned by a retention (standing;
docs/backups.md). Its spec, its status, its table."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, StrictBool, field_validator, model_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import ServerSelector, SpecModel, VolumeKey, validate_cron
from .volumes import volume_list


class Retention(SpecModel):
    """Which successful backups a schedule keeps (as restic's `forget`); 0 keeps none by that rule."""

    keep_last: int = Field(7, alias="keepLast", ge=0)
    keep_daily: int = Field(0, alias="keepDaily", ge=0)
    keep_weekly: int = Field(0, alias="keepWeekly", ge=0)

    @model_validator(mode="after")
    def _keeps_something(self) -> Retention:
        if not (self.keep_last or self.keep_daily or self.keep_weekly):
            raise ValueError("must keep something: set keepLast, keepDaily or keepWeekly above 0")
        return self


class BackupScheduleSpec(SpecModel):
    schedule: str  # 5-field cron, UTC
    selector: ServerSelector | None = None  # None: every user
    volumes: list[VolumeKey] = Field(["home", "workspace"], json_schema_extra={"minItems": 1, "uniqueItems": True})
    consistent: StrictBool = False
    retention: Retention = Field(default_factory=Retention)
    starting_deadline_seconds: int = Field(300, alias="startingDeadlineSeconds", ge=1)
    suspend: StrictBool = False

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        return volume_list(value)


class BackupSchedule(Envelope):
    kind: Literal["BackupSchedule"]
    spec: BackupScheduleSpec


class ScheduleRun(StatusModel):
    backup: str  # the VolumeBackup this run created
    scheduled_for: AwareDatetime = Field(alias="scheduledFor")
    phase: str = "Running"
    users: dict[str, str] = {}  # user -> outcome (Succeeded, Failed: reason, Skipped)


class BackupScheduleStatus(Status):
    next_run: AwareDatetime | None = Field(None, alias="nextRun")
    last_scheduled: AwareDatetime | None = Field(None, alias="lastScheduled")
    current_run: ScheduleRun | None = Field(None, alias="currentRun")
    runs: list[ScheduleRun] = []  # the latest finished runs, newest first
    kept: list[str] = []  # backups retention keeps, newest first
    pruned: list[str] = []  # deleted by the last prune


KIND = KindInfo(
    BackupSchedule,
    BackupScheduleStatus,
    one_shot=False,
    scope=scopes.WRITE_POLICIES,
    lane="slow",
    columns=(Column("SCHEDULE", "spec.schedule"), Column("NEXT-RUN", "status.nextRun")),
)
