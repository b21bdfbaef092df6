"""What the store hands out: a resource as stored (envelope, bookkeeping, last status) and
an event, each read from its table row; times in ISO 8601, UTC ("Z")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vocabulary.api import API_VERSION

from .tables import ResourceRow


@dataclass(frozen=True)
class StoredResource:
    """A resource as stored: the envelope, its bookkeeping and its last status."""

    kind: str
    name: str
    owner: str
    source: str | None
    labels: dict[str, str]
    spec: dict[str, Any]
    generation: int
    resource_version: int
    created: datetime
    updated: datetime
    status: dict[str, Any] = field(default_factory=dict)
    finished: datetime | None = None
    reconcile_request: dict[str, Any] | None = None  # the last "reconcile now": {at, withSource}

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": {
                "name": self.name,
                **({"labels": self.labels} if self.labels else {}),
                "generation": self.generation,
                "resourceVersion": str(self.resource_version),
                "creationTimestamp": iso(self.created),
                "annotations": {"jupyterhub-ds/owner": self.owner}
                | ({"jupyterhub-ds/source": self.source} if self.source else {}),
            },
            "spec": self.spec,
            "status": self.status,
        }
        return doc


@dataclass(frozen=True)
class Event:
    id: int
    time: datetime
    kind: str
    name: str
    type: str
    reason: str
    message: str
    actor: str | None
    subject: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "kind": self.kind,
            "name": self.name,
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "actor": self.actor,
            "subject": self.subject,
        }


def iso(t: datetime) -> str:
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat().replace("+00:00", "Z")


def from_row(row: ResourceRow, status: dict[str, Any]) -> StoredResource:
    return StoredResource(
        kind=row.kind,
        name=row.name,
        owner=row.owner,
        source=row.source,
        labels=dict(row.labels or {}),
        spec=json.loads(json.dumps(row.spec)),
        generation=row.generation,
        resource_version=row.resource_version,
        created=row.created,
        updated=row.updated,
        status=status,
        finished=row.finished,
        reconcile_request=json.loads(row.reconcile_request) if row.reconcile_request else None,
    )
