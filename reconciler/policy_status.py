"""Status models of GroupPolicy, the server-drift survey and RolloutRestart (kept apart from
`status` so that module stays small)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .status import Status, _StatusModel


class GroupPolicyStatus(Status):
    # Users of the hub the policy applies to now (members of its groups), and how many run a server.
    members: list[str] = []
    running: int = 0
    drifted: int = 0  # running servers of its members that no longer match


class ServerState(_StatusModel):
    """One running server as the drift survey saw it."""

    user: str
    server: str = ""
    container: str
    image: str = ""  # the image reference it was started from
    image_id: str = Field("", alias="imageId")  # what it runs
    current_image_id: str = Field("", alias="currentImageId")  # what that reference names now
    policy_hash: str = Field("", alias="policyHash")  # of the effective policy it was started with
    current_policy_hash: str = Field("", alias="currentPolicyHash")
    policies: list[str] = []  # what applies to its user now
    drifted: bool = False
    difference: list[str] = []
    since: AwareDatetime | None = None  # when it was first seen drifted


class ServerDriftStatus(Status):
    last_survey: AwareDatetime | None = Field(None, alias="lastSurvey")
    servers: list[ServerState] = []
    engine_calls: int = Field(0, alias="engineCalls")  # of the last survey


RolloutState = Literal["Pending", "Deferred", "Warned", "Restarting", "Restarted", "Skipped", "Gone"]


class RolloutServer(_StatusModel):
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
