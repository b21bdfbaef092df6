"""RolloutRestart: restart what must be (the drifted servers, a group's, listed users',
everyone's), a few at a time, after a notice (a one-shot; docs/policies.md). Its spec, its
status, its table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import DurationOrZero, JobSpec, RunningServersSelector


class RolloutRestartSpec(JobSpec):
    selector: RunningServersSelector
    max_unavailable: int = Field(1, alias="maxUnavailable", ge=1, le=100)
    skip_active_within: DurationOrZero = Field(0, alias="skipActiveWithin")  # 0: nobody counts as active
    # What to do with a server still active when its turn comes (it is put last first).
    when_active: Literal["Skip", "Wait"] = Field("Skip", alias="whenActive")
    warn_before: DurationOrZero = Field(120, alias="warnBefore")  # 0: no notice


class RolloutRestart(Envelope):
    kind: Literal["RolloutRestart"]
    spec: RolloutRestartSpec


RolloutState = Literal["Pending", "Deferred", "Warned", "Restarting", "Restarted", "Skipped", "Gone"]


class RolloutServer(StatusModel):
    user: str
    server: str = ""
    state: RolloutState = "Pending"
    step: Literal["stopping", "starting"] | None = None  # while Restarting: where a resumed pass picks up
    message: str = ""
    warned_at: AwareDatetime | None = Field(None, alias="warnedAt")  # the notice was sent
    notice_done_at: AwareDatetime | None = Field(None, alias="noticeDoneAt")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


class RolloutRestartStatus(Status):
    servers: list[RolloutServer] = []
    warned_at: AwareDatetime | None = Field(None, alias="warnedAt")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    restarted: int = 0
    skipped: int = 0  # left alone: in use, or no longer running


KIND = KindInfo(
    RolloutRestart,
    RolloutRestartStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    lane="slow",
    columns=(Column("RESTARTED", "status.restarted"), Column("SKIPPED", "status.skipped")),
)
