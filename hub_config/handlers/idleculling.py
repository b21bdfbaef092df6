"""Idle culling as users and operators see it.

- `GET /api/users/<name>/keep-alive`: the policy that governs the user, and each running
  server's deadline (the home page shows it).
- `POST /api/users/<name>/keep-alive {"minutes": N}`: keep the user's servers for N more
  minutes, capped by the policy's `maxExtension`; scope `servers!user=<name>` (the user,
  admins). The answer says what was granted.
- `GET /api/idle-culling` and the page `/idle-culling`: every policy's servers, idle times
  and deadlines (platform read scope).

Deadlines are computed with the reconciler's own function (`reconciler.culling.decide`),
from the hub's in-memory view of the servers, so what the page says is what will happen.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from jupyterhub.handlers.base import BaseHandler
from pydantic import ValidationError
from tornado import web

from reconciler import culling
from reconciler.api.idlecullpolicy import IdleCullPolicySpec, IdleCullPolicyStatus
from reconciler.in_force import IDLE_CULL_POLICY as KIND
from reconciler.in_force import idle_cull_policies
from reconciler.store import Store

from ..backends import get_store
from .base import READ
from .selfservice import SelfServiceHandler

MAX_KEEP_MINUTES = 7 * 24 * 60  # a bound on the input; the policy's maxExtension is the real cap


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def server_views(user: Any) -> list[culling.ServerView]:
    """The user's active servers, read from the hub's objects on the hub's event loop (the
    ORM session is not for worker threads)."""
    groups = frozenset(g.name for g in user.groups)
    return [
        culling.ServerView(
            user.name,
            sp.name,
            groups,
            culling.as_utc(sp.orm_spawner.started),
            culling.as_utc(sp.orm_spawner.last_activity),
            sp.pending,
            sp.ready,
        )
        for sp in user.spawners.values()
        if sp.active
    ]


def user_view(store: Store, name: str, groups: frozenset[str], views: list[culling.ServerView], now: datetime) -> dict:
    """The policy that governs the user and each active server's deadline (store reads:
    call it in a worker thread)."""
    governing = culling.winner(name, groups, idle_cull_policies(store))
    if governing is None:
        return {"user": name, "policy": None, "servers": []}
    obj = store.get(KIND, governing.name)
    before = {(e.user, e.server): e for e in IdleCullPolicyStatus.load(obj.status if obj else {}).servers}
    keep = culling.keep_until(store.observed(culling.KEEP_ALIVE_KIND, name), now)
    servers, kept = [], []
    for view in views:
        entry = culling.decide(view, governing.spec, before.get((name, view.server)), keep, None, now).entry
        kept += [entry.kept_until] if entry.kept_until else []
        servers.append(
            {
                "server": view.server,
                "lastActivity": _iso(entry.last_activity),
                "idleSeconds": entry.idle_seconds,
                "deadline": _iso(entry.deadline),
                "reason": entry.reason,
                "warned": entry.warned_for == entry.deadline and entry.warned_for is not None,
            }
        )
    spec = governing.spec
    return {
        "user": name,
        "policy": governing.name,
        "idleTimeoutSeconds": spec.idle_timeout,
        "maxExtensionMinutes": spec.max_extension // 60,
        "dryRun": spec.dry_run,
        "keptUntil": _iso(max(kept, default=None)),  # as each server's total bound leaves it
        "servers": servers,
    }


class KeepAliveHandler(SelfServiceHandler):
    async def get(self, name: str) -> None:
        user = self.authorized_user(name)
        groups, views = frozenset(g.name for g in user.groups), server_views(user)
        self.send(await asyncio.to_thread(user_view, get_store(), name, groups, views, datetime.now(UTC)))

    async def post(self, name: str) -> None:
        user = self.authorized_user(name)
        minutes = self.json_object().get("minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_KEEP_MINUTES:
            raise web.HTTPError(400, f'Give whole minutes from 1 to {MAX_KEEP_MINUTES}: {{"minutes": 60}}')
        groups, views = frozenset(g.name for g in user.groups), server_views(user)
        if not views:
            raise web.HTTPError(400, f"{name} has no running server to keep")
        store, now = get_store(), datetime.now(UTC)
        governing = culling.winner(name, groups, await asyncio.to_thread(idle_cull_policies, store))
        if governing is None:
            raise web.HTTPError(409, f"No idle-culling policy covers {name}: there is nothing to keep")
        if governing.spec.max_extension < 60:
            raise web.HTTPError(403, f"Policy {governing.name} does not let users keep their servers (maxExtension)")
        until, granted = culling.keep_alive_grant(governing.spec, minutes, now)
        record = {"until": _iso(until), "minutes": granted, "requested": minutes, "at": _iso(now)}
        await asyncio.to_thread(store.write_observed, culling.KEEP_ALIVE_KIND, name, record)
        message = f"{name} keeps their servers until {until:%H:%M:%S} UTC ({granted} of {minutes} min asked)"
        await asyncio.to_thread(store.add_event, KIND, governing.name, "KeptAlive", message, "Normal", self.actor)
        # The policy's status (and a notice already sent for the old deadline) follow now.
        await asyncio.to_thread(store.request_reconcile, KIND, governing.name, False, self.actor)
        view = await asyncio.to_thread(user_view, store, name, groups, views, now)
        self.send(view | {"requestedMinutes": minutes, "grantedMinutes": granted, "capped": granted < minutes})


def overview(store: Store) -> list[dict[str, Any]]:
    """Every policy with the servers its last pass saw."""
    rows = []
    for obj in store.list(KIND):
        status = IdleCullPolicyStatus.load(obj.status)
        try:  # with its defaults filled in
            spec = IdleCullPolicySpec.model_validate(obj.spec).model_dump(mode="json", by_alias=True)
        except ValidationError:
            spec = obj.spec
        rows.append(
            {
                "name": obj.name,
                "spec": spec,
                "phase": status.phase,
                "lastPass": _iso(status.last_pass),
                "servers": [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in status.servers],
                "recent": [a.model_dump(mode="json", by_alias=True) for a in status.recent],
            }
        )
    return rows


class IdleCullingAPIHandler(SelfServiceHandler):
    async def get(self) -> None:
        self.require(READ)
        self.send({"policies": await asyncio.to_thread(overview, get_store())})


class IdleCullingPageHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        if READ not in self.expanded_scopes:
            raise web.HTTPError(403, "Only platform operators may see idle culling")
        rows = await asyncio.to_thread(overview, get_store())
        self.finish(await self.render_template("idle-culling.html", policies=rows))


handlers = [
    (r"/api/users/([^/]+)/keep-alive", KeepAliveHandler),
    (r"/api/idle-culling", IdleCullingAPIHandler),
    (r"/idle-culling", IdleCullingPageHandler),
]
