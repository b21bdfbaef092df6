"""The kinds' types, kubebuilder's `api/`: one module per kind (its spec, status, defaults,
validation rules and `hubctl get` columns, registered as its `KIND`), the shared field types
(`fields`), the envelope and status base (`common`), and the registry (`registry`).

A kind is known once its line below has run; the order is the order of `hubctl` and of
error messages listing kinds.
"""

from __future__ import annotations

from . import (
    backupschedule,
    broadcast,
    groupmembership,
    grouppolicy,
    idlecullpolicy,
    rolloutrestart,
    roster,
    serverrestart,
    serverstop,
    userremoval,
    userrename,
    volumebackup,
    volumereset,
    volumerestore,
)
from .registry import (
    REGISTRY,
    Resource,
    json_schema,
    kind_from_name,
    one_shot_kinds,
    parse_resource,
    register,
    spec_hash,
    table,
)

__all__ = [
    "REGISTRY",
    "Resource",
    "json_schema",
    "kind_from_name",
    "one_shot_kinds",
    "parse_resource",
    "register",
    "spec_hash",
    "table",
]

register(broadcast.KIND)
register(volumereset.KIND)
register(serverrestart.KIND)
register(groupmembership.KIND)
register(idlecullpolicy.KIND)
register(grouppolicy.KIND)
register(rolloutrestart.KIND)
register(volumebackup.KIND)
register(volumerestore.KIND)
register(backupschedule.KIND)
register(serverstop.KIND)
register(userrename.KIND)
register(roster.KIND)
register(userremoval.KIND)
