"""The privileged-access watch's status (`PrivilegedAccess/<user>`,
`controllers/privilegedaccess.py`): the user's containers as surveyed, the drift already
handled, and the platform's restarts under way."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .common import Status, StatusModel


class PrivilegedServer(StatusModel):
    """One running container of a user, as the privileged-access survey saw it."""

    user: str
    server: str
    container: str
    container_id: str
    has_socket: bool
    member: bool
    hub_server: bool  # the hub knows this container as the user's running server
    drift: Literal["socket-without-membership", "membership-without-socket"] | None = None


class PlatformRestart(StatusModel):
    """A restart the privileged-access watch carries out itself (the platform's, not the
    user's: no resource anyone could cancel or name first), step by step; each step is
    recorded before its side effect, so a restarted reconciler resumes it."""

    server: str
    container_id: str  # the container it replaces (the one with the socket, on a revocation)
    reason: Literal["revoke", "grant"] = "revoke"
    step: Literal["stopping", "starting"] = "stopping"
    starts: int = 0  # start requests sent (a start lost or failed is sent again, a few times)
    started_at: AwareDatetime = Field(alias="startedAt")


class PrivilegedAccessStatus(Status):
    servers: list[PrivilegedServer] = []
    # Containers whose drift was already reported or acted on: each is handled once.
    handled: list[str] = []
    restarts: list[PlatformRestart] = []  # under way
