"""The registry of kinds and what works on any of them: parsing a document into its kind's
model, the spec hash, the JSON Schema, the table of `hubctl get`.

`REGISTRY` is the one list of kinds, filled by `register(module.KIND)` in `api/__init__.py`
(one line per kind, in this order). Manifests are validated by alias only
(`parse_resource`); Python code may construct models with either name.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter

from vocabulary.api import API_VERSION

from .common import FIRST_COLUMNS, LAST_COLUMNS, Envelope, KindInfo

# Every resource is an envelope; which kind's is told by `kind` (a discriminated union).
Resource = Envelope

REGISTRY: dict[str, KindInfo] = {}


def register(info: KindInfo) -> None:
    """Make a kind known: to manifests, the store, the loop, the lanes, the hub's API and `hubctl`."""
    if info.kind in REGISTRY:
        raise ValueError(f"kind {info.kind} is registered twice")
    REGISTRY[info.kind] = info


def one_shot_kinds() -> frozenset[str]:
    return frozenset(k for k, info in REGISTRY.items() if info.one_shot)


def _adapter() -> TypeAdapter[Any]:
    return _union_of(tuple(info.model for info in REGISTRY.values()))


@cache
def _union_of(models: tuple[type[Envelope], ...]) -> TypeAdapter[Any]:
    """One validator for the kinds registered now (built again only when they change)."""
    return TypeAdapter(Annotated[Union[models], Field(discriminator="kind")])  # noqa: UP007 (from a tuple)


def kind_from_name(text: str) -> str:
    """The canonical kind for a kind name as typed on a command line.

    Case-insensitive, singular or plural: `groupmembership`, `groupmemberships`,
    `GroupMembership`, `broadcasts` ... Raises ValueError for anything else.
    """
    wanted = text.strip().lower()
    for kind in REGISTRY:
        if wanted in (kind.lower(), kind.lower() + "s"):
            return kind
    raise ValueError(f"unknown kind {text!r}; known kinds: {', '.join(REGISTRY)}")


def parse_resource(data: dict, *, keep_status: bool = False) -> Resource:
    """Validate one document (by its YAML/JSON field names only) into its model.

    `status` is accepted and dropped (it is written by the reconciler only) unless
    `keep_status`. Raises pydantic.ValidationError; `manifests.parse_manifests` turns those
    into messages with file and line.
    """
    resource = _adapter().validate_python(data, by_alias=True, by_name=False)
    if not keep_status:
        resource.status = None
    return resource


def spec_hash(resource: Resource | BaseModel) -> str:
    """First 16 hex digits of the sha256 of the spec's canonical JSON.

    Defaults are included, so writing a default explicitly or omitting it hashes the same;
    keys are sorted, so key order does not matter either.
    """
    spec = resource.spec if isinstance(resource, Envelope) else resource
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def json_schema() -> dict:
    """JSON Schema of a resource document (any kind), for editors and CI validation."""
    schema = _adapter().json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:jupyterhub-ds:schema:resource:v1",
        "title": f"jupyterhub-ds resource ({API_VERSION})",
        "description": f"One desired-state document; kind is one of {', '.join(REGISTRY)}.",
        **schema,
    }


def table(kind: str, items: list[dict[str, Any]]) -> list[list[str]]:
    """`hubctl get`'s table of resources of `kind` as the API serves them: the header, then a
    row each. Every kind's first and last columns, the kind's own between."""
    columns = [*FIRST_COLUMNS, *REGISTRY[kind].columns, *LAST_COLUMNS]
    return [[c.header for c in columns]] + [[c.cell(item) for c in columns] for item in items]
