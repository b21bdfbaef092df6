"""IdleCullPolicy: when idle or old servers are warned and stopped (standing;
docs/idle-culling.md). Its spec, its status, its table; who is culled when is `culling.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, StrictBool, model_validator

from vocabulary import scopes

from .common import Column, Envelope, KindInfo, Status, StatusModel, StatusTable
from .fields import Duration, DurationOrZero, ServerSelector, SpecModel


class IdleCullPolicySpec(SpecModel):
    selector: ServerSelector | None = None  # None: every user
    idle_timeout: Duration = Field(alias="idleTimeout")
    max_age: DurationOrZero = Field(0, alias="maxAge")  # 0: no age limit
    warn_before: DurationOrZero = Field(600, alias="warnBefore")  # 0: no notice
    max_extension: DurationOrZero = Field(8 * 3600, alias="maxExtension")  # 0: users cannot keep servers
    priority: int = Field(0, ge=-1000, le=1000)
    dry_run: StrictBool = Field(False, alias="dryRun")
    suspend: StrictBool = False

    @model_validator(mode="after")
    def _warning_fits(self) -> IdleCullPolicySpec:
        if self.warn_before and self.warn_before >= self.idle_timeout:
            raise ValueError(
                f"warnBefore ({self.warn_before} s) must be shorter than idleTimeout ({self.idle_timeout} s)"
            )
        if self.warn_before and self.max_age and self.warn_before >= self.max_age:
            raise ValueError(f"warnBefore ({self.warn_before} s) must be shorter than maxAge ({self.max_age} s)")
        return self

    def covers(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return self.selector is None or self.selector.matches(user, groups)


class IdleCullPolicy(Envelope):
    kind: Literal["IdleCullPolicy"]
    spec: IdleCullPolicySpec


class CulledServer(StatusModel):
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


class CullAction(StatusModel):
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


KIND = KindInfo(
    IdleCullPolicy,
    IdleCullPolicyStatus,
    one_shot=False,
    scope=scopes.WRITE_POLICIES,
    columns=(
        Column("IDLE-TIMEOUT", "spec.idleTimeout"),
        Column("SERVERS", lambda it: len((it.get("status") or {}).get("servers") or [])),
    ),
    details=(
        StatusTable(
            "servers",
            "Servers",
            (
                Column("USER", "user"),
                Column("SERVER", lambda e: e.get("server") or "-"),
                Column("IDLE", lambda e: f"{e.get('idleSeconds', 0) // 60}m{e.get('idleSeconds', 0) % 60}s"),
                Column(
                    "DEADLINE", lambda e: f"{e.get('deadline', '')}{' (maxAge)' if e.get('reason') == 'maxAge' else ''}"
                ),
                Column("STATE", "state"),
                Column("NOTE", "message"),
            ),
        ),
    ),
)
