"""Spec models of the backup kinds: VolumeBackup and VolumeRestore (one-shots), and
BackupSchedule (standing).

Kept apart from `resources` (the envelopes and the registry) so the backup fields and their
rules read on their own. What they mean: docs/backups.md.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, field_validator, model_validator

from .fields import JobSpec, Name, SpecModel, Username, VolumeKey, unique, validate_cron
from .policy_specs import ServerSelector


def _volume_list(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must list at least one volume key, e.g. [home]")
    return unique(value)


class VolumeBackupSpec(JobSpec):
    """The chosen volumes of one user, of every user the selector matches, or of everyone."""

    user: Username | None = None
    selector: ServerSelector | None = None
    all_users: StrictBool = Field(False, alias="allUsers")
    volumes: list[VolumeKey] = Field(["home", "workspace"], json_schema_extra={"minItems": 1, "uniqueItems": True})
    # Stop a running server for the backup and start it again (else crash-consistent).
    consistent: StrictBool = False
    # A backup is the record of its archives: kept until deleted (or pruned by a schedule).
    ttl_seconds_after_finished: int = Field(0, alias="ttlSecondsAfterFinished", ge=0)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        return _volume_list(value)

    @model_validator(mode="after")
    def _one_subject(self) -> VolumeBackupSpec:
        if (self.user is not None) + (self.selector is not None) + self.all_users != 1:
            raise ValueError(
                "must set exactly one of 'user' (one user), 'selector' (users and groups) or 'allUsers: true'"
            )
        return self


class VolumeRestoreSpec(JobSpec):
    """Archives of one backup into one user's volumes (emptied first)."""

    backup: Name
    user: Username
    # Whose archives (in a backup of several users); default: `user`, or the backup's only user.
    source_user: Username | None = Field(None, alias="sourceUser")
    volumes: list[VolumeKey] | None = Field(None, json_schema_extra={"minItems": 1, "uniqueItems": True})

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _volume_list(value)


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
        return _volume_list(value)
