"""Status models of the backup kinds (VolumeBackup, VolumeRestore, BackupSchedule).

A finished VolumeBackup's status is the catalogue of its archives: the users' pages, `hubctl
get volumebackups` and a restore read it (with the manifest beside the archives as a
second record that survives a lost database).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .status import Status, _StatusModel

UserOutcome = Literal["Pending", "Running", "Succeeded", "Failed", "Skipped"]


class BackupArchive(_StatusModel):
    """One volume of one user, as written (also in the backup's manifest.json)."""

    user: str
    volume: str
    path: str  # relative to the backup location
    bytes: int  # of the compressed archive
    sha256: str
    files: int  # entries in the archive (files, folders, links)
    source_bytes: int = Field(0, alias="sourceBytes")  # of the volume's content, uncompressed


class UserBackup(_StatusModel):
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


class VolumeRestoreStatus(Status):
    user: str | None = None
    source_user: str | None = Field(None, alias="sourceUser")
    backup: str | None = None
    step: Literal["checking", "restoring", "done"] | None = None
    restored_volumes: list[str] = Field([], alias="restoredVolumes")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    seconds: float | None = None


class ScheduleRun(_StatusModel):
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
