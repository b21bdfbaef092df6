"""GroupPolicy `maxActiveServers`: how many servers the members of a group run at once, and
how the caps of a user's several groups combine (docs/policies.md).

The rule: a user's server counts against every group of theirs that a policy caps, and a
start is refused when any of those groups is full. A cap bounds a group's share of the
host, not what one server gets: unlike memory or CPUs (the most generous policy wins), a
second group without a cap, or with a larger one, does not lift it. Several policies capping
the same group: the smallest cap holds (each of them is kept). Suspended policies cap nothing.

Kept apart from `effective.py`: a cap decides whether a server may start, never what a
running server has, so it is no part of the effective policy's hash (no drift when it changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .effective import NamedGroupPolicy, applying

SHOWN_HOLDERS = 5  # names in a refusal; the rest are counted


@dataclass(frozen=True)
class GroupCap:
    group: str
    limit: int
    policy: str  # the GroupPolicy that sets it


def group_caps(groups: Iterable[str], policies: Iterable[NamedGroupPolicy]) -> list[GroupCap]:
    """The caps on a member of `groups`: per capped group, the smallest (its first policy
    in priority order on a tie), by group name."""
    mine = set(groups)
    caps: dict[str, GroupCap] = {}
    for p in applying(mine, policies):
        limit = p.spec.max_active_servers
        if limit is None:
            continue
        for group in mine.intersection(p.spec.groups):
            if group not in caps or limit < caps[group].limit:
                caps[group] = GroupCap(group, limit, p.name)
    return [caps[g] for g in sorted(caps)]


def cap_refusal(caps: Iterable[GroupCap], running: Mapping[str, list[str]]) -> str | None:
    """Why a start is refused, or None. `running`: per group, the servers of its members
    that count (named `user` or `user/server`), the one starting not among them."""
    for cap in caps:
        holders = sorted(running.get(cap.group, []))
        if len(holders) < cap.limit:
            continue
        where = f"maxActiveServers: {cap.limit} in GroupPolicy {cap.policy}"
        if cap.limit == 0:
            return (
                f"Your group {cap.group} may not run servers ({where}). An admin may raise the limit "
                "or take you out of the group."
            )
        shown = ", ".join(holders[:SHOWN_HOLDERS]) + (
            f" and {len(holders) - SHOWN_HOLDERS} more" if len(holders) > SHOWN_HOLDERS else ""
        )
        return (
            f"Your group {cap.group} may run {cap.limit} server{'s' if cap.limit != 1 else ''} at once ({where}), "
            f"and {len(holders)} {'are' if len(holders) != 1 else 'is'} running: {shown}. A slot frees when one "
            "of them stops their server; an admin may stop one or raise the limit."
        )
    return None
