"""The desired-state resources (DESIGN §3): one envelope, one spec model per kind.

Every model forbids unknown fields, so a typo in a GitOps file is an error instead of a
setting silently ignored. Field names are camelCase in YAML/JSON (the aliases) and
snake_case in Python; models dump by alias. Manifests are validated by alias only
(`parse_resource`), Python code may construct models with either name.

`KINDS` is the one registry of kinds: each names its spec model, its status model and
whether it is a one-shot (a Job-like request) or standing (re-applied on every resync).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    TypeAdapter,
    field_validator,
    model_validator,
)

from vocabulary.api import API_VERSION

from .backup_specs import BackupScheduleSpec, VolumeBackupSpec, VolumeRestoreSpec
from .backup_status import BackupScheduleStatus, VolumeBackupStatus, VolumeRestoreStatus
from .fields import (
    MESSAGE_MAX,
    Duration,
    GroupName,
    JobSpec,  # the Job fields of every one-shot (kept in `fields` for the backup kinds' specs)
    Name,
    ServerName,
    SpecModel,
    Username,
    VolumeKey,
    unique,
    validate_cron,
)
from .policy_specs import GroupPolicySpec, IdleCullPolicySpec, RolloutRestartSpec, UsersAndGroups
from .policy_status import GroupPolicyStatus, RolloutRestartStatus
from .status import (
    BroadcastStatus,
    Condition,
    GroupMembershipStatus,
    IdleCullPolicyStatus,
    ServerRestartStatus,
    Status,
    VolumeResetStatus,
    get_condition,
    set_condition,
)

__all__ = [
    "API_VERSION",
    "MESSAGE_MAX",
    "Condition",
    "Status",
    "get_condition",
    "set_condition",
]

# --- base -----------------------------------------------------------------------------------


_Model = SpecModel


class Metadata(_Model):
    name: Name
    labels: dict[str, str] = {}


# --- specs ----------------------------------------------------------------------------------


class GroupMembershipSpec(_Model):
    group: GroupName
    members: list[Username] = []
    prune: StrictBool = False
    suspend: StrictBool = False

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        return unique(value)


class Targets(UsersAndGroups):
    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not self.users and not self.groups:
            raise ValueError("must list at least one of users or groups (omit targets to reach every running server)")
        return self


class Schedule(_Model):
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
        """One line of at most MESSAGE_MAX characters (code points: an emoji is one), nothing
        invisible that changes how it or the text around it reads. The panel checks the same."""
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MESSAGE_MAX:
            raise ValueError(f"must be at most {MESSAGE_MAX} characters (got {len(value)})")
        for i, char in enumerate(value, 1):
            if char in "\n\r\v\f\x85\u2028\u2029":
                problem = "must be one line: line breaks are not allowed"
            elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
                problem = "must not contain control characters"
            elif "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
                problem = "must not contain bidirectional override or isolate characters"
            else:
                continue
            raise ValueError(f"{problem} (U+{ord(char):04X} at character {i})")
        return value

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


class VolumeResetSpec(JobSpec):
    user: Username
    volumes: list[VolumeKey] = Field(json_schema_extra={"minItems": 1, "uniqueItems": True})
    # Back the volumes up (a VolumeBackup) before removing them; nothing is removed if it fails.
    backup_first: StrictBool = Field(False, alias="backupFirst")

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one volume key, e.g. [home]")
        return unique(value)


class ServerRestartSpec(JobSpec):
    user: Username
    server: ServerName = ""


# --- envelopes ------------------------------------------------------------------------------


class _Envelope(_Model):
    api_version: Literal["jupyterhub-ds/v1"] = Field(alias="apiVersion")
    kind: str
    metadata: Metadata
    spec: BaseModel
    # Accepted so that `get -o yaml` output can be re-applied; written by the reconciler only.
    status: dict[str, Any] | None = None

    @field_validator("api_version", mode="before")
    @classmethod
    def _api_version(cls, value: Any) -> Any:
        if value != API_VERSION:
            raise ValueError(f"unsupported apiVersion {value!r}; expected {API_VERSION!r}")
        return value


class GroupMembership(_Envelope):
    kind: Literal["GroupMembership"]
    spec: GroupMembershipSpec


class Broadcast(_Envelope):
    kind: Literal["Broadcast"]
    spec: BroadcastSpec


class VolumeReset(_Envelope):
    kind: Literal["VolumeReset"]
    spec: VolumeResetSpec


class ServerRestart(_Envelope):
    kind: Literal["ServerRestart"]
    spec: ServerRestartSpec


class IdleCullPolicy(_Envelope):
    kind: Literal["IdleCullPolicy"]
    spec: IdleCullPolicySpec


class GroupPolicy(_Envelope):
    kind: Literal["GroupPolicy"]
    spec: GroupPolicySpec


class RolloutRestart(_Envelope):
    kind: Literal["RolloutRestart"]
    spec: RolloutRestartSpec


class VolumeBackup(_Envelope):
    kind: Literal["VolumeBackup"]
    spec: VolumeBackupSpec


class VolumeRestore(_Envelope):
    kind: Literal["VolumeRestore"]
    spec: VolumeRestoreSpec


class BackupSchedule(_Envelope):
    kind: Literal["BackupSchedule"]
    spec: BackupScheduleSpec


Resource = Annotated[
    GroupMembership
    | Broadcast
    | VolumeReset
    | ServerRestart
    | IdleCullPolicy
    | GroupPolicy
    | RolloutRestart
    | VolumeBackup
    | VolumeRestore
    | BackupSchedule,
    Field(discriminator="kind"),
]
RESOURCE_ADAPTER: TypeAdapter[Resource] = TypeAdapter(Resource)


@dataclass(frozen=True)
class KindInfo:
    """What the rest of the code needs to know about a kind."""

    model: type[_Envelope]
    status: type[Status]
    one_shot: bool  # a request that runs once (and is immutable once started), not standing state


REGISTRY: dict[str, KindInfo] = {
    "Broadcast": KindInfo(Broadcast, BroadcastStatus, one_shot=True),
    "VolumeReset": KindInfo(VolumeReset, VolumeResetStatus, one_shot=True),
    "ServerRestart": KindInfo(ServerRestart, ServerRestartStatus, one_shot=True),
    "GroupMembership": KindInfo(GroupMembership, GroupMembershipStatus, one_shot=False),
    "IdleCullPolicy": KindInfo(IdleCullPolicy, IdleCullPolicyStatus, one_shot=False),
    "GroupPolicy": KindInfo(GroupPolicy, GroupPolicyStatus, one_shot=False),
    "RolloutRestart": KindInfo(RolloutRestart, RolloutRestartStatus, one_shot=True),
    "VolumeBackup": KindInfo(VolumeBackup, VolumeBackupStatus, one_shot=True),
    "VolumeRestore": KindInfo(VolumeRestore, VolumeRestoreStatus, one_shot=True),
    "BackupSchedule": KindInfo(BackupSchedule, BackupScheduleStatus, one_shot=False),
}
KINDS = tuple(REGISTRY)
ONE_SHOT_KINDS = frozenset(k for k, info in REGISTRY.items() if info.one_shot)
MODELS: dict[str, type[_Envelope]] = {k: info.model for k, info in REGISTRY.items()}


def kind_from_name(text: str) -> str:
    """The canonical kind for a kind name as typed on a command line.

    Case-insensitive, singular or plural: `groupmembership`, `groupmemberships`,
    `GroupMembership`, `broadcasts` ... Raises ValueError for anything else.
    """
    wanted = text.strip().lower()
    for kind in KINDS:
        if wanted in (kind.lower(), kind.lower() + "s"):
            return kind
    raise ValueError(f"unknown kind {text!r}; known kinds: {', '.join(KINDS)}")


def parse_resource(data: dict, *, keep_status: bool = False) -> Resource:
    """Validate one document (by its YAML/JSON field names only) into its model.

    `status` is accepted and dropped (it is written by the reconciler only) unless
    `keep_status`. Raises pydantic.ValidationError; `manifests.parse_manifests` turns those
    into messages with file and line.
    """
    resource = RESOURCE_ADAPTER.validate_python(data, by_alias=True, by_name=False)
    if not keep_status:
        resource.status = None
    return resource


def spec_hash(resource: Resource | BaseModel) -> str:
    """First 16 hex digits of the sha256 of the spec's canonical JSON.

    Defaults are included, so writing a default explicitly or omitting it hashes the same;
    keys are sorted, so key order does not matter either.
    """
    spec = resource.spec if isinstance(resource, _Envelope) else resource
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def json_schema() -> dict:
    """JSON Schema of a resource document (any kind), for editors and CI validation."""
    schema = RESOURCE_ADAPTER.json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:jupyterhub-ds:schema:resource:v1",
        "title": f"jupyterhub-ds resource ({API_VERSION})",
        "description": f"One desired-state document; kind is one of {', '.join(KINDS)}.",
        **schema,
    }
