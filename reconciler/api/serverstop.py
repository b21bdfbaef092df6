"""ServerStop: stop every running server a selector picks (as RolloutRestart's), each lab
told first with the reason and when (a one-shot, e.g. before maintenance; docs/policies.md).
Its spec, its status, its table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import MESSAGE_MAX, DurationOrZero, JobSpec, RunningServersSelector, check_message


class ServerStopSpec(JobSpec):
    selector: RunningServersSelector
    warn_before: DurationOrZero = Field(300, alias="warnBefore")  # 0: no notice, stopped at once
    # Shown in the notice and the events: one line, as a broadcast's message.
    reason: str = Field(json_schema_extra={"minLength": 1, "maxLength": MESSAGE_MAX})

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return check_message(value)


class ServerStop(Envelope):
    kind: Literal["ServerStop"]
    spec: ServerStopSpec


StopState = Literal["Pending", "Warned", "Stopping", "Stopped", "Gone", "Failed"]
DONE_STATES: tuple[StopState, ...] = ("Stopped", "Gone")


class StopTarget(StatusModel):
    user: str
    server: str = ""
    state: StopState = "Pending"
    message: str = ""
    # When this server started, as the hub said when it was chosen: a server running under
    # the same name later, but started since, is another one and is left alone.
    server_started: str | None = Field(None, alias="serverStarted")
    stopped_at: AwareDatetime | None = Field(None, alias="stoppedAt")


class ServerStopStatus(Status):
    targets: list[StopTarget] = []
    chosen_at: AwareDatetime | None = Field(None, alias="chosenAt")
    # The stop time, recorded before any notice is sent: a restarted reconciler waits for it
    # (never warns twice, never stops early).
    stop_at: AwareDatetime | None = Field(None, alias="stopAt")
    warned_at: AwareDatetime | None = Field(None, alias="warnedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    stopped: int = 0
    gone: int = 0  # had stopped by itself (or its user was deleted) before its turn
    failed: int = 0


KIND = KindInfo(
    ServerStop,
    ServerStopStatus,
    one_shot=True,
    scope=scopes.WRITE_REQUESTS,
    lane="slow",
    columns=(
        Column("TARGETS", lambda it: len((it.get("status") or {}).get("targets") or [])),
        Column("STOP-AT", "status.stopAt"),
        Column("STOPPED", "status.stopped"),
        Column("GONE", "status.gone"),
        Column("FAILED", "status.failed"),
    ),
)
