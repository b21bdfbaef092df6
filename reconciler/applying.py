"""The rules of `Store.apply`, one function each, on an open transaction:

- what applying a document over the stored row does (created, configured, unchanged), and
  what is refused: a started one-shot's new spec (immutable, like a Job's, but for its
  kind's `KindInfo.mutable` fields), and what its
  kind's own rule refuses (`KindInfo.conflict`: a second GroupMembership for a group
  another one already manages);
- GitOps is the source of truth for what it owns: a resource from the manifests folder
  that was changed through the API or panel is put back, with an event naming who
  changed it, unless that change carried the label `jupyterhub-ds/gitops-override: "true"`;
- pruning what an owner no longer lists;
- who may replace or prune a stored resource: the caller's `authorize` judges the stored
  spec, in the same transaction (replacing or pruning a resource is deleting it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .api import REGISTRY, Resource, parse_resource, spec_hash
from .tables import EventRow, ResourceRow, StatusRow, utcnow

Action = Literal["created", "configured", "unchanged", "pruned"]
# A change made outside GitOps that GitOps must leave alone (documented in docs/reconciliation.md).
GITOPS_OVERRIDE = "jupyterhub-ds/gitops-override"


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    name: str
    action: Action

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "action": self.action}


class ConflictError(ValueError):
    """An apply that the store refuses as a whole (e.g. changing a started one-shot)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class ForbiddenError(ValueError):
    """An apply the requester may not make (a stored resource it would replace or prune
    needs a scope it lacks); nothing is applied."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# Why the requester may not replace or delete a stored resource (kind, name, spec), or None.
Authorize = Callable[[str, str, dict[str, Any]], str | None]


def refusal(authorize: Authorize | None, row: ResourceRow | None, verb: str) -> str | None:
    """The caller's refusal to `verb` (replace, prune) the stored `row`, naming it."""
    if authorize is None or row is None:
        return None
    problem = authorize(row.kind, row.name, row.spec)
    return f"{row.kind.lower()}/{row.name}: not {verb}d: {problem}" if problem else None


# Watches whose key is a user: their events are that user's.
PER_USER_KINDS = ("PrivilegedAccess", "DockerAccess", "KeepAlive", "Quota")


def subject_of(kind: str, name: str, actor: str | None, resource_subject: str | None = None) -> str | None:
    """Whose history an event counts against: the user who asked (`user:<name>`), else the
    user the resource is for, else the platform (None)."""
    if actor and actor.startswith("user:"):
        return actor.removeprefix("user:")
    if resource_subject:
        return resource_subject
    return name if kind in PER_USER_KINDS else None


def event_row(
    kind: str, name: str, type: str, reason: str, message: str, actor: str | None, subject: str | None = None
) -> EventRow:
    who = subject_of(kind, name, actor, subject)
    return EventRow(
        time=utcnow(), kind=kind, name=name, type=type, reason=reason, message=message, actor=actor, subject=who
    )


def within(source: str | None, scope: str) -> bool:
    """`source` is `scope` itself or lies under it (a file in a folder)."""
    return source is not None and (source == scope or source.startswith(scope.rstrip("/") + "/"))


def action(
    s: Session, row: ResourceRow | None, res: Resource, owner: str, source: str | None, batch: list[Resource]
) -> tuple[Action, str | None]:
    """What applying `res` over `row` does, or why it is refused (the second value)."""
    ref = f"{res.kind.lower()}/{res.metadata.name}"
    if problem := _kind_conflict(s, res, batch):
        return "unchanged", f"{ref}: {problem}"
    if row is None:
        return "created", None
    if owner == "gitops" and row.owner != "gitops" and row.labels.get(GITOPS_OVERRIDE) == "true":
        return "unchanged", None  # the admin said: leave this change alone
    if spec_hash(res) != _stored_hash(row):
        if REGISTRY[res.kind].one_shot and _started(s, row) and _fixed_part(res) != _fixed_part(row):
            return "unchanged", f"{ref}: spec is immutable once started; apply it under a new name"
        return "configured", None
    if row.labels != dict(res.metadata.labels) or row.owner != owner or row.source != source:
        return "configured", None
    return "unchanged", None


def drift_event(s: Session, row: ResourceRow | None, res: Resource, owner: str, source: str | None) -> None:
    """GitOps putting back a resource someone changed elsewhere: say so, naming them."""
    if row is None or owner != "gitops" or row.owner == "gitops":
        return
    last = s.scalars(
        select(EventRow)
        .where(EventRow.kind == row.kind, EventRow.name == row.name, EventRow.actor.is_not(None))
        .order_by(EventRow.id.desc())
        .limit(1)
    ).first()
    who = last.actor if last else row.owner
    message = f"changed by {who} (owner {row.owner}); put back from {source} (GitOps owns it)"
    s.add(event_row(row.kind, row.name, "Warning", "DriftCorrected", message, "gitops", row.subject))


def write_row(s: Session, row: ResourceRow | None, res: Resource, owner: str, source: str | None, version: int) -> None:
    spec, digest = res.spec.model_dump(mode="json", by_alias=True), spec_hash(res)
    now = utcnow()
    if row is None:
        row = ResourceRow(kind=res.kind, name=res.metadata.name, generation=1, created=now)
        s.add(row)
    elif row.spec_hash != digest:
        row.generation += 1
        row.finished = row.expires = None  # a new generation is not finished
    row.spec, row.spec_hash, row.labels = spec, digest, dict(res.metadata.labels)
    row.owner, row.source, row.subject = owner, source, getattr(res.spec, "user", None)
    row.resource_version, row.updated = version, now


def prune_unlisted(
    s: Session,
    resources: list[Resource],
    owner: str,
    scope: str | None,
    dry_run: bool,
    authorize: Authorize | None = None,
) -> tuple[list[ApplyResult], list[str]]:
    """What pruning deletes, and what the requester may not delete (then nothing is)."""
    listed = {(r.kind, r.metadata.name) for r in resources}
    pruned, forbidden = [], []
    for row in s.scalars(select(ResourceRow).where(ResourceRow.owner == owner)):
        if (row.kind, row.name) in listed or (scope is not None and not within(row.source, scope)):
            continue
        if problem := refusal(authorize, row, "prune"):
            forbidden.append(problem)
            continue
        pruned.append(ApplyResult(row.kind, row.name, "pruned"))
        if not dry_run:
            s.delete(row)
    return pruned, forbidden


def _kind_conflict(s: Session, res: Resource, batch: list[Resource]) -> str | None:
    """Why the kind's own rule refuses `res` over the others of its kind (stored, or earlier
    in this apply), or why the group-manager rule refuses it, or None."""
    rule = REGISTRY[res.kind].conflict
    if rule is None:
        return _group_conflict(s, res, batch)
    earlier, stored = _others_of_kind(s, res.kind, batch)
    position = next(i for i, other in enumerate(batch) if other is res)
    others = [spec for index, spec in earlier if index < position] + stored
    return rule(res.spec, others) or _group_conflict(s, res, batch)


def _group_conflict(s: Session, res: Resource, batch: list[Resource]) -> str | None:
    """A hub group has one manager across kinds (a GroupMembership or a Roster): two would
    undo each other's work. Judged against the others stored or earlier in this apply."""
    managed = REGISTRY[res.kind].groups
    if managed is None:
        return None
    position = next(i for i, other in enumerate(batch) if other is res)
    managers = _group_managers(s, batch)
    for group in sorted(managed(res.spec)):
        for kind, name, index in managers.get(group, []):
            if (kind, name) != (res.kind, res.metadata.name) and (index is None or index < position):
                return f"group {group!r} is already managed by {kind.lower()}/{name}"
    return None


def _group_managers(s: Session, batch: list[Resource]) -> dict[str, list[tuple[str, str, int | None]]]:
    """group -> [(kind, name, position in the batch, or None when stored)] of every resource
    that manages a group, worked out once per apply (as `_others_of_kind`)."""
    cache = s.info.setdefault("group_managers", {})
    if id(batch) not in cache:
        found: dict[str, list[tuple[str, str, int | None]]] = {}
        for kind, info in REGISTRY.items():
            if info.groups is None:
                continue
            earlier, stored = _others_of_kind(s, kind, batch)
            entries = [(name, spec, index) for index, (name, spec) in earlier]
            entries += [(name, spec, None) for name, spec in stored]
            for name, spec, index in entries:
                for group in info.groups(spec):
                    found.setdefault(group, []).append((kind, name, index))
        cache[id(batch)] = found
    return cache[id(batch)]


def _others_of_kind(
    s: Session, kind: str, batch: list[Resource]
) -> tuple[list[tuple[int, tuple[str, dict[str, Any]]]], list[tuple[str, dict[str, Any]]]]:
    """The batch's resources of `kind` (with their position) and the stored ones it does not
    list, read once per apply (cached on the session: an apply of N GroupMemberships would
    otherwise read and dump them N times). Stored rows outside the batch do not change
    during the apply; a resource listed in it is judged by its new spec."""
    cache = s.info.setdefault("kind_conflict", {})
    key = (kind, id(batch))
    if key not in cache:
        earlier = [
            (index, (other.metadata.name, other.spec.model_dump(mode="json", by_alias=True)))
            for index, other in enumerate(batch)
            if other.kind == kind
        ]
        in_batch = {name for _, (name, _) in earlier}
        stored = [(row.name, row.spec) for row in s.scalars(select(ResourceRow).where(ResourceRow.kind == kind))]
        cache[key] = (earlier, [(name, spec) for name, spec in stored if name not in in_batch])
    return cache[key]


def _stored_hash(row: ResourceRow) -> str:
    """The stored spec's hash under today's models (defaults added since it was written
    must not make an unchanged file look changed)."""
    try:
        return spec_hash(_as_resource(row))
    except ValueError:
        return row.spec_hash


def _as_resource(row: ResourceRow) -> Resource:
    return parse_resource(
        {"apiVersion": "jupyterhub-ds/v1", "kind": row.kind, "metadata": {"name": row.name}, "spec": row.spec}
    )


def _fixed_part(item: Resource | ResourceRow) -> str:
    """The spec without what a started one-shot may change (`KindInfo.mutable`: pausing a
    started schedule is not a new spec), canonical."""
    resource = _as_resource(item) if isinstance(item, ResourceRow) else item
    data = resource.spec.model_dump(mode="json", by_alias=True)
    for field in REGISTRY[resource.kind].mutable:
        data.pop(field, None)
    return json.dumps(data, sort_keys=True)


def _started(s: Session, row: ResourceRow) -> bool:
    """A one-shot resource has started once the reconciler has observed it."""
    status = s.get(StatusRow, (row.kind, row.name))
    return bool(status and status.body.get("observedGeneration") is not None)
