"""What every kind shares: the envelope (apiVersion, kind, metadata, spec), the status base
with its phases and conditions, what a kind registers (`KindInfo`) and the columns of
`hubctl get`. Each kind's own types are in its module beside this one.

Every model forbids unknown fields, so a typo in a GitOps file, or a misspelled status
field where it is written, is an error instead of a key silently ignored or stored. A status
read back from the store is loaded with `load`, which drops fields an older version wrote
and this one no longer knows.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from vocabulary.api import API_VERSION

from .fields import REASON_PATTERN, Name, SpecModel

ConditionStatus = Literal["True", "False", "Unknown"]
Phase = Literal[
    "Pending",  # recorded, not looked at yet
    "Scheduled",  # waiting for its time (a scheduled broadcast)
    "Delivering",  # a broadcast run is under way
    "Running",  # a one-shot is being carried out
    "Warning",  # a ServerStop told the labs and waits for its stop time
    "Stopping",  # a ServerStop stops its servers
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


class StatusModel(BaseModel):
    """Base of every status model and of the parts of one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True, validate_assignment=True)


class Condition(StatusModel):
    type: str = Field(min_length=1)
    status: ConditionStatus
    reason: str = Field(pattern=REASON_PATTERN)
    message: str = ""
    last_transition_time: AwareDatetime = Field(alias="lastTransitionTime")


class Status(StatusModel):
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
        return get_condition(self.conditions, type)

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


# --- the envelope ---------------------------------------------------------------------------


class Metadata(SpecModel):
    name: Name
    labels: dict[str, str] = {}


class Envelope(SpecModel):
    """One resource document; each kind's class narrows `kind` to its name and `spec` to its model."""

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


# --- what a kind registers --------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of `hubctl get` (kubebuilder's printcolumn): a header and its cell, a dotted
    path into the resource as the API serves it (`spec.group`) or a function of it."""

    header: str
    value: str | Callable[[dict[str, Any]], Any]

    def cell(self, item: dict[str, Any]) -> str:
        if callable(self.value):
            return show(self.value(item))
        found: Any = item  # a field missing (an old status) is an empty cell, not a failed listing
        for part in self.value.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return show(found)


@dataclass(frozen=True)
class StatusTable:
    """A list in a kind's status that `hubctl describe` shows as a table, a row per entry
    (the columns' paths are into the entry), instead of as YAML."""

    field: str  # the status key holding the list
    title: str
    columns: tuple[Column, ...]

    def rows(self, entries: list[dict[str, Any]]) -> list[list[str]]:
        return [[c.header for c in self.columns]] + [[c.cell(e) for c in self.columns] for e in entries]


def show(value: Any) -> str:
    """A value as a table cell: lists joined, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return ",".join(show(v) for v in value)
    return str(value)


# A rule of applying over the others of a kind (stored, or earlier in the same apply):
# (the spec applied, [(name, spec as stored)]) -> why it is refused, or None.
Conflict = Callable[[Any, list[tuple[str, dict[str, Any]]]], str | None]


@dataclass(frozen=True)
class KindInfo:
    """What the rest of the code needs to know about a kind: its module's `KIND`."""

    model: type[Envelope]
    status: type[Status]
    one_shot: bool  # a request that runs once (and is immutable once started), not standing state
    scope: str  # the hub's scope to write it (`vocabulary.scopes`)
    lane: Literal["fast", "slow"] = "fast"  # slow: may take minutes (lanes.py)
    columns: tuple[Column, ...] = ()  # what `hubctl get` shows of it, between READY and AGE
    conflict: Conflict | None = None  # e.g. one GroupMembership per group
    details: tuple[StatusTable, ...] = ()  # lists in its status that `hubctl describe` shows as tables
    # spec fields a started one-shot may still change (aliases); a change is a new generation,
    # so a failed one is taken up again (a UserRename's deadline: `hubctl rename-user --resume`)
    mutable: tuple[str, ...] = ("suspend",)
    # The hub groups whose membership a resource of this kind manages (from its spec, as a
    # model or as stored): a group has one manager across kinds (`applying.py`).
    groups: Callable[[Any], list[str]] | None = None

    @property
    def kind(self) -> str:
        return typing.get_args(self.model.model_fields["kind"].annotation)[0]

    @property
    def spec(self) -> type[SpecModel]:
        return self.model.model_fields["spec"].annotation  # type: ignore[return-value]


# --- what `hubctl get` shows of every kind ----------------------------------------------------


def age(iso: str | None) -> str:
    """How long ago, as kubectl shows it: 5s, 3m, 2h, 4d."""
    if not iso:
        return ""
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def ready(status: dict[str, Any]) -> str:
    """The status of a served status's Ready condition, or nothing."""
    for c in status.get("conditions", []):
        if c.get("type") == "Ready":
            return c.get("status", "")
    return ""


FIRST_COLUMNS = (
    Column("NAME", "metadata.name"),
    Column("OWNER", lambda it: it["metadata"]["annotations"]["jupyterhub-ds/owner"]),
    Column("GENERATION", "metadata.generation"),
    Column("OBSERVED", "status.observedGeneration"),
    Column("PHASE", "status.phase"),
    Column("READY", lambda it: ready(it.get("status") or {})),
)
LAST_COLUMNS = (Column("AGE", lambda it: age(it["metadata"].get("creationTimestamp"))),)
