"""The drift survey's status (the built-in watch `ServerDrift/servers`,
`controllers/serverdrift.py`): every running server against its user's policies now."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from .common import Status, StatusModel


class ServerState(StatusModel):
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
