"""The Docker-access watch's status (`DockerAccess/<user>`, `controllers/dockeraccess.py`):
the user's Docker access level, whether the platform's proxy holds a socket open for them,
and what their containers (the ones the proxy recorded they made) hold."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .common import Status, StatusModel


class DockerContainer(StatusModel):
    """One container a `limited` user made through the proxy, as the engine reports it."""

    id: str
    name: str
    state: str  # running, exited, created...
    memory: int = 0  # bytes: its limit, as the quota counts it
    cpus: float = 0.0


class DockerAccessStatus(Status):
    level: Literal["none", "limited", "privileged"] = "none"
    socket_open: bool = Field(False, alias="socketOpen")  # the proxy listens for this user
    quota: dict[str, float] | None = None  # the combined dockerQuota (bytes, CPUs), when limited
    server_running: bool = Field(False, alias="serverRunning")
    containers: list[DockerContainer] = []
    container_count: int = Field(0, alias="containerCount")
    running: int = 0
    memory: int = 0  # bytes, over the user's existing containers (their limits)
    cpus: float = 0.0
    # Since when their containers have had to stay stopped (server stopped, or access gone):
    # they are removed DOCKER_LIMITED_GRACE_SECONDS after it.
    stopped_since: AwareDatetime | None = Field(None, alias="stoppedSince")
    # The user was told in their lab that their access ended (once per ending).
    told_ended: bool = Field(False, alias="toldEnded")
