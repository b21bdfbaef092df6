"""VolumeBackup: archives of chosen volumes of one user, of the users a selector matches, or
of everyone (a one-shot; docs/backups.md). Its spec, its status (the catalogue of its
archives: the users' pages, `hubctl get volumebackups` and a restore read it, with the
manifest beside the archives as a second record that survives a lost database), its table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, StrictBool, field_validator, model_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import JobSpec, ServerSelector, Username, VolumeKey
from .volumes import DEADLINE_SECONDS, volume_list

# The label of a backup taken before a reset (`backupFirst`), naming the reset: a backup of
# the user's own asking, kept BACKUP_USER_MAX per user and expiring by default.
BEFORE_RESET = "jupyterhub-ds/before-reset"


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
        return volume_list(value)

    @model_validator(mode="after")
    def _one_subject(self) -> VolumeBackupSpec:
        if (self.user is not None) + (self.selector is not None) + self.all_users != 1:
            raise ValueError(
                "must set exactly one of 'user' (one user), 'selector' (users and groups) or 'allUsers: true'"
            )
        return self


class VolumeBackup(Envelope):
    kind: Literal["VolumeBackup"]
    spec: VolumeBackupSpec


UserOutcome = Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"]


class BackupArchive(StatusModel):
    """One volume of one user, as written (also in the backup's manifest.json)."""

    user: str
    volume: str
    path: str  # relative to the backup location
    bytes: int  # of the compressed archive
    sha256: str
    files: int  # entries in the archive (files, folders, links)
    source_bytes: int = Field(0, alias="sourceBytes")  # of the volume's content, uncompressed


class UserBackup(StatusModel):
    user: str
    outcome: UserOutcome = "Pending"
    message: str = ""
    # consistent: true: the servers this reconciler stopped, so it must start them again.
    stopped_servers: list[str] = Field([], alias="stoppedServers")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


class VolumeBackupStatus(Status):
    location: str | None = None
    users: list[UserBackup] = []
    archives: list[BackupArchive] = []
    bytes: int = 0
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


KIND = KindInfo(
    VolumeBackup,
    VolumeBackupStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    lane="slow",
    columns=(
        Column("USERS", lambda it: len((it.get("status") or {}).get("users") or [])),
        Column("BYTES", "status.bytes"),
    ),
)
