"""The policies in force: valid and not suspended (an invalid one is reported on the
resource itself by the loop). Read by the controllers and by the hub (spawner, pages),
so it lives below both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from vocabulary import naming

from .api.grouppolicy import GroupPolicySpec
from .api.idlecullpolicy import IdleCullPolicySpec
from .culling import NamedPolicy
from .effective import NamedGroupPolicy, combine
from .store import Store

GROUP_POLICY = "GroupPolicy"
IDLE_CULL_POLICY = "IdleCullPolicy"
S = TypeVar("S", bound=BaseModel)
N = TypeVar("N")


def _in_force(store: Store, kind: str, model: type[S], named: Callable[[str, S], N]) -> list[N]:
    found = []
    for obj in store.list(kind):
        try:
            spec = model.model_validate(obj.spec)
        except ValidationError:
            continue
        if not getattr(spec, "suspend", False):
            found.append(named(obj.name, spec))
    return found


def group_policies(store: Store) -> list[NamedGroupPolicy]:
    return _in_force(store, GROUP_POLICY, GroupPolicySpec, NamedGroupPolicy)


def idle_cull_policies(store: Store) -> list[NamedPolicy]:
    return _in_force(store, IDLE_CULL_POLICY, IdleCullPolicySpec, NamedPolicy)


def socket_granted(store: Store) -> bool:
    """Whether the policies in force give the members of docker-privileged the socket (they
    do, through the seed, unless someone suspended, edited or deleted it)."""
    return combine([naming.PRIVILEGED_GROUP], group_policies(store)).docker_socket
