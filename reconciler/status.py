"""What the reconciler reports: conditions, phases and one status model per kind.

Every status model forbids unknown fields, so a misspelled status field is an error where
it is written, not a key silently stored. A status read back from the store is loaded with
`load`, which drops fields an older version wrote and this one no longer knows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .fields import REASON_PATTERN

ConditionStatus = Literal["True", "False", "Unknown"]
Phase = Literal[
    "Pending",  # recorded, not looked at yet
    "Scheduled",  # waiting for its time (a scheduled broadcast)
    "Delivering",  # a broadcast run is under way
    "Running",  # a one-shot is being carried out
    "Succeeded",  # a one-shot finished and did what it was asked
    "Active",  # a broadcast was sent and still reaches servers that start (`validFor`)
    "Completed",  # a broadcast has no run left
    "Failed",  # a one-shot ended without doing what it was asked
    "Ready",  # a standing resource holds
    "Degraded",  # a standing resource holds in part (e.g. unknown users)
    "Stalled",  # a standing resource cannot be reconciled until its spec changes
    "Drift",  # a built-in watch found the world off its policy
]
# A one-shot in one of these is finished: it is never reconciled again for this spec.
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Completed"})


class _StatusModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True, validate_assignment=True)


class Condition(_StatusModel):
    type: str = Field(min_length=1)
    status: ConditionStatus
    reason: str = Field(pattern=REASON_PATTERN)
    message: str = ""
    last_transition_time: AwareDatetime = Field(alias="lastTransitionTime")


class Status(_StatusModel):
    """The fields every kind reports; each kind's model adds its own."""

    phase: Phase | None = None
    observed_generation: int | None = Field(None, alias="observedGeneration")
    conditions: list[Condition] = []
    # The "reconcile now" request (its time) this status answers (`hubctl reconcile`).
    last_handled_reconcile_at: str | None = Field(None, alias="lastHandledReconcileAt")
    # One-shots: attempts that failed with a retryable error (ends Failed past `backoffLimit`).
    failed_attempts: int | None = Field(None, alias="failedAttempts")

    @classmethod
    def load(cls, body: dict[str, Any] | None) -> Self:
        """A stored status as this model, leaving out fields it does not know (written by an
        older version); every known field is still validated."""
        body = body or {}
        known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
        return cls.model_validate({k: v for k, v in body.items() if k in known})

    def dump(self) -> dict[str, Any]:
        """As stored and served: JSON types, camelCase, without empty optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def condition(self, type: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type), None)

    def is_true(self, type: str) -> bool:
        c = self.condition(type)
        return c is not None and c.status == "True"

    def set_condition(
        self, type: str, status: ConditionStatus, reason: str, message: str = "", now: datetime | None = None
    ) -> None:
        """Set the condition `type`; `lastTransitionTime` moves only when its status changes."""
        self.conditions = set_condition(self.conditions, type, status, reason, message, now)


def set_condition(
    conditions: list[Condition],
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    now: datetime | None = None,
) -> list[Condition]:
    """A new list with the condition `type` set; `lastTransitionTime` moves only when the status changes."""
    now = now or datetime.now(UTC)
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type:
            result.append(condition)
            continue
        found = True
        since = condition.last_transition_time if condition.status == status else now
        result.append(Condition(type=type, status=status, reason=reason, message=message, last_transition_time=since))
    if not found:
        result.append(Condition(type=type, status=status, reason=reason, message=message, last_transition_time=now))
    return result


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


# --- one model per kind ---------------------------------------------------------------------


class MembershipChange(_StatusModel):
    time: AwareDatetime
    added: list[str] = []
    removed: list[str] = []


class GroupMembershipStatus(Status):
    group: str | None = None
    members: list[str] = []
    unknown_users: list[str] = Field([], alias="unknownUsers")
    # Protected groups: listed names that did not exist, never granted for this generation.
    refused_users: list[str] = Field([], alias="refusedUsers")
    unmanaged_members: list[str] = Field([], alias="unmanagedMembers")
    last_change: MembershipChange | None = Field(None, alias="lastChange")


class BroadcastRun(_StatusModel):
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


class FailedVolume(_StatusModel):
    volume: str
    name: str
    reason: str


class VolumeResetStatus(Status):
    user: str | None = None
    backup: str | None = None  # the VolumeBackup taken first (`backupFirst`)
    reset_volumes: list[str] = Field([], alias="resetVolumes")
    failed_volumes: list[FailedVolume] = Field([], alias="failedVolumes")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")


class ServerRestartStatus(Status):
    user: str | None = None
    server: str | None = None
    step: Literal["stopping", "starting", "done"] | None = None
    started_at: AwareDatetime | None = Field(None, alias="startedAt")
    finished_at: AwareDatetime | None = Field(None, alias="finishedAt")
    seconds: float | None = None


class PrivilegedServer(_StatusModel):
    """One running container of a user, as the privileged-access survey saw it."""

    user: str
    server: str
    container: str
    container_id: str
    has_socket: bool
    member: bool
    hub_server: bool  # the hub knows this container as the user's running server
    drift: Literal["socket-without-membership", "membership-without-socket"] | None = None


class PlatformRestart(_StatusModel):
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


class EscalatedContainer(_StatusModel):
    """A running container with power over the host that no policy allows."""

    container: str
    container_id: str
    user: str | None = None  # for a server of this platform
    has: list[str] = []  # what gives it that power


class EngineAccessStatus(Status):
    containers: list[EscalatedContainer] = []
    handled: list[str] = []  # container ids already reported or stopped


class CulledServer(_StatusModel):
    """One server an IdleCullPolicy covers, as its last pass saw it."""

    user: str
    server: str = ""
    last_activity: AwareDatetime | None = Field(None, alias="lastActivity")
    idle_seconds: int = Field(0, alias="idleSeconds")
    deadline: AwareDatetime | None = None
    reason: Literal["idle", "maxAge"] = "idle"
    state: Literal["Active", "Warned", "Kept", "Skipped", "WouldStop", "Stopped"] = "Active"
    message: str = ""
    # The notice: when it was done, for which deadline (never twice for one), and the activity
    # seen before it (the notice's own request through the proxy is not the user's activity).
    warned_at: AwareDatetime | None = Field(None, alias="warnedAt")
    warned_for: AwareDatetime | None = Field(None, alias="warnedFor")
    activity_at_warning: AwareDatetime | None = Field(None, alias="activityAtWarning")
    kept_until: AwareDatetime | None = Field(None, alias="keptUntil")


class CullAction(_StatusModel):
    time: AwareDatetime
    user: str
    server: str = ""
    action: Literal["Warned", "Stopped", "WouldStop", "Skipped"]
    reason: str = ""


class IdleCullPolicyStatus(Status):
    last_pass: AwareDatetime | None = Field(None, alias="lastPass")
    servers: list[CulledServer] = []
    # The latest warnings and stops (newest last, at most RECENT_ACTIONS); events keep them all.
    recent: list[CullAction] = []
