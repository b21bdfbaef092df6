"""Spec models of the backup kinds: VolumeBackup and VolumeRestore (one-shots), and
BackupSchedule (standing).

Kept apart from `resources` (the envelopes and the registry) so the backup fields and their
rules read on their own. What they mean: docs/backups.md.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, field_validator, model_validator

from .fields import JobSpec, Name, SpecModel, Username, VolumeKey, unique, validate_cron
from .policy_specs import ServerSelector

# The label of a backup taken before a reset (`backupFirst`), naming the reset: a backup of
# the user's own asking, kept BACKUP_USER_MAX per user and expiring by default.
BEFORE_RESET = "jupyterhub-ds/before-reset"
# A helper past this (from the request's creation) is killed and the request ends Failed,
# DeadlineExceeded: long enough for hundreds of GB at the measured 30 MB/s.
DEADLINE_SECONDS = 6 * 3600


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
    # Deleted by its TTL, it takes its archives with it.
    ttl_seconds_after_finished: int = Field(0, alias="ttlSecondsAfterFinished", ge=0)
    active_deadline_seconds: int = Field(DEADLINE_SECONDS, alias="activeDeadlineSeconds", ge=1)

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
    # Whose archives; default: `user`. Another user's is for hub admins (`cross_user`).
    source_user: Username | None = Field(None, alias="sourceUser")
    volumes: list[VolumeKey] | None = Field(None, json_schema_extra={"minItems": 1, "uniqueItems": True})
    active_deadline_seconds: int = Field(DEADLINE_SECONDS, alias="activeDeadlineSeconds", ge=1)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _volume_list(value)

    @property
    def source(self) -> str:
        """Whose archives: `sourceUser`, else the user restored into (never implied)."""
        return self.source_user or self.user

    @property
    def cross_user(self) -> bool:
        """Another user's archives into this user's volumes: for hub admins only."""
        return self.source != self.user


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
