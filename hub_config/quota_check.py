"""The hub's side of GroupPolicy `quota` and `storage` (docs/usage.md#quotas): a user's
quota and volumes against their use, from the usage ledger, with the reconciler's own
functions (`reconciler.quotas`, `reconciler.quota_usage`), for the spawn check (refused at
100 %, `SpawnRefused` naming the quota, the figures and when it frees up) and a grant's
answer; the home page and `hubctl quota get` read what the Quota watch stored (`figures`),
computed afresh only where that no longer holds. Store reads: call them in a worker thread."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

from reconciler.api.quota import GRANTS_KIND, QuotaStatus
from reconciler.in_force import group_policies
from reconciler.quota_usage import user_storage, user_usage
from reconciler.quotas import (
    QUOTA_KIND,
    Grant,
    LimitState,
    QuotaDecision,
    combine_quota,
    combine_storage,
    decide,
    iso,
    live_grants,
    refusal_message,
    storage_limits_json,
    storage_states,
)
from reconciler.store import Store

from . import refusals
from .backends import get_store
from .refusals import SpawnRefused


def grants(store: Store, user: str) -> list[Grant]:
    return [Grant.load(g) for g in store.observed(GRANTS_KIND, user).get("grants") or []]


def no_quota(user: str, at: datetime) -> dict[str, Any]:
    """The answer's fields for a user without a quota (`at`: when the figures were computed)."""
    return {"user": user, "at": iso(at), "quota": None, "limits": [], "refused": False, "message": None}


def view(store: Store, user: str, groups: list[str], now: datetime, with_storage: bool = True) -> dict[str, Any]:
    """The user's quota against their use, and their volumes against the soft limits."""
    policies = group_policies(store)
    quota = combine_quota(groups, policies)
    out = no_quota(user, now)
    if quota is not None:
        live = live_grants(grants(store, user), quota.window, now)
        decision = decide(user_usage(store, user, quota, now), quota, live, now)
        out |= {
            "quota": quota.as_dict(),
            "limits": [s.as_dict() for s in decision.limits],
            "refused": decision.refused,
            "message": refusal_message(decision),
            "grants": [g.as_dict() for g in live],
        }
    if with_storage:
        limits = combine_storage(groups, policies)
        states = storage_states(user_storage(store, user), limits) if limits else []
        out["storage"] = [s.as_dict() for s in states]
        out["storageLimits"] = storage_limits_json(limits)
    return out


def figures(store: Store, user: str, groups: list[str], now: datetime, fresh_for: float) -> dict[str, Any]:
    """`view`'s answer, as the Quota watch stored it at its last look (`at` is that look's
    time: the figures are at most `fresh_for` seconds old), or computed now where the stored
    look no longer holds: none yet (a user new to a quota), one older than `fresh_for` (the
    reconciler is down or behind), a grant recorded since (the operator's "try again" must
    hold at once), or policies and groups that now combine to another quota or other limits."""
    status = QuotaStatus.load(store.observed(QUOTA_KIND, user))
    checked = status.checked
    if checked is None or (now - checked).total_seconds() > fresh_for:
        return view(store, user, groups, now)
    given = grants(store, user)
    if any(g.at > checked for g in given):
        return view(store, user, groups, now)
    policies = group_policies(store)
    quota = combine_quota(groups, policies)
    storage_limits = storage_limits_json(combine_storage(groups, policies))
    if (quota.as_dict() if quota else None) != status.quota or storage_limits != status.storage_limits:
        return view(store, user, groups, now)
    out = no_quota(user, checked)
    if quota is not None:
        decision = QuotaDecision([LimitState.load(x) for x in status.limits], quota.enforce)
        out |= {
            "quota": status.quota,
            "limits": status.limits,
            "refused": status.refused,
            "message": refusal_message(decision),
            "grants": [g.as_dict() for g in live_grants(given, quota.window, checked)],
        }
    return out | {"storage": status.storage, "storageLimits": storage_limits}


async def refuse_if_used_up(spawner: Any) -> None:
    """Refuse the start when a limit of the user's quota is used up (grants counted)."""
    groups = [g.name for g in spawner.user.groups]
    answer = await asyncio.to_thread(view, get_store(), spawner.user.name, groups, datetime.now(UTC), False)
    if answer["refused"]:
        spawner.log.info("Start of %s refused by quota: %s", spawner.user.name, answer["message"])
        raise SpawnRefused(answer["message"], reason=refusals.QUOTA_USED_UP, status_code=429)


# Grants are read, extended and written back by the hub alone (REST; hubctl calls it): one
# at a time, or two grants at once would keep only one of them.
_GRANTING = threading.Lock()


def record_grant(store: Store, user: str, grant: Grant, actor: str) -> None:
    """An operator's grant: kept with the user's other grants still in a window, and an event."""
    with _GRANTING:
        kept = [g for g in grants(store, user) if (grant.at - g.at).total_seconds() < 366 * 86400]
        store.write_observed(GRANTS_KIND, user, {"grants": [g.as_dict() for g in [*kept, grant]]})
    message = f"{grant.hours:g} {grant.kind}-hours granted to {user} for the current window"
    store.add_event(QUOTA_KIND, user, "Granted", message, "Normal", actor)
