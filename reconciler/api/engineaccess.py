"""The engine-wide survey's status (`EngineAccess/...`, `controllers/engineaccess.py`): running
containers with power over the host that no policy allows."""

from __future__ import annotations

from .common import Status, StatusModel


class EscalatedContainer(StatusModel):
    """A running container with power over the host that no policy allows."""

    container: str
    container_id: str
    user: str | None = None  # for a server of this platform
    has: list[str] = []  # what gives it that power


class EngineAccessStatus(Status):
    containers: list[EscalatedContainer] = []
    handled: list[str] = []  # container ids already reported or stopped
