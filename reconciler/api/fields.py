"""Validated field types shared by the kinds' models: names, usernames, groups, volume
keys, server names, durations, cron expressions, the users-and-groups selectors. Each rule is
written once, here or in `vocabulary.naming` (usernames), and used by every kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from vocabulary import naming
from vocabulary.durations import parse_duration

from ..cron import cron_trigger

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX = 63
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:+-]*$"
VOLUME_KEY_PATTERN = naming.VOLUME_KEY_PATTERN
MESSAGE_MAX = 140
_NAME_RE = re.compile(NAME_PATTERN)
_GROUP_RE = re.compile(GROUP_PATTERN)
_VOLUME_KEY_RE = re.compile(VOLUME_KEY_PATTERN)
_SERVER_FORBIDDEN = re.compile(r"[\s/,{}\x00-\x1f\x7f]")
REASON_PATTERN = r"^[A-Z][A-Za-z0-9]*$"
_MAX_NAME_LEN = 255


class SpecModel(BaseModel):
    """Base of every spec model: unknown fields are errors, camelCase in YAML, snake_case in Python."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class JobSpec(SpecModel):
    """What every one-shot kind has, as a Kubernetes Job does."""

    # Seconds from creation after which an unfinished request ends Failed (DeadlineExceeded).
    active_deadline_seconds: int | None = Field(None, alias="activeDeadlineSeconds", ge=1)
    # Failed attempts (temporary errors) after which it ends Failed (BackoffLimitExceeded).
    backoff_limit: int = Field(6, alias="backoffLimit", ge=0)
    # Seconds after finishing when it is deleted with its events; 0 keeps it forever.
    ttl_seconds_after_finished: int = Field(7 * 24 * 3600, alias="ttlSecondsAfterFinished", ge=0)
    # Recorded but not carried out while true (still an open request: e.g. idle culling
    # leaves that user's servers alone); a scheduled broadcast is paused.
    suspend: StrictBool = False


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
    problem = naming.username_problem(value)
    if problem:
        raise ValueError(problem)
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
    if _SERVER_FORBIDDEN.search(value) or set(value) == {"."}:
        raise ValueError(f"is not a valid server name (no spaces, '/' or ','; got {value!r})")
    return value


def unique(values: list[str]) -> list[str]:
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
    Field(json_schema_extra={"pattern": naming.USERNAME_PATTERN, "maxLength": naming.USERNAME_MAX}),
]
GroupName = Annotated[
    str,
    AfterValidator(_check_group),
    Field(json_schema_extra={"pattern": GROUP_PATTERN, "maxLength": _MAX_NAME_LEN}),
]
VolumeKey = Annotated[str, AfterValidator(_check_volume_key), Field(json_schema_extra={"pattern": VOLUME_KEY_PATTERN})]
ServerName = Annotated[str, AfterValidator(_check_server_name), Field(json_schema_extra={"pattern": r"^[^\s/,{}]*$"})]


# --- messages shown in JupyterLab ----------------------------------------------------------


def check_message(value: str) -> str:
    """One line of at most MESSAGE_MAX characters (code points: an emoji is one), nothing
    invisible that changes how it or the text around it reads (a broadcast's message, a
    ServerStop's reason). The panel checks the same."""
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


# --- durations ------------------------------------------------------------------------------


def _duration(value: object) -> int:
    """Whole seconds, from a number of seconds or a duration such as `90s`, `5m`, `2h`, `1d`."""
    seconds = parse_duration(value)  # type: ignore[arg-type]
    if seconds <= 0 or seconds != int(seconds):
        raise ValueError(f"must be a whole number of seconds above 0 (got {value!r})")
    return int(seconds)


Duration = Annotated[int, BeforeValidator(_duration), Field(json_schema_extra={"examples": ["5m", "2h", 3600]})]


def _duration_or_zero(value: object) -> int:
    seconds = parse_duration(value)  # type: ignore[arg-type]
    if seconds < 0 or seconds != int(seconds):
        raise ValueError(f"must be 0 or a whole number of seconds (got {value!r})")
    return int(seconds)


# 0 means "never" (e.g. an IdleCullPolicy's maxAge).
DurationOrZero = Annotated[
    int, BeforeValidator(_duration_or_zero), Field(json_schema_extra={"examples": [0, "8h", 3600]})
]


# --- cron -----------------------------------------------------------------------------------


def validate_cron(expr: str) -> str:
    """A standard 5-field cron expression, whitespace normalized; ValueError if it is not one
    or can never fire. The parser is the scheduler's own trigger (`cron.cron_trigger`), so
    what is accepted here is what fires."""
    cron_trigger(expr)
    return " ".join(expr.split())


# --- who: users and groups ------------------------------------------------------------------


class UsersAndGroups(SpecModel):
    """Listed users and members of listed groups (broadcast targets, policy selectors)."""

    users: list[Username] = []
    groups: list[GroupName] = []

    @field_validator("users", "groups")
    @classmethod
    def _unique_lists(cls, value: list[str]) -> list[str]:
        return unique(value)


class ServerSelector(UsersAndGroups):
    """Whose servers a policy covers: members of any listed group, and the listed users."""

    @model_validator(mode="after")
    def _not_empty(self) -> ServerSelector:
        if not self.users and not self.groups:
            raise ValueError("must list users or groups (omit selector to cover everyone)")
        return self

    def matches(self, user: str, groups: set[str] | frozenset[str]) -> bool:
        return user in self.users or bool(groups.intersection(self.groups))


class RunningServersSelector(SpecModel):
    """Which running servers a bulk action takes (RolloutRestart, ServerStop): exactly one of
    the drifted servers, members of groups, listed users, everyone."""

    drifted: StrictBool | None = None
    groups: list[GroupName] = []
    users: list[Username] = []
    all: StrictBool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RunningServersSelector:
        chosen = [bool(self.drifted), bool(self.groups), bool(self.users), bool(self.all)]
        if sum(chosen) != 1:
            raise ValueError("set exactly one of drifted: true, groups, users or all: true")
        return self

    def pick(self, active: Iterable[Mapping[str, Any]], survey: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(user, server) of what it selects, in name order: from the drift survey's last pass
        (`drifted`), else from the hub's users with an active server and their groups."""
        if self.drifted:
            return sorted((s["user"], s.get("server", "")) for s in survey.get("servers", []) if s.get("drifted"))
        found = []
        for user in active:
            if self.all or user["name"] in self.users or set(user.get("groups") or ()) & set(self.groups):
                found += [(user["name"], name) for name in user.get("servers") or {}]
        return sorted(found)
