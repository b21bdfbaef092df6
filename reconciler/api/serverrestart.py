"""ServerRestart: stop a user's server and start it again through the hub (a one-shot;
docs/reconciliation.md). Its spec, its status, its table."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status
from .fields import JobSpec, ServerName, Username


class ServerRestartSpec(JobSpec):
    user: Username
    server: ServerName = ""


class ServerRestart(Envelope):
    kind: Literal["ServerRestart"]
    spec: ServerRestartSpec


class ServerRestartStatus(Status):
    user: str | None = None
    server: str | None = None
    step: Literal["stopping", "starting", "done"] | None = None
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    seconds: float | None = None


KIND = KindInfo(
    ServerRestart,
    ServerRestartStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    columns=(Column("USER", "spec.user"), Column("SERVER", "spec.server"), Column("STEP", "status.step")),
)
