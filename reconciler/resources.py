"""The desired-state resources (DESIGN §3): one envelope, one spec model per kind.

Every model forbids unknown fields, so a typo in a GitOps file is an error instead of a
setting silently ignored. Field names are camelCase in YAML/JSON (the aliases) and
snake_case in Python; models dump by alias. Manifests are validated by alias only
(`parse_resource`), Python code may construct models with either name.

This module is a leaf: it imports nothing from the project.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from croniter import CroniterBadDateError, CroniterError, croniter
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    field_validator,
    model_validator,
)

API_VERSION = "jupyterhub-ds/v1"
KINDS = ("Broadcast", "VolumeReset", "ServerRestart", "GroupMembership")
ONE_SHOT_KINDS = frozenset({"Broadcast", "VolumeReset", "ServerRestart"})

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX = 63
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:+-]*$"
VOLUME_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MESSAGE_MAX = 140
_NAME_RE = re.compile(NAME_PATTERN)
_GROUP_RE = re.compile(GROUP_PATTERN)
_VOLUME_KEY_RE = re.compile(VOLUME_KEY_PATTERN)
_USERNAME_FORBIDDEN = re.compile(r"[\s/,\x00-\x1f\x7f]")
_REASON_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
_MAX_NAME_LEN = 255


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


# --- reusable field validators -------------------------------------------------------------


def _check_name(value: str) -> str:
    if len(value) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters (got {len(value)})")
    if not _NAME_RE.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit (got {value!r})"
        )
    return value


def _check_username(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > _MAX_NAME_LEN:
        raise ValueError(f"must be at most {_MAX_NAME_LEN} characters (got {len(value)})")
    if value != value.lower():
        raise ValueError(
            f"JupyterHub usernames are lowercase (the authenticator normalizes them): write {value.lower()!r}, "
            f"not {value!r}"
        )
    if _USERNAME_FORBIDDEN.search(value) or set(value) == {"."}:
        raise ValueError(f"is not a valid JupyterHub username (no spaces, '/' or ','; got {value!r})")
    return value


def _check_group(value: str) -> str:
    if len(value) > _MAX_NAME_LEN:
        raise ValueError(f"must be at most {_MAX_NAME_LEN} characters (got {len(value)})")
    if not _GROUP_RE.match(value):
        raise ValueError(
            f"must be a group name: letters, digits and . _ @ : + -, starting with a letter or digit (got {value!r})"
        )
    return value


def _check_volume_key(value: str) -> str:
    if not _VOLUME_KEY_RE.match(value):
        raise ValueError(
            f"must be a volume key: lowercase letters, digits, '_' and '-', starting with a letter or digit "
            f"(got {value!r})"
        )
    return value


def _check_server_name(value: str) -> str:
    if value == "":
        return value
    if len(value) > _MAX_NAME_LEN:
        raise ValueError(f"must be at most {_MAX_NAME_LEN} characters (got {len(value)})")
    if _USERNAME_FORBIDDEN.search(value) or set(value) == {"."}:
        raise ValueError(f"is not a valid server name (no spaces, '/' or ','; got {value!r})")
    return value


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    duplicates = [v for v in values if v in seen or seen.add(v)]
    if duplicates:
        listed = ", ".join(repr(d) for d in dict.fromkeys(duplicates))
        raise ValueError(f"must not contain duplicates (repeated: {listed})")
    return values


Name = Annotated[
    str,
    AfterValidator(_check_name),
    Field(json_schema_extra={"pattern": NAME_PATTERN, "minLength": 1, "maxLength": NAME_MAX}),
]
Username = Annotated[
    str,
    AfterValidator(_check_username),
    Field(json_schema_extra={"pattern": r"^[^\sA-Z/,]+$", "maxLength": _MAX_NAME_LEN}),
]
GroupName = Annotated[
    str,
    AfterValidator(_check_group),
    Field(json_schema_extra={"pattern": GROUP_PATTERN, "maxLength": _MAX_NAME_LEN}),
]
VolumeKey = Annotated[str, AfterValidator(_check_volume_key), Field(json_schema_extra={"pattern": VOLUME_KEY_PATTERN})]
ServerName = Annotated[str, AfterValidator(_check_server_name), Field(json_schema_extra={"pattern": r"^[^\s/,]*$"})]


# --- cron -----------------------------------------------------------------------------------


def validate_cron(expr: str) -> str:
    """A standard 5-field cron expression, whitespace normalized; ValueError if it is not
    one or can never fire. Parsing and next-time arithmetic are croniter's."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            "must be a 5-field cron expression 'minute hour day-of-month month day-of-week', "
            f"e.g. '0 9 * * mon-fri' (got {len(fields)} field{'s' if len(fields) != 1 else ''})"
        )
    normalized = " ".join(fields)
    try:
        croniter(normalized, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {normalized!r} never fires (no such day in those months)") from None
    except (CroniterError, ValueError) as e:
        raise ValueError(f"invalid cron expression {normalized!r}: {e}") from None
    return normalized


def next_cron_time(expr: str, after: datetime) -> datetime:
    """The first time strictly after `after` that `expr` matches (UTC)."""
    return croniter(expr, after.astimezone(UTC)).get_next(datetime)


# --- base -----------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Metadata(_Model):
    name: Name
    labels: dict[str, str] = {}


# --- specs ----------------------------------------------------------------------------------


class GroupMembershipSpec(_Model):
    group: GroupName
    members: list[Username] = []
    prune: StrictBool = False

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        return _unique(value)


class Targets(_Model):
    users: list[Username] = []
    groups: list[GroupName] = []

    @field_validator("users", "groups")
    @classmethod
    def _unique_lists(cls, value: list[str]) -> list[str]:
        return _unique(value)

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


class BroadcastSpec(_Model):
    message: str = Field(json_schema_extra={"minLength": 1, "maxLength": MESSAGE_MAX})
    type: BroadcastType = "info"
    # left_to_right with a strict int first: 0 must stay 0, not become the equal literal False.
    auto_close: Annotated[int, Field(ge=0, strict=True)] | Literal[False] = Field(
        5000, alias="autoClose", union_mode="left_to_right"
    )
    dismiss_button: StrictBool = Field(True, alias="dismissButton")
    targets: Targets | None = None
    schedule: Schedule | None = None

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MESSAGE_MAX:
            raise ValueError(f"must be at most {MESSAGE_MAX} characters (got {len(value)})")
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


class VolumeResetSpec(_Model):
    user: Username
    volumes: list[VolumeKey] = Field(json_schema_extra={"minItems": 1, "uniqueItems": True})

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one volume key, e.g. [home]")
        return _unique(value)


class ServerRestartSpec(_Model):
    user: Username
    server: ServerName = ""


# --- status ---------------------------------------------------------------------------------


class Condition(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    type: str = Field(min_length=1)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=_REASON_PATTERN)
    message: str = ""
    last_transition_time: AwareDatetime = Field(alias="lastTransitionTime")


class Status(BaseModel):
    """Written by the reconciler only. Controllers add kind-specific fields (extra="allow")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    phase: str | None = None
    observed_generation: int | None = Field(None, alias="observedGeneration")
    conditions: list[Condition] = []


def set_condition(
    conditions: list[Condition],
    type: str,
    status: Literal["True", "False", "Unknown"],
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


Resource = Annotated[GroupMembership | Broadcast | VolumeReset | ServerRestart, Field(discriminator="kind")]
RESOURCE_ADAPTER: TypeAdapter[Resource] = TypeAdapter(Resource)
MODELS: dict[str, type[_Envelope]] = {
    "Broadcast": Broadcast,
    "VolumeReset": VolumeReset,
    "ServerRestart": ServerRestart,
    "GroupMembership": GroupMembership,
}


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
