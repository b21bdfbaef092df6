"""Broadcast: a notification to the labs of running servers, now, at a time or on a cron
schedule (a one-shot; docs/notifications.md). Its spec, its status, its table."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StrictBool, field_validator, model_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel
from .fields import MESSAGE_MAX, Duration, JobSpec, SpecModel, UsersAndGroups, check_message, validate_cron


class Targets(UsersAndGroups):
    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not self.users and not self.groups:
            raise ValueError("must list at least one of users or groups (omit targets to reach every running server)")
        return self


class Schedule(SpecModel):
    at: datetime | None = Field(None, json_schema_extra={"format": "date-time"})
    cron: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _at_is_a_time(cls, value: Any) -> Any:
        if value is None or isinstance(value, str | datetime):
            return value
        if isinstance(value, date):
            raise ValueError("must be an RFC 3339 time with a timezone, e.g. 2026-12-01T09:00:00Z (got a date)")
        raise ValueError(f"must be an RFC 3339 time with a timezone, e.g. 2026-12-01T09:00:00Z (got {value!r})")

    @field_validator("at")
    @classmethod
    def _at_has_timezone(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must include a timezone, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00")
        return value.astimezone(UTC)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.at is None) == (self.cron is None):
            raise ValueError("must set exactly one of 'at' (a time) or 'cron' (a recurring schedule)")
        return self


BroadcastType = Literal["default", "info", "success", "warning", "error", "in-progress"]


class BroadcastSpec(JobSpec):
    message: str = Field(json_schema_extra={"minLength": 1, "maxLength": MESSAGE_MAX})
    type: BroadcastType = "info"
    # left_to_right with a strict int first: 0 must stay 0, not become the equal literal False.
    auto_close: Annotated[int, Field(ge=0, strict=True)] | Literal[False] = Field(
        5000, alias="autoClose", union_mode="left_to_right"
    )
    dismiss_button: StrictBool = Field(True, alias="dismissButton")
    targets: Targets | None = None
    schedule: Schedule | None = None
    # After a run, servers that start (or labs that were unreachable) within this long still get it, once.
    valid_for: Duration | None = Field(None, alias="validFor")
    # Scheduled broadcasts (as a Kubernetes CronJob): catch-up window, overlap, history.
    starting_deadline_seconds: int = Field(300, alias="startingDeadlineSeconds", ge=1)
    concurrency_policy: Literal["Forbid", "Allow"] = Field("Forbid", alias="concurrencyPolicy")
    successful_runs_history_limit: int = Field(3, alias="successfulRunsHistoryLimit", ge=0)
    failed_runs_history_limit: int = Field(1, alias="failedRunsHistoryLimit", ge=0)

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        return check_message(value)

    @field_validator("auto_close", mode="before")
    @classmethod
    def _auto_close(cls, value: Any) -> Any:
        # `true` would be accepted by the int branch as 1 ms: refuse it explicitly.
        if value is False:
            return False
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ValueError(f"must be false or a number of milliseconds >= 0 (got {json.dumps(value, default=str)})")

    @model_validator(mode="after")
    def _deadline_is_for_one_time(self) -> BroadcastSpec:
        if self.active_deadline_seconds is not None and self.schedule is not None and self.schedule.cron:
            raise ValueError(
                "activeDeadlineSeconds is for a one-time broadcast; a cron broadcast uses startingDeadlineSeconds"
            )
        return self


class Broadcast(Envelope):
    kind: Literal["Broadcast"]
    spec: BroadcastSpec


class BroadcastRun(StatusModel):
    id: str
    outcome: Literal["Succeeded", "Failed"] | None = None  # all delivered, or not
    scheduled_for: AwareDatetime | None = Field(None, alias="scheduledFor")
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    total: int = 0
    counts: dict[str, int] | None = None


class BroadcastStatus(Status):
    next_run: AwareDatetime | None = Field(None, alias="nextRun")
    valid_until: AwareDatetime | None = Field(None, alias="validUntil")  # late joiners still get it until
    last_scheduled: AwareDatetime | None = Field(None, alias="lastScheduled")
    current_run: BroadcastRun | None = Field(None, alias="currentRun")
    runs: list[BroadcastRun] = []
    counts: dict[str, int] | None = None


KIND = KindInfo(
    Broadcast,
    BroadcastStatus,
    one_shot=True,
    scope=scopes.WRITE_BROADCASTS,
    columns=(Column("TYPE", "spec.type"), Column("NEXT-RUN", "status.nextRun")),
)
